/**
 * The rendezvous server: pairs two peers of a session, tells each the other's public endpoint as
 * observed here, and a start time so both SYNs leave together. It never relays data. Peers meet on
 * their session AND their auth token (from the secret): a client with another secret waits in a
 * slot of its own, so without the secret nobody can join or block a pair. Every problem with one
 * client (malformed or oversized line, idling, never pairing, a third peer) ends with an error line
 * to that client and its connection closed; no other client is affected.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { formatEndpoint } from '../core/endpoint.ts';
import { logValue } from '../core/printable.ts';
import type { Endpoint } from '../core/types.ts';
import {
  classifyMapping,
  decodeClientMessage,
  encodeMessage,
  LineSplitter,
  PROTOCOL_VERSION,
  type ProtocolError,
  predictPorts,
  startDelays,
} from './protocol.ts';
import { answerStun, classifyFirstBytes, STUN_HEADER_BYTES, stunMessageLength } from './stun.ts';

/**
 * A client that says nothing for this long after connecting is taken for a rendezvous client waiting
 * for the hello (our clients open with a newline and get it at once).
 */
export const STUN_GRACE_MS = 100;
const STUN_SOFTWARE = `simopen rendezvous (protocol v${PROTOCOL_VERSION})`;

/** How long the probe port remembers an endpoint it saw (a client registers right after probing). */
const PROBE_MEMORY_MS = 60_000;
const PROBE_MEMORY_MAX = 10_000;

import type { ClientMessage, ErrorCode, PeerInfo, PortPrediction, ServerMessage } from './types.ts';

export interface RendezvousServerOptions {
  host: string;
  port: number;
  /**
   * Second port, answering each connection with the endpoint it came from (to classify mappings);
   * 0: any free port; null: none. The hello message tells every client which (or that there is none).
   */
  probePort: number | null;
  /** A client must register within this long of connecting (and, later, report within it). */
  idleTimeoutMs?: number;
  /** A registered client whose session gets no second peer within this long is dropped. */
  pairTimeoutMs?: number;
  /** Round trips measured per client before pairing. */
  pings?: number;
  /** One line per event. */
  log?: (line: string) => void;
}

export interface RendezvousServer {
  address: { host: string; port: number; probePort: number | null };
  close(): Promise<void>;
}

interface Client {
  id: number;
  socket: net.Socket;
  observed: Endpoint;
  state: 'new' | 'measuring' | 'waiting' | 'paired' | 'closed';
  name: string;
  session?: Session;
  probed: Endpoint | null;
  /** From the main and the probe mapping, when they say the allocation is sequential. */
  prediction?: PortPrediction;
  rtts: number[];
  pingSentAt: Map<number, number>;
  timer?: NodeJS.Timeout;
}

/** The peers of one session that share one auth token (so one secret): at most two. */
interface Session {
  id: string;
  auth: string;
  clients: Client[];
}

const slotKey = (session: string, auth: string) => `${session}\n${auth}`;

function isClosed(client: Client): boolean {
  return client.state === 'closed';
}

function plainAddress(address: string | undefined): string {
  return (address ?? '?').replace(/^::ffff:/, '');
}

