/**
 * The rendezvous client: learns our public endpoint and the peer's from the rendezvous server (and
 * from the probe port the server's hello names, whether our NAT's mapping depends on the
 * destination), waits
 * for the start time the server chose from measured round trips (so both SYNs leave together), then
 * opens a direct connection by simultaneous open from the SAME local port it used to reach the server:
 * that port's NAT mapping is the hole. Node binds with SO_REUSEADDR, so the port can be shared.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatEndpoint } from '../core/endpoint.ts';
import { escapeUnprintable } from '../core/printable.ts';
import type { Endpoint } from '../core/types.ts';
import { DialError, dialSimultaneous } from '../peer/dialSimultaneous.ts';
import { authToken, decodeServerMessage, encodeMessage, LineSplitter, PROTOCOL_VERSION } from './protocol.ts';
import type { ClientMessage, PeerInfo, ServerMessage } from './types.ts';

export interface PunchOptions {
  server: Endpoint;
  /** Our side: every connection (probe, server, peer) leaves from this port. */
  local: { host?: string; port: number };
  session: string;
  secret: string;
  name?: string;
  /** How long the simultaneous open may take once started (default 10 s). */
  deadlineMs?: number;
  /** Pause between connect attempts after a refusal (default 0: at once, as the dialer does). */
  retryIntervalMs?: number;
  /** Only one connect(): no retry after a refusal (shows whether the SYNs crossed in time). */
  singleAttempt?: boolean;
  /** Start this much later than the server asked (to demonstrate what timing does). */
  extraDelayMs?: number;
  /** How long to wait for the server (connect, registration, pairing); default 60 s. */
  serverTimeoutMs?: number;
  /**
   * One bound for everything, from the first connect to the direct connection (peer.ts --timeout):
   * the wait for the server and the peer, the start delay and the dial share it. Replaces
   * serverTimeoutMs; the dial gets what is left, at most deadlineMs.
   */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Progress, one line at a time (peer.ts prints these). */
  onProgress?: (line: string) => void;
  /** Called with the probe endpoint the server announced, before connecting to it. */
  onProbe?: (probe: Endpoint) => void;
  /**
   * Port prediction: when the server predicts the peer's next ports (an endpoint-dependent mapping
   * with sequential allocation), dial up to this many of them at once, each from our local port
   * (default 3; 0: off, dial only the endpoint the server saw).
   */
  predictPorts?: number;
}

/** How many predicted ports a client dials at once unless told otherwise. */
export const DEFAULT_PREDICTED_DIALS = 3;

export interface PunchResult {
  socket: net.Socket;
  self: PeerInfo;
  peer: PeerInfo;
  startInMs: number;
  attempts: number;
  /** From the agreed start to the direct connection. */
  elapsedMs: number;
  errors: Record<string, number>;
  /** Sockets we dialed with at once: 1, or with port prediction one per predicted port. */
  sockets: number;
}

export type PunchErrorCode = 'ERENDEZVOUS' | 'ESYMMETRIC' | 'EREFUSED' | 'ENOPATH' | 'ABORT_ERR';

/** Why there is no direct connection, with an explanation a person can act on. */
export class PunchError extends Error {
  override name = 'PunchError';
  constructor(
    message: string,
    readonly code: PunchErrorCode,
    readonly attempts = 0,
    readonly errors: Record<string, number> = {},
    readonly elapsedMs = 0,
    /** Sockets dialed with at once (more than 1 with port prediction). */
    readonly sockets = 1,
  ) {
    super(message);
  }
}

/**
 * Where to dial: the peer's predicted ports when the server predicted them (and prediction is on),
 * else the endpoint it saw. When both sides are predicted, each side's i-th socket leaves from its
 * i-th predicted port towards the other's i-th: the pairs meet.
 */
export function dialTargets(peer: PeerInfo, predict: number): Endpoint[] {
  if (predict > 0 && peer.prediction)
    return peer.prediction.ports.slice(0, predict).map((port) => ({ host: peer.endpoint.host, port }));
  return [peer.endpoint];
}

