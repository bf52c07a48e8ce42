/**
 * A STUN client we did not write: requests encoded and responses decoded by @msimerson/stun (a
 * maintained RFC 8489 codec, a devDependency used in tests only), over one TCP connection, so
 * the rendezvous server's wire format is checked against an independent implementation.
 */
import { createRequire } from 'node:module';
import net from 'node:net';

interface StunAttribute {
  type: number;
  value: unknown;
}
interface StunResponse {
  type: number;
  transactionId: Buffer;
  getXorAddress(): { address: string; port: number; family: string } | undefined;
  getSoftware(): string | undefined;
  getError(): { code: number; reason: string } | undefined;
  getUnknownAttributes(): number[] | undefined;
  getAttribute(type: number): StunAttribute | undefined;
}
interface StunRequest {
  transactionId: Buffer;
  addAttribute(type: number, ...value: unknown[]): unknown;
  addSoftware(software: string): unknown;
  addFingerprint(): unknown;
}
interface StunLibrary {
  createMessage(type: number, transactionId?: Buffer): StunRequest;
  encode(message: StunRequest): Buffer;
  decode(bytes: Buffer): StunResponse;
  validateFingerprint(message: StunResponse): boolean;
  constants: Record<string, number>;
}

export const stun = createRequire(import.meta.url)('@msimerson/stun') as StunLibrary;

/** A Binding Request as the library encodes it (with SOFTWARE and FINGERPRINT, as real clients send). */
export function bindingRequest(): { bytes: Buffer; transactionId: Buffer } {
  const request = stun.createMessage(stun.constants.STUN_BINDING_REQUEST as number);
  request.addSoftware('independent test client');
  request.addFingerprint();
  return { bytes: stun.encode(request), transactionId: request.transactionId };
}

/**
 * Connects (from localPort, if given), sends `bytes` (in pieces, if given several), and collects
 * what comes back until `responses` STUN messages have arrived or the server closes.
 */
export function exchange(
  host: string,
  port: number,
  pieces: Buffer[],
  options: { localPort?: number; responses?: number; timeoutMs?: number } = {},
): Promise<{
  responses: StunResponse[];
  raw: Buffer[];
  closed: boolean;
  local: { address: string; port: number };
}> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host,
      port,
      ...(options.localPort ? { localPort: options.localPort } : {}),
    });
    let buffered = Buffer.alloc(0);
    const responses: StunResponse[] = [];
    const raw: Buffer[] = [];
    const local = { address: '', port: 0 };
    const timer = setTimeout(() => finish(false), options.timeoutMs ?? 3000);
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ responses, raw, closed, local });
    };
    socket.on('connect', async () => {
      local.address = socket.localAddress ?? '';
      local.port = socket.localPort ?? 0;
      for (const piece of pieces) {
        socket.write(piece);
        await new Promise((wait) => setTimeout(wait, 20));
      }
    });
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 20) {
        const length = 20 + buffered.readUInt16BE(2);
        if (buffered.length < length) break;
        raw.push(buffered.subarray(0, length));
        responses.push(stun.decode(buffered.subarray(0, length)));
        buffered = buffered.subarray(length);
      }
      if (responses.length >= (options.responses ?? 1)) finish(false);
    });
    socket.on('end', () => finish(true));
    socket.on('error', (error) => (responses.length ? finish(true) : reject(error)));
  });
}
