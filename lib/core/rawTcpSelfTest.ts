/**
 * A behavioural self-test of the bare TCP handles (rawTcp.ts). The bindings are Node internals: that
 * they exist (rawTcpUnavailable) does not prove that they still behave as RawSocket expects. So one
 * real connection goes through them, to a net.Server on loopback, and every step is checked against
 * what a net.Socket would give: bind, connect, a write larger than the shared read buffer, reading
 * what the other end sends, a half-close that the other end sees after the data, the other end's EOF,
 * and one close event, last.
 */
import net from 'node:net';
import { RawSocket, type RawSocketEvents, rawTcpUnavailable } from './rawTcp.ts';

/** Test hook, internal: when set (non-empty), the self-test's bare socket writes one wrong byte. */
export const RAW_TCP_CORRUPT_ENV = 'SIMOPEN_TEST_RAW_TCP_CORRUPT';

export interface RawTcpSelfTestOptions {
  /** A loopback address of the namespace the handles will be used in (default 127.0.0.1). */
  host?: string;
  /** Give up after this long (default 5 s). */
  timeoutMs?: number;
}

/** More than the 64 KiB shared read buffer, so the data arrives in several reads. */
const BYTES = 96 * 1024;

function pattern(length: number, step: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  for (let index = 0; index < length; index += 1) buffer[index] = (index * step) & 255;
  return buffer;
}

/**
 * Resolves undefined when the bare handles behaved as a net.Socket would, else with why not (one
 * phrase, for stderr and the report). Never rejects.
 */
export async function selfTestRawTcp(options: RawTcpSelfTestOptions = {}): Promise<string | undefined> {
  const missing = rawTcpUnavailable();
  if (missing) return missing;
  const host = options.host ?? '127.0.0.1';
  const timeoutMs = options.timeoutMs ?? 5000;
  const toServer = pattern(BYTES, 7);
  const toClient = pattern(BYTES, 13);
  const written = Buffer.from(toServer);
  if (process.env[RAW_TCP_CORRUPT_ENV]) written[BYTES >> 1] = (written[BYTES >> 1] ?? 0) ^ 0xff;

  const seen: string[] = [];
  let server: net.Server | undefined;
  let accepted: net.Socket | undefined;
  let raw: RawSocket | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      const fail = (why: string) => reject(new Error(why));
      timer = setTimeout(
        () => fail(`no close within ${timeoutMs} ms (events so far: ${seen.join(', ') || 'none'})`),
        timeoutMs,
      );
      let serverSawEnd = false;
      const listener = net.createServer({ allowHalfOpen: true }, (socket) => {
        accepted = socket;
        const chunks: Buffer[] = [];
        socket.on('error', (error: NodeJS.ErrnoException) => fail(`the other end saw ${error.code}`));
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.on('end', () => {
          serverSawEnd = true;
          if (!Buffer.concat(chunks).equals(toServer))
            return fail('the other end received other bytes than the bare socket wrote');
          // Our FIN only now: the bare socket must read all of toClient, then this EOF.
          socket.end();
        });
        socket.write(toClient);
      });
      server = listener;
      listener.on('error', (error: NodeJS.ErrnoException) => fail(`listen on ${host}: ${error.code}`));

      let received = 0;
      const events: RawSocketEvents = {
        onConnect(socket) {
          seen.push('connect');
          socket.write(written);
          // Half-close: the FIN goes after the data, and reading goes on.
          socket.end();
        },
        onData(_socket, buffer, length) {
          if (seen.at(-1) !== 'data') seen.push('data');
          if (seen[0] !== 'connect' || seen.includes('end')) return fail(`data out of order (${seen})`);
          if (
            received + length > BYTES ||
            !buffer.subarray(0, length).equals(toClient.subarray(received, received + length))
          )
            return fail(`read other bytes than the other end sent (at byte ${received})`);
          received += length;
        },
        onEnd() {
          seen.push('end');
          if (received !== BYTES) return fail(`EOF after ${received} of ${BYTES} bytes`);
          if (!serverSawEnd) return fail('EOF before the other end saw our half-close');
        },
        onWritten() {},
        onError(_socket, code) {
          seen.push(`error ${code}`);
          fail(`error ${code}`);
        },
        onClose() {
          seen.push('close');
          const expected = 'connect,data,end,close';
          if (seen.join() !== expected) return fail(`events ${seen.join(', ')}; expected ${expected}`);
          resolve();
        },
      };
      listener.listen(0, host, () => {
        const { port } = listener.address() as net.AddressInfo;
        try {
          raw = new RawSocket(events, undefined);
          raw.connect({ host, port: 0 }, { host, port });
        } catch (error) {
          fail(error instanceof Error ? error.message : String(error));
        }
      });
    });
    return undefined;
  } catch (error) {
    return `bare TCP handles failed their self-test: ${error instanceof Error ? error.message : String(error)}`;
  } finally {
    clearTimeout(timer);
    raw?.destroy();
    accepted?.destroy();
    await new Promise<void>((resolve) => (server?.listening ? server.close(() => resolve()) : resolve()));
  }
}