/** Dials every target at once from one local port; the first connection wins and ends the others. */
async function dialAny(
  local: { host: string; port: number },
  targets: Endpoint[],
  options: { retryIntervalMs: number; deadlineMs: number; signal?: AbortSignal },
): Promise<{ result: Awaited<ReturnType<typeof dialSimultaneous>>; remote: Endpoint }> {
  if (targets.length === 1)
    return {
      result: await dialSimultaneous({ local, remote: targets[0] as Endpoint, ...options }),
      remote: targets[0] as Endpoint,
    };
  const winner = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, winner.signal]) : winner.signal;
  const dials = targets.map((remote) =>
    dialSimultaneous({ local, remote, ...options, signal }).then((result) => ({ result, remote })),
  );
  let won: Awaited<(typeof dials)[number]> | undefined;
  try {
    won = await Promise.any(dials);
    return won;
  } catch (error) {
    const failures = (error as AggregateError).errors as DialError[];
    const real = failures.filter((failure) => failure instanceof DialError);
    const errors: Record<string, number> = {};
    for (const failure of real)
      for (const [code, count] of Object.entries(failure.errors)) errors[code] = (errors[code] ?? 0) + count;
    const first = real.find((failure) => failure.code !== 'ABORT_ERR') ?? real[0];
    if (!first) throw failures[0];
    throw new DialError(
      `${targets.length} predicted ports (${targets.map((target) => target.port).join(', ')}): ${first.message}`,
      first.code,
      real.reduce((sum, failure) => sum + failure.attempts, 0),
      errors,
      Math.max(...real.map((failure) => failure.elapsedMs)),
    );
  } finally {
    // The others end: aborted dials destroy their sockets; one that connected too is closed here.
    winner.abort();
    for (const dial of dials)
      dial.then(
        (other) => {
          if (other.result.socket !== won?.result.socket) other.result.socket.destroy();
        },
        () => {},
      );
  }
}

/** Reads validated server messages from a socket, one at a time. */
class ServerConnection {
  private readonly splitter = new LineSplitter();
  private readonly queue: ServerMessage[] = [];
  private waiter?: { resolve: (message: ServerMessage) => void; reject: (error: Error) => void };
  private failure?: Error;

  constructor(
    readonly socket: net.Socket,
    private readonly what: string,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      try {
        for (const line of this.splitter.push(chunk)) {
          const decoded = decodeServerMessage(line);
          if (!decoded.ok) throw new Error(`bad message from the server (${decoded.code}): ${decoded.error}`);
          this.queue.push(decoded.message);
        }
      } catch (error) {
        this.fail(new PunchError(`${this.what}: ${(error as Error).message}`, 'ERENDEZVOUS'));
        socket.destroy();
      }
      this.deliver();
    });
    socket.on('error', (error) => this.fail(new PunchError(`${this.what}: ${error.message}`, 'ERENDEZVOUS')));
    socket.on('close', () =>
      this.fail(new PunchError(`${this.what}: the server closed the connection`, 'ERENDEZVOUS')),
    );
  }

  private fail(error: Error) {
    this.failure ??= error;
    this.deliver();
  }

  private deliver() {
    if (!this.waiter) return;
    const message = this.queue.shift();
    if (message) {
      const { resolve } = this.waiter;
      this.waiter = undefined;
      resolve(message);
    } else if (this.failure) {
      const { reject } = this.waiter;
      this.waiter = undefined;
      reject(this.failure);
    }
  }

  next(): Promise<ServerMessage> {
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.deliver();
    });
  }

  send(message: ClientMessage) {
    if (this.socket.writable) this.socket.write(encodeMessage(message));
  }
}

function connectFrom(
  local: { host: string; port: number },
  remote: Endpoint,
  signal: AbortSignal,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host: remote.host,
      port: remote.port,
      localAddress: local.host,
      localPort: local.port,
    });
    const onAbort = () => {
      socket.destroy();
      reject(
        new PunchError(
          `connecting to the rendezvous server ${formatEndpoint(remote)}: timed out or aborted`,
          'ERENDEZVOUS',
        ),
      );
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      if (socket.localPort === socket.remotePort && socket.localAddress === socket.remoteAddress) {
        socket.destroy();
        reject(
          new PunchError(
            `local port ${local.port} is the server's own port ${formatEndpoint(remote)}: a self-connect`,
            'ERENDEZVOUS',
          ),
        );
      } else resolve(socket);
    });
    socket.once('error', (error) => {
      signal.removeEventListener('abort', onAbort);
      reject(
        new PunchError(
          `cannot reach the rendezvous server ${formatEndpoint(remote)} from port ${local.port}: ${error.message}`,
          'ERENDEZVOUS',
        ),
      );
    });
  });
}

function rendezvousError(message: ServerMessage): PunchError {
  // The server's text goes to our terminal: nothing in it may act as a control sequence there.
  return new PunchError(
    message.type === 'error'
      ? `rendezvous server refused: ${escapeUnprintable(message.message)} (${message.code})`
      : `rendezvous server sent an unexpected '${message.type}'`,
    'ERENDEZVOUS',
  );
}

