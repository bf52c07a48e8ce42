/**
 * The coordinator's end of one agent's control channel: connect, prove the token and check the
 * agent's proof, set the run up, then send batches and receive their side records. It pings every
 * second; the pongs give the channel's round trip and the agent's clock offset (kept for agents on
 * other machines). An agent that closes, errs or goes silent during the run is lost: `onLost` says
 * why, once.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { asAgentMessage } from '../agent/controlCodec.ts';
import { ControlConnection } from '../agent/controlConnection.ts';
import { agentProof, coordinatorProof, newNonce, proofsMatch } from '../agent/tokenProof.ts';
import {
  type AgentInfo,
  type AgentMessage,
  AUTH_TIMEOUT_MS,
  CONTROL_ERRORS,
  type CoordinatorMessage,
  type CpuTime,
  HEARTBEAT_MS,
} from '../agent/types.ts';
import { formatEndpoint } from '../core/endpoint.ts';
import { logValue } from '../core/printable.ts';
import type { EncodedStats } from '../stress/types.ts';
import type { AgentSpec } from './types.ts';

/** An agent could not be reached, refused us, or could not prepare the run: its name and why. */
export class AgentStartError extends Error {
  override name = 'AgentStartError';
  constructor(
    readonly agent: string,
    readonly reason: string,
  ) {
    super(`agent ${agent}: ${reason}`);
  }
}

type Connection = ControlConnection<AgentMessage, CoordinatorMessage>;
type ResultMessage = Extract<AgentMessage, { type: 'result' }>;

export interface ClientOptions {
  token: string;
  silenceMs: number;
  /** How long to keep trying to connect (an agent that is still starting refuses at first). */
  connectTimeoutMs: number;
}

function connectOnce(endpoint: { host: string; port: number }): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: endpoint.host, port: endpoint.port });
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      socket.destroy();
      reject(error);
    });
  });
}

export class AgentClient {
  private connection!: Connection;
  private waiting: ((message: AgentMessage | { type: 'closed'; reason: string }) => void) | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private readonly pings = new Map<number, number>();
  /** Callers waiting for the pong of a ping (pingNow), by its seq. */
  private readonly pongWaiters = new Map<number, () => void>();
  private readonly rtts: { rtt: number; offset: number }[] = [];
  private seq = 0;
  private lostReason: string | undefined;
  private running = false;
  private closedReason: string | undefined;
  info: AgentInfo | undefined;
  stats: EncodedStats | undefined;
  peakRssBytes: number | undefined;
  cpu: CpuTime | undefined;
  /** --hold: A sides the agent held at its last pong, its resident set then, and the keepalives it checked. */
  heldA = 0;
  rssBytes: number | undefined;
  /** --hold: the highest the agent's resident set was between its last two pongs. */
  rssPeakBytes: number | undefined;
  keepalivesVerified = 0;
  onResult: (message: ResultMessage) => void = () => {};
  onLost: (reason: string) => void = () => {};

  private constructor(
    readonly spec: AgentSpec,
    private readonly options: ClientOptions,
  ) {}

  /** Connects and authenticates both ways; throws AgentStartError naming the agent and the reason. */
  static async connect(spec: AgentSpec, options: ClientOptions): Promise<AgentClient> {
    const client = new AgentClient(spec, options);
    await client.open();
    return client;
  }

