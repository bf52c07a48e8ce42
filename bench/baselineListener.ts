/**
 * The plain-Node baseline for `npm run bench`: ordinary connect + accept to a listener (no
 * simultaneous open), with the same payload exchange, byte check and close kinds as stress.ts, run
 * by a Piscina pool with one shard per worker. It shows what Node's TCP costs without the technique.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Piscina } from 'piscina';
import { buildPatterns, chunkMatches, patternOffset } from '../lib/core/payloadPattern.ts';
import { workerExecArgv } from '../lib/core/workerExecArgv.ts';
import type { CloseMode } from '../lib/stress/types.ts';

export interface BaselineShardOptions {
  /** Which shard this is: picks its listener and client addresses, so shards never share a 4-tuple. */
  shard: number;
  pairs: number;
  /** Connections in flight in this shard. */
  concurrency: number;
  payloadBytes: number;
  close: CloseMode;
  /** Second octet of the 127.0.0.0/8 addresses used, so separate runs never share a 4-tuple. */
  net: number;
  timeoutMs: number;
}

export interface BaselineShardResult {
  completed: number;
  failed: number;
  bytesVerified: number;
  errors: Record<string, number>;
  /** Wall-clock (ms since the epoch) of the first connect and the last close, to merge shards. */
  startedAt: number;
  endedAt: number;
}

/**
 * Clients bind planned ports (10000 + n) on planned addresses, as stress.ts pairs do: a kernel-chosen
 * port (bind to port 0) means a scan of the port space that slows down as TIME_WAIT fills it.
 */
const FIRST_CLIENT_PORT = 10_000;
const PAIRS_PER_SOURCE_ADDRESS = 50_000;

interface Connection {
  client?: net.Socket;
  server?: net.Socket;
  verified: number;
  closed: number;
  closing: boolean;
  failed: boolean;
  timer?: NodeJS.Timeout;
}

/** One shard: a listener and `pairs` client connections to it, `concurrency` at a time. */
export function runBaselineShard(options: BaselineShardOptions): Promise<BaselineShardResult> {
  const { shard, pairs, concurrency, payloadBytes, close, timeoutMs } = options;
  const listenHost = `127.${options.net}.255.${shard + 1}`;
  const result: BaselineShardResult = {
    completed: 0,
    failed: 0,
    bytesVerified: 0,
    errors: {},
    startedAt: 0,
    endedAt: 0,
  };
  // Connections with one end attached, keyed by the client's local address and port, which both ends
  // know. A key is dropped once both ends are attached: after a reset close the port is reused at once.
  const connections = new Map<string, Connection>();
  let started = 0;
  let finished = 0;
  // stress.ts's streams: the client sends what side A sends, the server what side B sends.
  const patterns = buildPatterns(payloadBytes);

  return new Promise((resolve, reject) => {
    const server = net.createServer({ noDelay: true });

    const countError = (code: string) => {
      result.errors[code] = (result.errors[code] ?? 0) + 1;
    };

    /** One pair is over, either way: start the next, or end the shard after the last. */
    const settle = (ok: boolean) => {
      if (ok) result.completed++;
      else result.failed++;
      finished++;
      if (finished === pairs) {
        result.endedAt = performance.timeOrigin + performance.now();
        server.close(() => resolve(result));
      } else startNext();
    };

    const finish = (connection: Connection, ok: boolean) => {
      if (connection.timer) clearTimeout(connection.timer);
      settle(ok);
    };

    const fail = (connection: Connection, code: string) => {
      if (connection.failed) return;
      connection.failed = true;
      countError(code);
      connection.client?.destroy();
      connection.server?.destroy();
      finish(connection, false);
    };

    const connectionFor = (key: string): Connection => {
      let connection = connections.get(key);
      if (!connection) {
        connection = { verified: 0, closed: 0, closing: false, failed: false };
        connections.set(key, connection);
      }
      return connection;
    };

    /**
     * The close sequence of stress.ts (lib/stress/sandboxPair.ts), with the client as side A. Graceful: the client
     * ends once it has the server's payload and the server answers its FIN (allowHalfOpen off).
     * Simultaneous: both end once both payloads are in. Reset: then the client aborts with RST.
     */
    const maybeClose = (connection: Connection, side: 0 | 1) => {
      const { client, server: accepted } = connection;
      if (connection.closing || !client) return;
      if (close === 'graceful') {
        if (side !== 0) return;
        connection.closing = true;
        client.end();
        return;
      }
      if (connection.verified < 2 || !accepted) return;
      connection.closing = true;
      if (close === 'reset') client.resetAndDestroy();
      else {
        client.end();
        accepted.end();
      }
    };

    /** Payload out, peer's payload in and checked byte by byte; then the close. */
    const attach = (socket: net.Socket, side: 0 | 1, key: string, clientPort: number) => {
      const connection = connectionFor(key);
      if (side === 0) connection.client = socket;
      else connection.server = socket;
      if (connection.client && connection.server) connections.delete(key);
      let received = 0;
      const offset = patternOffset(clientPort);
      const incoming = side === 0 ? patterns.bToA : patterns.aToB;
      const outgoing = side === 0 ? patterns.aToB : patterns.bToA;
      socket.on('data', (chunk: Buffer) => {
        if (connection.failed) return;
        if (
          received + chunk.length > payloadBytes ||
          !chunkMatches(incoming, offset, received, chunk, chunk.length)
        )
          return fail(connection, 'EPAYLOAD');
        received += chunk.length;
        if (received === payloadBytes) verifiedOne();
      });
      const verifiedOne = () => {
        connection.verified++;
        result.bytesVerified += payloadBytes;
        maybeClose(connection, side);
      };
      socket.on('end', () => {
        if (received < payloadBytes) return fail(connection, 'ESHORTPAYLOAD');
      });
      socket.on('error', (error: NodeJS.ErrnoException) => {
        // The reset close makes the accepting side see ECONNRESET: that is the expected outcome.
        if (side === 1 && close === 'reset' && connection.closing && error.code === 'ECONNRESET') return;
        fail(connection, error.code ?? 'ERROR');
      });
      socket.on('close', () => {
        if (connection.failed) return;
        connection.closed++;
        if (connection.closed === 2) finish(connection, true);
      });
      if (payloadBytes > 0) socket.write(outgoing.subarray(offset, offset + payloadBytes));
      else verifiedOne();
    };

    server.on('connection', (socket) => {
      socket.setNoDelay(true);
      const key = `${socket.remoteAddress}:${socket.remotePort}`;
      attach(socket, 1, key, socket.remotePort ?? 0);
    });

    const startNext = () => {
      if (started >= pairs) return;
      const index = started++;
      const localAddress = `127.${options.net}.${shard}.${Math.floor(index / PAIRS_PER_SOURCE_ADDRESS) + 1}`;
      const localPort = FIRST_CLIENT_PORT + (index % PAIRS_PER_SOURCE_ADDRESS);
      const client = net.connect({
        host: listenHost,
        port: listenPort,
        localAddress,
        localPort,
        noDelay: true,
      });
      let attached: Connection | undefined;
      let settledBeforeConnect = false;
      const failBeforeConnect = (code: string) => {
        if (settledBeforeConnect) return;
        settledBeforeConnect = true;
        clearTimeout(timer);
        client.destroy();
        countError(code);
        settle(false);
      };
      const timer = setTimeout(() => {
        if (attached) fail(attached, 'ETIMEDOUT');
        else failBeforeConnect('ETIMEDOUT');
      }, timeoutMs);
      client.once('connect', () => {
        const key = `${client.localAddress}:${client.localPort}`;
        attached = connectionFor(key);
        attached.timer = timer;
        attach(client, 0, key, client.localPort ?? 0);
      });
      client.once('error', (error: NodeJS.ErrnoException) => {
        // Once attached, the connection's own handler counts the error.
        if (!attached) failBeforeConnect(error.code ?? 'ERROR');
      });
    };

    let listenPort = 0;
    server.once('error', reject);
    server.listen({ host: listenHost, port: 0, backlog: 4096 }, () => {
      listenPort = (server.address() as net.AddressInfo).port;
      result.startedAt = performance.timeOrigin + performance.now();
      for (let index = 0; index < Math.min(concurrency, pairs); index++) startNext();
    });
  });
}

