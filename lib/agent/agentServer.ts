/**
 * A stress agent (`stress.ts agent`): listens for a coordinator on its control address, proves and
 * checks the shared token, then runs the coordinator's batches, this agent's side of each pair, in a
 * Piscina pool, sending back each batch's side records and, at the end, its side statistics. One
 * coordinator at a time; a stranger, a wrong token, a malformed or oversized frame is refused or
 * dropped with a line on stderr, and the agent goes on serving. A coordinator that goes silent or
 * away stops its run: the sides in flight are cancelled.
 */
import net from 'node:net';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Piscina } from 'piscina';
import { logValue } from '../core/printable.ts';
import { selfTestRawTcp } from '../core/rawTcpSelfTest.ts';
import type { Endpoint } from '../core/types.ts';
import { PairStats } from '../stress/pairStats.ts';
import { batchThreadPool, warmEveryThread, YOUNG_GENERATION_MB } from '../stress/threadPool.ts';
import type { WarmupTask } from '../stress/types.ts';
import { asCoordinatorMessage } from './controlCodec.ts';
import { ControlConnection } from './controlConnection.ts';
import type { PeerList } from './peerList.ts';
import type { SessionHooks } from './sessionHooks.ts';
import { agentProof, coordinatorProof, newNonce, proofsMatch } from './tokenProof.ts';
import {
  AGENT_CONTROL,
  type AgentInfo,
  type AgentMessage,
  AUTH_TIMEOUT_MS,
  CLOSE_CODES,
  CONTROL_ERRORS,
  type CoordinatorMessage,
  type LinkAssignment,
  RECORD_FIELDS,
  SIDE_OUTCOMES,
  type SideRunConfig,
  type SideTask,
  type SideTaskResult,
} from './types.ts';

/** Test hook, internal: an agent of this name fails before it listens (an agent that cannot start). */
export const FAIL_START_ENV = 'SIMOPEN_TEST_AGENT_FAIL_START';

const WORKER_FILE = new URL('../../workers/agentWorker.ts', import.meta.url).href;

export interface AgentOptions {
  listen: Endpoint;
  token: string;
  name: string;
  /** Worker threads, unless the coordinator's setup names a number. */
  workers: number;
  /** Serve one coordinator, then exit. */
  once: boolean;
  silenceMs: number;
  /** This agent's place among the agents (--peers, --index). */
  peers?: PeerList;
  dropEarlyRst?: boolean;
  /** Checks and set-up around each run (lib/agent/sessionHooks.ts). */
  hooks?: SessionHooks;
}

type Connection = ControlConnection<CoordinatorMessage, AgentMessage>;

export interface RunningAgent {
  /** Where it listens (the port the kernel chose when asked for 0). */
  address: Endpoint;
  /** Resolves with the exit code: after the one session with --once, or after stop(). */
  done: Promise<number>;
  stop(): Promise<void>;
}