  private async open(): Promise<void> {
    const until = performance.now() + this.options.connectTimeoutMs;
    let socket: net.Socket | undefined;
    let last = '';
    while (!socket) {
      try {
        socket = await connectOnce(this.spec.control);
      } catch (error) {
        last = (error as NodeJS.ErrnoException).code ?? String(error);
        if (performance.now() > until)
          throw new AgentStartError(
            this.spec.name,
            `cannot connect to ${formatEndpoint(this.spec.control)} within ${this.options.connectTimeoutMs} ms (${last})`,
          );
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    this.connection = new ControlConnection({
      socket,
      decode: asAgentMessage,
      silenceMs: AUTH_TIMEOUT_MS,
      onMessage: (message) => this.onMessage(message),
      onClose: (reason) => this.onClose(reason),
    });
    const hello = await this.next('hello');
    if (!this.spec.anyName && hello.name !== this.spec.name)
      throw this.fail(`answers as agent '${logValue(hello.name)}', not '${this.spec.name}'`);
    const nonce = newNonce();
    this.connection.send({
      type: 'auth',
      nonce,
      proof: coordinatorProof(this.options.token, hello.nonce, nonce, hello.name),
    });
    const welcome = await this.next('welcome');
    if (!proofsMatch(agentProof(this.options.token, hello.nonce, nonce, hello.name), welcome.proof)) {
      this.connection.sendAndClose({
        type: 'error',
        code: CONTROL_ERRORS.auth,
        message: 'your proof does not match the coordinator’s token',
      });
      throw this.fail('does not know our token (its proof does not match)');
    }
    this.connection.authenticated();
    this.connection.setSilence(this.options.silenceMs);
  }

  private fail(reason: string): AgentStartError {
    this.connection?.close();
    return new AgentStartError(this.spec.name, `${formatEndpoint(this.spec.control)}: ${reason}`);
  }

  /** The next message, which must be of this type (an error message or a close is the reason we fail). */
  private next<T extends AgentMessage['type']>(type: T): Promise<Extract<AgentMessage, { type: T }>> {
    return new Promise((resolve, reject) => {
      if (this.closedReason !== undefined) {
        reject(this.fail(this.closedReason));
        return;
      }
      this.waiting = (message) => {
        this.waiting = undefined;
        if (message.type === type) resolve(message as Extract<AgentMessage, { type: T }>);
        else if (message.type === 'closed') reject(this.fail(message.reason));
        else if (message.type === 'error')
          reject(this.fail(`refused: ${logValue(message.message)} (${message.code})`));
        else reject(this.fail(`sent "${message.type}" where "${type}" was due`));
      };
    });
  }

  private onMessage(message: AgentMessage): void {
    if (this.waiting && message.type !== 'pong') {
      this.waiting(message);
      return;
    }
    switch (message.type) {
      case 'result':
        this.onResult(message);
        return;
      case 'pong': {
        const sentAt = this.pings.get(message.seq);
        if (sentAt === undefined) return;
        this.pings.delete(message.seq);
        const now = performance.now();
        const rtt = now - sentAt;
        // The agent's clock read half a round trip before now, on ours.
        const offset = message.time - (performance.timeOrigin + now - rtt / 2);
        this.rtts.push({ rtt, offset });
        if (this.rtts.length > 64) this.rtts.shift();
        if (message.heldA !== undefined) this.heldA = message.heldA;
        if (message.rssBytes !== undefined) this.rssBytes = message.rssBytes;
        if (message.rssPeakBytes !== undefined) this.rssPeakBytes = message.rssPeakBytes;
        this.pongWaiters.get(message.seq)?.();
        this.pongWaiters.delete(message.seq);
        return;
      }
      case 'stats':
        this.stats = message.stats;
        this.peakRssBytes = message.peakRssBytes;
        this.cpu = message.cpu;
        this.keepalivesVerified = message.keepalivesVerified ?? 0;
        return;
      case 'error':
        this.lose(`says: ${logValue(message.message)} (${message.code})`);
        this.connection.close();
        return;
      default:
        this.lose(`sent "${message.type}" during the run`);
        this.connection.close();
    }
  }

  private onClose(reason: string | undefined): void {
    clearInterval(this.pingTimer);
    const why = reason ?? 'closed the control connection';
    this.closedReason = why;
    if (this.waiting) this.waiting({ type: 'closed', reason: why });
    else if (this.running && !this.stats) this.lose(why);
  }

  private lose(reason: string): void {
    if (this.lostReason !== undefined) return;
    this.lostReason = reason;
    this.running = false;
    clearInterval(this.pingTimer);
    this.onLost(reason);
  }

  get lost(): string | undefined {
    return this.lostReason;
  }

  /** Sends the run's setup and waits until the agent's pool is ready. */
  async setup(message: Extract<CoordinatorMessage, { type: 'setup' }>): Promise<AgentInfo> {
    this.connection.send(message);
    this.startPinging();
    const ready = await this.next('ready');
    this.info = ready.info;
    return ready.info;
  }

  private ping(): number {
    this.seq += 1;
    this.pings.set(this.seq, performance.now());
    if (this.pings.size > 64) this.pings.delete(this.seq - 64);
    this.connection.send({ type: 'ping', seq: this.seq });
    return this.seq;
  }

  private startPinging(): void {
    this.ping();
    this.pingTimer = setInterval(() => this.ping(), HEARTBEAT_MS);
    this.pingTimer.unref();
  }

  /**
   * Pings now and resolves when the pong comes (its heldA and rssBytes are then current), or after
   * `timeoutMs` without it.
   */
  pingNow(timeoutMs: number): Promise<void> {
    const seq = this.ping();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pongWaiters.delete(seq);
        resolve();
      }, timeoutMs);
      this.pongWaiters.set(seq, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** From here a close or a silence is a loss. */
  begin(t0: number): void {
    this.running = true;
    this.connection.send({ type: 'start', t0: this.spec.sharedClock ? t0 : t0 + (this.clockOffsetMs ?? 0) });
  }

  send(message: CoordinatorMessage): void {
    if (this.lostReason === undefined) this.connection.send(message);
  }

  /** Median control round trip so far (ms). */
  get controlRttMs(): number | null {
    if (!this.rtts.length) return null;
    const sorted = this.rtts.map((sample) => sample.rtt).sort((x, y) => x - y);
    return sorted[Math.floor(sorted.length / 2)] ?? null;
  }

  /** The agent's clock minus ours (ms), from the ping with the shortest round trip. */
  get clockOffsetMs(): number | null {
    let best: { rtt: number; offset: number } | undefined;
    for (const sample of this.rtts) if (!best || sample.rtt < best.rtt) best = sample;
    return best ? best.offset : null;
  }

  /** Asks for the agent's side statistics and waits for them (or the loss, or `timeoutMs`). */
  async finish(timeoutMs: number): Promise<EncodedStats | undefined> {
    if (this.lostReason !== undefined) return undefined;
    this.connection.send({ type: 'finish' });
    const until = performance.now() + timeoutMs;
    while (!this.stats && this.lostReason === undefined && this.connection.open && performance.now() < until)
      await new Promise((resolve) => setTimeout(resolve, 20));
    this.running = false;
    return this.stats;
  }

  close(): void {
    clearInterval(this.pingTimer);
    this.running = false;
    this.connection?.close();
  }
}