export interface BaselineOptions {
  workers: number;
  pairs: number;
  /** Connections in flight per worker. */
  concurrencyPerWorker: number;
  payloadBytes: number;
  close: CloseMode;
  net: number;
  timeoutMs?: number;
  /** Aborting ends the workers at once. */
  signal?: AbortSignal;
}

export interface BaselineResult {
  workers: number;
  pairs: number;
  completed: number;
  failed: number;
  bytesVerified: number;
  errors: Record<string, number>;
  elapsedMs: number;
  pairsPerSec: number;
}

/** Runs one shard per worker at once; the rate spans the first connect to the last close of any shard. */
export async function runBaseline(options: BaselineOptions): Promise<BaselineResult> {
  const pool = new Piscina({
    filename: new URL('./baselineWorker.ts', import.meta.url).href,
    minThreads: options.workers,
    maxThreads: options.workers,
    execArgv: workerExecArgv(),
  });
  try {
    const shards = await Promise.all(
      Array.from({ length: options.workers }, (_, shard) => {
        const shardOptions: BaselineShardOptions = {
          shard,
          pairs:
            Math.floor((options.pairs * (shard + 1)) / options.workers) -
            Math.floor((options.pairs * shard) / options.workers),
          concurrency: options.concurrencyPerWorker,
          payloadBytes: options.payloadBytes,
          close: options.close,
          net: options.net,
          timeoutMs: options.timeoutMs ?? 10_000,
        };
        return pool.run(shardOptions, { signal: options.signal ?? null }) as Promise<BaselineShardResult>;
      }),
    );
    const errors: Record<string, number> = {};
    for (const shard of shards)
      for (const [code, count] of Object.entries(shard.errors)) errors[code] = (errors[code] ?? 0) + count;
    const elapsedMs =
      Math.max(...shards.map((shard) => shard.endedAt)) - Math.min(...shards.map((shard) => shard.startedAt));
    const completed = shards.reduce((sum, shard) => sum + shard.completed, 0);
    return {
      workers: options.workers,
      pairs: options.pairs,
      completed,
      failed: shards.reduce((sum, shard) => sum + shard.failed, 0),
      bytesVerified: shards.reduce((sum, shard) => sum + shard.bytesVerified, 0),
      errors,
      elapsedMs,
      pairsPerSec: elapsedMs > 0 ? completed / (elapsedMs / 1000) : 0,
    };
  } finally {
    await pool.destroy();
  }
}