function listen(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

export async function startRendezvousServer(options: RendezvousServerOptions): Promise<RendezvousServer> {
  const idleTimeoutMs = options.idleTimeoutMs ?? 10_000;
  const pairTimeoutMs = options.pairTimeoutMs ?? 30_000;
  const pings = options.pings ?? 3;
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const sessions = new Map<string, Session>();
  const clients = new Set<Client>();
  let nextClientId = 1;
  let probePort: number | null = null;
  // Endpoints the probe port saw recently: a prediction rests only on mappings seen here, not on a
  // client's word. Insertion order is time order, so the oldest go first.
  const probesSeen = new Map<string, number>();
  const rememberProbe = (endpoint: Endpoint) => {
    const now = Date.now();
    for (const [key, at] of probesSeen) {
      if (now - at < PROBE_MEMORY_MS && probesSeen.size < PROBE_MEMORY_MAX) break;
      probesSeen.delete(key);
    }
    probesSeen.set(formatEndpoint(endpoint), now);
  };

  // Values can come from clients (a result's error text): logValue escapes what is not plain text.
  const event = (name: string, fields: Record<string, string | number | undefined>) => {
    const text = Object.entries(fields)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => `${key}=${logValue(value as string | number)}`)
      .join(' ');
    log(`${new Date().toISOString()} ${name} ${text}`);
  };

  const send = (client: Client, message: ServerMessage) => {
    if (client.state !== 'closed' && client.socket.writable) client.socket.write(encodeMessage(message));
  };

  const setTimer = (client: Client, ms: number, onTimeout: () => void) => {
    clearTimeout(client.timer);
    client.timer = setTimeout(onTimeout, ms);
  };

  const leaveSession = (client: Client) => {
    const session = client.session;
    if (!session) return;
    client.session = undefined;
    session.clients = session.clients.filter((member) => member !== client);
    const key = slotKey(session.id, session.auth);
    if (session.clients.length === 0 && sessions.get(key) === session) sessions.delete(key);
  };

  const drop = (client: Client, code: ErrorCode, message: string) => {
    if (client.state === 'closed') return;
    event('error', {
      client: client.id,
      from: formatEndpoint(client.observed),
      session: client.session?.id,
      code,
      message,
    });
    send(client, { v: PROTOCOL_VERSION, type: 'error', code, message });
    close(client);
  };

  const close = (client: Client) => {
    if (client.state === 'closed') return;
    client.state = 'closed';
    clearTimeout(client.timer);
    leaveSession(client);
    clients.delete(client);
    client.socket.end();
    // A client that does not read must not keep the socket (and our memory) forever.
    setTimeout(() => client.socket.destroy(), 2000).unref();
  };

  const ping = (client: Client) => {
    const id = client.rtts.length + 1;
    client.pingSentAt.set(id, performance.now());
    send(client, { v: PROTOCOL_VERSION, type: 'ping', id });
  };

  const info = (client: Client): PeerInfo => ({
    name: client.name,
    endpoint: client.observed,
    mapping: classifyMapping(client.observed, client.probed),
    rttMs: Math.round(Math.min(...client.rtts) * 1000) / 1000,
    ...(client.prediction ? { prediction: client.prediction } : {}),
  });

  const tryPair = (session: Session) => {
    const [a, b] = session.clients;
    if (!a || !b || a.state !== 'waiting' || b.state !== 'waiting') return;
    const [delayA, delayB] = startDelays([info(a).rttMs, info(b).rttMs]);
    for (const [self, peer, startInMs] of [
      [a, b, delayA],
      [b, a, delayB],
    ] as const) {
      self.state = 'paired';
      send(self, { v: PROTOCOL_VERSION, type: 'peer', self: info(self), peer: info(peer), startInMs });
      // The client reports its outcome, then we are done with it.
      setTimer(self, idleTimeoutMs + pairTimeoutMs, () => drop(self, 'idle', 'no result reported in time'));
    }
    event('paired', {
      session: session.id,
      a: `${a.name || a.id}@${formatEndpoint(a.observed)}/${info(a).mapping}`,
      b: `${b.name || b.id}@${formatEndpoint(b.observed)}/${info(b).mapping}`,
      startInMs: `${delayA},${delayB}`,
    });
  };

  const handle = (client: Client, message: ClientMessage) => {
    switch (message.type) {
      case 'register': {
        if (client.state !== 'new') return drop(client, 'bad-state', 'already registered');
        const key = slotKey(message.session, message.auth);
        const existing = sessions.get(key);
        // Only a client with the same secret can get here: it is a third peer, not an intruder.
        if (existing && existing.clients.length >= 2)
          return drop(client, 'session-full', `session '${message.session}' already has two peers`);
        const session = existing ?? { id: message.session, auth: message.auth, clients: [] };
        sessions.set(key, session);
        session.clients.push(client);
        client.session = session;
        client.name = message.name;
        client.probed = message.probed;
        if (message.probed && probesSeen.has(formatEndpoint(message.probed))) {
          const prediction = predictPorts(client.observed, message.probed);
          if (prediction) client.prediction = prediction;
        }
        client.state = 'measuring';
        event('register', {
          client: client.id,
          session: session.id,
          name: message.name || undefined,
          from: formatEndpoint(client.observed),
          probed: message.probed ? formatEndpoint(message.probed) : undefined,
          predicted: client.prediction
            ? `${client.prediction.ports.slice(0, 3).join(',')}... (step ${client.prediction.step})`
            : undefined,
        });
        send(client, { v: PROTOCOL_VERSION, type: 'registered', observed: client.observed });
        setTimer(client, pairTimeoutMs, () =>
          client.state === 'measuring'
            ? drop(client, 'idle', `no answer to ping within ${pairTimeoutMs} ms`)
            : drop(
                client,
                'unpaired',
                `no second peer joined session '${session.id}' with the same secret within ${pairTimeoutMs} ms`,
              ),
        );
        ping(client);
        return;
      }
      case 'pong': {
        const sentAt = client.pingSentAt.get(message.id);
        if (client.state !== 'measuring' || sentAt === undefined)
          return drop(client, 'bad-state', `unexpected pong ${message.id}`);
        client.pingSentAt.delete(message.id);
        client.rtts.push(performance.now() - sentAt);
        if (client.rtts.length < pings) return ping(client);
        client.state = 'waiting';
        if (client.session) tryPair(client.session);
        return;
      }
      case 'result': {
        if (client.state !== 'paired') return drop(client, 'bad-state', 'result before pairing');
        event('result', {
          client: client.id,
          session: client.session?.id,
          name: client.name || undefined,
          ok: String(message.ok),
          elapsedMs: Math.round(message.elapsedMs * 10) / 10,
          attempts: message.attempts,
          error: message.error,
        });
        close(client);
        return;
      }
      case 'probe':
        return drop(client, 'bad-state', 'probe belongs on the probe port');
    }
  };

  // The rendezvous protocol on an accepted connection, with the bytes already read.
  const startJson = (socket: net.Socket, initial: Buffer) => {
    const client: Client = {
      id: nextClientId++,
      socket,
      observed: { host: plainAddress(socket.remoteAddress), port: socket.remotePort ?? 0 },
      state: 'new',
      name: '',
      probed: null,
      rtts: [],
      pingSentAt: new Map(),
    };
    clients.add(client);
    event('connect', { client: client.id, from: formatEndpoint(client.observed) });
    send(client, { v: PROTOCOL_VERSION, type: 'hello', probePort, pairTimeoutMs: Math.ceil(pairTimeoutMs) });
    setTimer(client, idleTimeoutMs, () =>
      drop(client, 'idle', `nothing registered within ${idleTimeoutMs} ms`),
    );
    const splitter = new LineSplitter();
    socket.setNoDelay(true);
    const onData = (chunk: Buffer) => {
      if (client.state === 'closed') return;
      let lines: string[];
      try {
        lines = splitter.push(chunk);
      } catch (error) {
        socket.pause();
        return drop(client, (error as ProtocolError).code ?? 'too-large', (error as Error).message);
      }
      for (const line of lines) {
        // handle() may have dropped the client on an earlier line of this chunk.
        if (isClosed(client)) return;
        const decoded = decodeClientMessage(line);
        if (!decoded.ok) return drop(client, decoded.code, decoded.error);
        handle(client, decoded.message);
      }
    };
    socket.on('data', onData);
    if (initial.length) onData(initial);
    socket.on('error', () => {
      // Reset by the peer, typically; 'close' follows and does the bookkeeping.
    });
    socket.on('close', () => {
      if (client.state === 'closed') return;
      event('disconnect', { client: client.id, session: client.session?.id, state: client.state });
      client.state = 'closed';
      clearTimeout(client.timer);
      leaveSession(client);
      clients.delete(client);
    });
  };

  // STUN Binding (RFC 8489 over TCP) on a connection whose first bytes were STUN.
  const stunSockets = new Set<net.Socket>();
  const serveStun = (socket: net.Socket, from: Endpoint, initial: Buffer) => {
    stunSockets.add(socket);
    let buffered = Buffer.alloc(0);
    let idle: NodeJS.Timeout | undefined;
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => socket.destroy(), idleTimeoutMs);
    };
    const end = (why: string) => {
      event('stun', { from: formatEndpoint(from), closed: why });
      socket.pause();
      socket.end();
      setTimeout(() => socket.destroy(), 2000).unref();
    };
    const onData = (chunk: Buffer) => {
      armIdle();
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= STUN_HEADER_BYTES) {
        const length = stunMessageLength(buffered);
        if (typeof length !== 'number') return end(length.error);
        if (buffered.length < length) return;
        const answer = answerStun(buffered.subarray(0, length), from, STUN_SOFTWARE);
        buffered = buffered.subarray(length);
        event('stun', { from: formatEndpoint(from), request: answer.what });
        if (answer.reply && socket.writable) socket.write(answer.reply);
        if (answer.close) return end(answer.close);
      }
      // A partial header that can no longer be STUN ends it at once.
      if (classifyFirstBytes(buffered) === 'other') end('not STUN');
    };
    socket.on('data', onData);
    socket.on('close', () => {
      clearTimeout(idle);
      stunSockets.delete(socket);
    });
    onData(initial);
  };

  const mainServer = net.createServer((socket) => {
    const from = { host: plainAddress(socket.remoteAddress), port: socket.remotePort ?? 0 };
    socket.on('error', () => {});
    // The first bytes say which protocol: STUN (a client speaks first), else ours (we speak first,
    // at once for a client that opened with a newline, after STUN_GRACE_MS for one that waits).
    let first = Buffer.alloc(0);
    const decide = (kind: 'stun' | 'other') => {
      clearTimeout(grace);
      socket.off('data', onFirst);
      socket.off('close', onEarlyClose);
      if (kind === 'stun') serveStun(socket, from, first);
      else startJson(socket, first);
    };
    const onFirst = (chunk: Buffer) => {
      first = Buffer.concat([first, chunk]);
      const kind = classifyFirstBytes(first);
      if (kind !== 'undecided') decide(kind);
    };
    const onEarlyClose = () => clearTimeout(grace);
    const grace = setTimeout(() => decide('other'), STUN_GRACE_MS);
    socket.on('data', onFirst);
    socket.on('close', onEarlyClose);
  });

  const probeServer = net.createServer((socket) => {
    const observed = { host: plainAddress(socket.remoteAddress), port: socket.remotePort ?? 0 };
    event('probe', { from: formatEndpoint(observed) });
    rememberProbe(observed);
    socket.on('error', () => {});
    socket.end(encodeMessage({ v: PROTOCOL_VERSION, type: 'observed', endpoint: observed }));
  });

  // The probe port first: every client's hello names it, from the first connection on.
  probePort = options.probePort === null ? null : await listen(probeServer, options.host, options.probePort);
  let port: number;
  try {
    port = await listen(mainServer, options.host, options.port);
  } catch (error) {
    probeServer.close();
    throw error;
  }
  event('listening', {
    on: formatEndpoint({ host: options.host, port }),
    probe: probePort === null ? 'off' : formatEndpoint({ host: options.host, port: probePort }),
  });

  return {
    address: { host: options.host, port, probePort },
    close: async () => {
      for (const socket of stunSockets) socket.destroy();
      for (const client of [...clients]) {
        clearTimeout(client.timer);
        client.state = 'closed';
        client.socket.destroy();
      }
      clients.clear();
      sessions.clear();
      await Promise.all(
        [mainServer, probeServer]
          .filter((server) => server.listening)
          .map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
      );
    },
  };
}