/** Asks the probe port which public endpoint our local port maps to when talking to it. */
async function probe(
  local: { host: string; port: number },
  server: Endpoint,
  signal: AbortSignal,
): Promise<Endpoint> {
  const socket = await connectFrom(local, server, signal);
  const connection = new ServerConnection(socket, 'probe');
  const abort = () => socket.destroy();
  signal.addEventListener('abort', abort, { once: true });
  try {
    const message = await connection.next();
    if (message.type !== 'observed') throw rendezvousError(message);
    return message.endpoint;
  } finally {
    signal.removeEventListener('abort', abort);
    socket.destroy();
  }
}

/** Why the dial failed, in words; the mappings the server saw decide the likely cause. */
export function explainFailure(
  self: PeerInfo,
  peer: PeerInfo,
  error: DialError,
  predicted = false,
): { code: PunchErrorCode; text: string } {
  // Not a timeout: something local (a listener on our port, say); retrying or NATs are not the story.
  if (error.code !== 'EDEADLINE') return { code: 'ENOPATH', text: `the dial itself failed (${error.code})` };
  if (predicted)
    return {
      code: 'ESYMMETRIC',
      text: "port prediction missed: none of the predicted ports was the peer's mapping (other connections through its NAT took ports in between, or its allocation is not sequential)",
    };
  const symmetric = [
    self.mapping === 'endpoint-dependent' ? 'our NAT' : '',
    peer.mapping === 'endpoint-dependent' ? `the peer's${peer.name ? ` (${peer.name}'s)` : ''} NAT` : '',
  ].filter(Boolean);
  if (symmetric.length)
    return {
      code: 'ESYMMETRIC',
      text:
        `${symmetric.join(' and ')} ${symmetric.length > 1 ? 'are symmetric NATs' : 'is a symmetric NAT'} ` +
        '(endpoint-dependent mapping: the server saw a different public port on each of its two ports), ' +
        'so the port dialed was not the port the SYN left from; the mapped port cannot be predicted',
    };
  if (error.errors.ECONNREFUSED)
    return {
      code: 'EREFUSED',
      text:
        'every SYN was refused (RST): a router or host answered the early SYN before the other side had opened its mapping, ' +
        'and the SYNs never crossed in time',
    };
  return {
    code: 'ENOPATH',
    text: 'no SYN got through: the routers dropped them (filtering), or the peer never dialed',
  };
}

/**
 * Registers with the rendezvous server, then punches. Resolves with the direct socket; rejects
 * with a PunchError that says why not.
 */
export async function punchThroughRendezvous(options: PunchOptions): Promise<PunchResult> {
  const progress = options.onProgress ?? (() => {});
  const begun = performance.now();
  const serverTimeoutMs = options.timeoutMs ?? options.serverTimeoutMs ?? 60_000;
  const serverTimeout = AbortSignal.timeout(serverTimeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, serverTimeout]) : serverTimeout;
  const local = {
    host: options.local.host ?? (net.isIPv6(options.server.host) ? '::' : '0.0.0.0'),
    port: options.local.port,
  };

  // Once the signal fires, what failed is the wait, not the server: say which wait.
  const explainAbort = (error: unknown) => {
    if (options.signal?.aborted) return new PunchError('aborted', 'ABORT_ERR');
    if (serverTimeout.aborted)
      return new PunchError(
        `not paired through the rendezvous server ${formatEndpoint(options.server)} within ${serverTimeoutMs} ms (no peer with the same session and secret, or the server did not answer)`,
        'ERENDEZVOUS',
      );
    return error;
  };

  const socket = await connectFrom(local, options.server, signal).catch((error) => {
    throw explainAbort(error);
  });
  socket.setNoDelay(true);
  // An empty line (skipped by the protocol) tells the server at once that we are not a STUN client,
  // so its hello comes without waiting.
  socket.write('\n');
  const connection = new ServerConnection(socket, 'rendezvous');
  const abortConnection = () => socket.destroy();
  signal.addEventListener('abort', abortConnection, { once: true });
  const next = () =>
    connection.next().catch((error) => {
      throw explainAbort(error);
    });
  try {
    // The server's first message says where its probe port is, or that it has none.
    const hello = await next();
    if (hello.type !== 'hello') throw rendezvousError(hello);
    if (serverTimeoutMs > hello.pairTimeoutMs)
      progress(
        `note: the server drops a peer left unpaired after ${hello.pairTimeoutMs} ms, sooner than our ${serverTimeoutMs} ms`,
      );
    let probed: Endpoint | null = null;
    if (hello.probePort === null) progress('the server has no probe port: NAT mappings will show as unknown');
    else {
      const probeEndpoint = { host: options.server.host, port: hello.probePort };
      options.onProbe?.(probeEndpoint);
      probed = await probe(local, probeEndpoint, signal).catch((error) => {
        throw explainAbort(error);
      });
      progress(`probe: port ${local.port} maps to ${formatEndpoint(probed)} towards port ${hello.probePort}`);
    }

    connection.send({
      v: PROTOCOL_VERSION,
      type: 'register',
      session: options.session,
      auth: authToken(options.secret, options.session),
      name: options.name ?? '',
      probed,
    });
    let pairing: Extract<ServerMessage, { type: 'peer' }> | undefined;
    while (!pairing) {
      const message = await next();
      if (message.type === 'ping') connection.send({ v: PROTOCOL_VERSION, type: 'pong', id: message.id });
      else if (message.type === 'registered')
        progress(
          `registered for session '${options.session}'; public endpoint ${formatEndpoint(message.observed)}`,
        );
      else if (message.type === 'peer') pairing = message;
      else throw rendezvousError(message);
    }
    signal.removeEventListener('abort', abortConnection);
    const { self, peer } = pairing;
    const startInMs = pairing.startInMs + (options.extraDelayMs ?? 0);
    progress(
      `peer ${peer.name ? `${peer.name} ` : ''}at ${formatEndpoint(peer.endpoint)} (${peer.mapping} mapping, rtt ${peer.rttMs} ms); dialing in ${startInMs} ms`,
    );
    await sleep(startInMs, undefined, options.signal ? { signal: options.signal } : {}).catch(() => {
      throw new PunchError('aborted', 'ABORT_ERR');
    });

    // With one overall timeout, the dial gets what is left of it after the start delay.
    const leftMs =
      options.timeoutMs === undefined
        ? Number.POSITIVE_INFINITY
        : options.timeoutMs - (performance.now() - begun);
    if (leftMs <= 0)
      throw new PunchError(
        `the timeout of ${options.timeoutMs} ms ran out before the agreed start`,
        'ENOPATH',
      );
    const deadlineMs = Math.min(options.deadlineMs ?? (options.timeoutMs ? leftMs : 10_000), leftMs);
    // Behind a symmetric NAT every retry leaves from a new public port: retrying would only guess
    // ports (thousands of attempts sometimes hit the right one by luck). One honest attempt per
    // socket; with port prediction, one socket per predicted port.
    const symmetric = self.mapping === 'endpoint-dependent' || peer.mapping === 'endpoint-dependent';
    const predict = options.predictPorts ?? DEFAULT_PREDICTED_DIALS;
    const targets = dialTargets(peer, predict);
    if (targets.length > 1)
      progress(
        `port prediction: the peer's next ports should be ${targets.map((target) => target.port).join(', ')} (step ${peer.prediction?.step}); dialing all ${targets.length} from port ${local.port}`,
      );
    else if (symmetric && !options.singleAttempt)
      progress('a symmetric NAT is involved (endpoint-dependent mapping): one connect attempt, no retries');
    const singleAttempt = options.singleAttempt || symmetric;
    const started = performance.now();
    try {
      const { result, remote } = await dialAny(local, targets, {
        // One attempt: the retry would come after the deadline.
        retryIntervalMs: singleAttempt ? deadlineMs * 2 : (options.retryIntervalMs ?? 0),
        deadlineMs,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      const elapsedMs = performance.now() - started;
      connection.send({
        v: PROTOCOL_VERSION,
        type: 'result',
        ok: true,
        elapsedMs,
        attempts: result.attempts,
      });
      return {
        socket: result.socket,
        self,
        peer: remote === peer.endpoint ? peer : { ...peer, endpoint: remote },
        startInMs,
        attempts: result.attempts,
        elapsedMs,
        errors: result.errors,
        sockets: targets.length,
      };
    } catch (error) {
      if (!(error instanceof DialError)) throw error;
      if (error.code === 'ABORT_ERR')
        throw new PunchError(
          'aborted',
          'ABORT_ERR',
          error.attempts,
          error.errors,
          error.elapsedMs,
          targets.length,
        );
      const why = explainFailure(self, peer, error, targets.length > 1);
      connection.send({
        v: PROTOCOL_VERSION,
        type: 'result',
        ok: false,
        elapsedMs: error.elapsedMs,
        attempts: error.attempts,
        error: why.code,
      });
      throw new PunchError(
        `no direct connection to ${targets.length > 1 ? `${peer.endpoint.host} (predicted ports)` : formatEndpoint(peer.endpoint)} after ${error.attempts} attempts in ${Math.round(error.elapsedMs)} ms (${error.message}): ${why.text}`,
        why.code,
        error.attempts,
        error.errors,
        error.elapsedMs,
        targets.length,
      );
    }
  } finally {
    signal.removeEventListener('abort', abortConnection);
    // The server is no longer needed: the chat goes over the direct connection only.
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref();
  }
}