/** Starts the agent; resolves once it listens. */
export async function startAgent(
  options: AgentOptions,
  log: (line: string) => void = (line) => process.stderr.write(`stress agent ${options.name}: ${line}\n`),
): Promise<RunningAgent> {
  if (process.env[FAIL_START_ENV] === options.name)
    throw new Error(`${FAIL_START_ENV}: simulated start failure`);
  let session: Session | undefined;
  let finish: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => {
    finish = resolve;
  });
  let socketsChecked: Promise<string | undefined> | undefined;

  const server = net.createServer((socket) => {
    const connection: Connection = new ControlConnection({
      socket,
      decode: asCoordinatorMessage,
      silenceMs: AUTH_TIMEOUT_MS,
      onMessage: (message) => onPreAuth(message),
      onClose: (reason) => {
        if (reason) log(`dropped the connection from ${connection.remote}: ${reason}`);
      },
    });
    const nonce = newNonce();
    connection.send({ type: 'hello', name: options.name, nonce });
    let authenticated = false;
    const onPreAuth = (message: CoordinatorMessage) => {
      if (authenticated) return session?.handle(connection, message);
      if (message.type === 'error') {
        log(`the coordinator at ${connection.remote} refused: ${logValue(message.message)}`);
        return connection.close();
      }
      if (message.type !== 'auth') {
        const reason = `"${message.type}" before authentication`;
        return connection.sendAndClose(
          { type: 'error', code: CONTROL_ERRORS.protocol, message: reason },
          reason,
        );
      }
      const expected = coordinatorProof(options.token, nonce, message.nonce, options.name);
      if (!proofsMatch(expected, message.proof)) {
        log(
          `refused the coordinator at ${connection.remote}: wrong token (its proof does not match this agent's token)`,
        );
        return connection.sendAndClose({
          type: 'error',
          code: CONTROL_ERRORS.auth,
          message: `agent ${options.name} refused: wrong token`,
        });
      }
      authenticated = true;
      connection.authenticated();
      connection.send({
        type: 'welcome',
        proof: agentProof(options.token, nonce, message.nonce, options.name),
      });
      if (session) {
        log(
          `refused a second coordinator at ${connection.remote}: busy with the one at ${session.connection.remote}`,
        );
        return connection.sendAndClose({
          type: 'error',
          code: CONTROL_ERRORS.busy,
          message: `agent ${options.name} is busy with another coordinator`,
        });
      }
      log(`coordinator at ${connection.remote} authenticated`);
      socketsChecked ??= selfTestRawTcp();
      session = new Session(connection, options, log, socketsChecked, (finished) => {
        session = undefined;
        if (options.once) {
          server.close();
          finish(finished ? 0 : 1);
        }
      });
      // From here the coordinator pings every second: silence means it is gone.
      connection.setSilence(options.silenceMs);
    };
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listen.port, options.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as net.AddressInfo;
  const address = { host: bound.address, port: bound.port };
  return {
    address,
    done,
    async stop() {
      server.close();
      await session?.end('the agent is stopping');
      finish(0);
    },
  };
}

/** --hold: how often an agent samples its resident set for the peak its pongs report. */
const RSS_SAMPLE_MS = 100;

/** One coordinator's run on this agent. */
class Session {
  private pool: Piscina<SideTask | WarmupTask, SideTaskResult | number> | undefined;
  private run: SideRunConfig | undefined;
  private links = new Map<number, LinkAssignment>();
  private t0: number | undefined;
  private readonly control = new SharedArrayBuffer(AGENT_CONTROL.length * 4);
  private readonly cancels = new Map<number, Int32Array>();
  private readonly outstanding = new Set<Promise<void>>();
  private stats = new PairStats();
  /** CPU time used before the run, not counted in the run's. */
  private cpuAtSetup: NodeJS.CpuUsage | undefined;
  private finished = false;
  private ending: Promise<void> | undefined;
  /** --hold: the highest resident set sampled since the last pong, and its sampler. */
  private rssPeak = 0;
  private rssSampler: NodeJS.Timeout | undefined;

  constructor(
    readonly connection: Connection,
    private readonly options: AgentOptions,
    private readonly log: (line: string) => void,
    private readonly socketsChecked: Promise<string | undefined>,
    private readonly onEnd: (finished: boolean) => void,
  ) {
    // Replace the pre-authentication close handler's silence: the coordinator pings every second.
    connection.socket.on('close', () => void this.end(undefined));
  }

  handle(connection: Connection, message: CoordinatorMessage): void {
    if (connection !== this.connection) return;
    switch (message.type) {
      case 'setup':
        void this.setup(message);
        return;
      case 'start':
        this.t0 = message.t0;
        return;
      case 'batch':
        this.batch(message);
        return;
      case 'abandon':
        for (const batch of message.batches) {
          const cancel = this.cancels.get(batch);
          if (cancel) Atomics.store(cancel, 0, 1);
        }
        return;
      case 'stop':
        Atomics.store(new Int32Array(this.control), AGENT_CONTROL.stop, 1);
        return;
      case 'finish':
        void this.finishRun();
        return;
      case 'ping':
        connection.send({
          type: 'pong',
          seq: message.seq,
          time: performance.timeOrigin + performance.now(),
          // --hold: what the coordinator's peak of pairs held at once and memory per pair are made of.
          ...(this.run?.holdMs ? this.holdReading() : {}),
        });
        return;
      case 'error':
        this.log(`the coordinator says: ${logValue(message.message)}`);
        connection.close();
        return;
      default:
        this.protocolError(`"${message.type}" after authentication`);
    }
  }

  private protocolError(reason: string): void {
    this.connection.sendAndClose({ type: 'error', code: CONTROL_ERRORS.protocol, message: reason }, reason);
  }

  private async setup(message: Extract<CoordinatorMessage, { type: 'setup' }>): Promise<void> {
    if (this.pool) return this.protocolError('a second setup');
    this.cpuAtSetup = process.cpuUsage();
    this.run = message.run;
    for (const link of message.links) this.links.set(link.link, link);
    const workers = message.workers ?? this.options.workers;
    try {
      await this.options.hooks?.prepare(message);
      const socketsReason = message.run.sockets === 'handle' ? await this.socketsChecked : undefined;
      if (socketsReason) {
        this.log(`${socketsReason}; using net.Socket`);
        this.run = { ...message.run, sockets: 'net' };
      }
      // As a local run's pool (lib/stress/threadPool.ts): a hold keeps its sides, not their garbage.
      this.pool = batchThreadPool(
        WORKER_FILE,
        workers,
        // Every batch the coordinator has in flight runs at once: an agent never holds a side back.
        Math.max(1, Math.ceil(message.maxBatches / workers) + 1),
        message.run.holdMs ? YOUNG_GENERATION_MB.hold : YOUNG_GENERATION_MB.run,
      );
      this.pool.on('error', (error: unknown) => this.log(`a worker died: ${String(error)}`));
      const pool = this.pool;
      await warmEveryThread((task) => pool.run(task), workers);
      const info: AgentInfo = {
        name: this.options.name,
        pid: process.pid,
        workers,
        sockets: this.run.sockets,
        ...(socketsReason ? { socketsReason } : {}),
        node: process.version,
        kernel: os.release(),
        hostname: os.hostname(),
      };
      this.connection.send({ type: 'ready', info });
    } catch (error) {
      const reason = `cannot prepare the run: ${error instanceof Error ? error.message : String(error)}`;
      this.log(reason);
      this.connection.sendAndClose({ type: 'error', code: CONTROL_ERRORS.setup, message: reason }, reason);
    }
  }

  private batch(message: Extract<CoordinatorMessage, { type: 'batch' }>): void {
    const link = this.links.get(message.link);
    if (!this.pool || !this.run || this.t0 === undefined || !link) {
      this.protocolError(
        !link
          ? `batch ${message.batch} of link ${message.link}, which is not this agent's`
          : 'a batch before setup and start',
      );
      return;
    }
    const cancel = new SharedArrayBuffer(4);
    this.cancels.set(message.batch, new Int32Array(cancel));
    const side = link.role === 'a' ? 0 : 1;
    const task: SideTask = {
      batch: message.batch,
      firstId: message.firstId,
      firstIndex: message.firstIndex,
      count: message.count,
      role: link.role,
      local: link.local,
      peer: link.peer,
      portOffset: link.portOffset,
      config: this.run,
      t0: this.t0,
      control: this.control,
      cancel,
    };
    const running = this.pool.run(task).then(
      (result) => this.sendResult(message.batch, result as SideTaskResult, side),
      (error: unknown) => {
        // A worker that died took its sides' facts: they count as failed here, the pairs at the coordinator.
        this.log(`a worker died running batch ${message.batch}: ${String(error)}`);
        const records: number[] = [];
        for (let index = 0; index < message.count; index += 1)
          records.push(SIDE_OUTCOMES.indexOf('failed'), 0, 0, -1, 0, -1, 0, 0);
        this.sendResult(message.batch, { records, errors: ['EWORKERCRASH'] }, side);
      },
    );
    this.outstanding.add(running);
    void running.finally(() => this.outstanding.delete(running));
  }

  private sendResult(batch: number, result: SideTaskResult, side: 0 | 1): void {
    this.cancels.delete(batch);
    this.record(result, side);
    this.connection.send({ type: 'result', batch, records: result.records, errors: result.errors });
  }

  /** This agent's side statistics: every side once. */
  private record(result: SideTaskResult, side: 0 | 1): void {
    const { records, errors } = result;
    const stats = this.stats;
    for (let at = 0; at < records.length; at += RECORD_FIELDS) {
      const outcome = SIDE_OUTCOMES[records[at] as number];
      stats.recordAttempts(records[at + 2] as number, side);
      stats.bytesVerified += records[at + 6] as number;
      if (outcome === 'established')
        stats.recordEstablished(
          records[at + 3] as number,
          records[at + 5] as number,
          CLOSE_CODES[records[at + 7] as number] ?? 'fin',
        );
      else if (outcome === 'failed') stats.recordFailed(errors[records[at + 1] as number] ?? 'EUNKNOWN');
      else if (outcome === 'cancelled') stats.recordCancelled();
      else stats.recordNotStarted();
    }
  }

  private async finishRun(): Promise<void> {
    await Promise.all(this.outstanding);
    this.finished = true;
    // maxRSS is in KiB; this process holds the worker threads, so it covers the whole pool.
    const peakRssBytes = process.resourceUsage().maxRSS * 1024;
    const used = process.cpuUsage(this.cpuAtSetup);
    const cpu = { userMs: used.user / 1000, systemMs: used.system / 1000 };
    const keepalivesVerified = Atomics.load(new Int32Array(this.control), AGENT_CONTROL.keepalives);
    this.connection.send({
      type: 'stats',
      stats: this.stats.encode(),
      peakRssBytes,
      cpu,
      ...(this.run?.holdMs ? { keepalivesVerified } : {}),
    });
    this.connection.socket.end();
  }

  /**
   * A pong's hold figures. The resident set's peak between pongs comes from a sampler of its own (as a
   * local hold samples every 100 ms): a pong a second would miss a peak between two of them.
   */
  private holdReading(): { heldA: number; rssBytes: number; rssPeakBytes: number } {
    const rssBytes = process.memoryUsage.rss();
    if (!this.rssSampler) {
      this.rssSampler = setInterval(() => {
        this.rssPeak = Math.max(this.rssPeak, process.memoryUsage.rss());
      }, RSS_SAMPLE_MS);
      this.rssSampler.unref();
    }
    const rssPeakBytes = Math.max(this.rssPeak, rssBytes);
    this.rssPeak = 0;
    return { heldA: Atomics.load(new Int32Array(this.control), AGENT_CONTROL.heldA), rssBytes, rssPeakBytes };
  }

  /** Ends the session: stops what runs, waits for it, frees the pool. */
  end(reason: string | undefined): Promise<void> {
    this.ending ??= (async () => {
      if (!this.finished) {
        if (this.outstanding.size)
          this.log(
            `${reason ?? 'the coordinator went away'}: cancelling the sides in flight (${this.outstanding.size} batches)`,
          );
        Atomics.store(new Int32Array(this.control), AGENT_CONTROL.stop, 1);
      }
      clearInterval(this.rssSampler);
      this.connection.close();
      await Promise.all(this.outstanding);
      await this.pool?.destroy();
      await this.options.hooks?.release();
      this.stats.destroy();
      this.log(this.finished ? 'run finished' : 'session ended');
      this.onEnd(this.finished);
    })();
    return this.ending;
  }
}
