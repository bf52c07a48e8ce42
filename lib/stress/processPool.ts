/**
 * Several stress processes (lib/stress/batchProcess.ts) in this process's network namespace, used by
 * the main thread of a run as it uses its thread pool (BatchPool): a batch goes to the process with
 * the fewest batches under way, and its result comes back whole. A run spreads over them when one
 * process may not open the descriptors it holds at once (--hold, --processes; lib/stress/options.ts).
 *
 * The processes' CONTROL counters are added into the run's own control buffer as they report them
 * (every COUNTS_INTERVAL_MS and before every result), so progress, the timeline and the peak of pairs
 * open at once read one buffer; the run's stop and logFailed go the other way. A process that exits
 * under way fails the batches it had (the run counts their pairs failed, EWORKERCRASH, as for a worker
 * thread); the other processes go on.
 */
import { EventEmitter } from 'node:events';
import { type Child, passedFd, REPO_ROOT, startChild } from '../core/childProcess.ts';
import { workerExecArgv } from '../core/workerExecArgv.ts';
import type { StressProcessSpec } from './batchProcess.ts';
import {
  type BatchPool,
  type BatchResult,
  type BatchTask,
  CONTROL,
  type FromStressProcess,
  type ToStressProcess,
  type WarmupTask,
} from './types.ts';

const PROCESS_FILE = new URL('../../workers/stressProcess.ts', import.meta.url).pathname;
/** Every process says it is ready within this (they start at once, each compiling its modules). */
const READY_TIMEOUT_MS = 120_000;
/** How often the run's stop and logFailed are checked for a change to pass on. */
const FORWARD_INTERVAL_MS = 20;
/** At the end, a process gets this long to exit after its channel closes, then SIGKILL. */
const EXIT_TIMEOUT_MS = 5000;

export interface ProcessPoolOptions {
  processes: number;
  threadsPerProcess: number;
  batchesPerThread: number;
  youngGenerationMb: number;
  /** The run's control buffer: the processes' counters are added into it. */
  counters: Int32Array;
  /** The pair log's descriptor, or -1. */
  logFd: number;
}

interface Pending {
  resolve: (result: BatchResult | number) => void;
  reject: (error: Error) => void;
}

interface Member {
  /** 1-based, as messages name it. */
  number: number;
  child: Child;
  pending: Map<number, Pending>;
  /** Its counters as last reported (all CONTROL slots). */
  counts: number[];
  rssBytes: number;
  maxRssBytes: number;
  alive: boolean;
}

/** Counter slots the processes add to the run's; stop and logFailed are the run's, peakOpen is taken from the sum. */
const SUMMED_SLOTS = Object.entries(CONTROL)
  .filter(([name]) => !['stop', 'logFailed', 'peakOpen', 'length'].includes(name))
  .map(([, slot]) => slot);

export class ProcessPool extends EventEmitter implements BatchPool {
  private readonly members: Member[] = [];
  private nextId = 1;
  private closing = false;
  private sentControl = { stop: 0, logFailed: 0 };
  private readonly forwarder: NodeJS.Timeout;

  private constructor(private readonly options: ProcessPoolOptions) {
    super();
    this.forwarder = setInterval(() => this.forwardControl(), FORWARD_INTERVAL_MS);
    this.forwarder.unref();
  }

  /** Starts the processes; resolves once every one is ready, or rejects naming one that is not (all stopped). */
  static async start(options: ProcessPoolOptions): Promise<ProcessPool> {
    const pool = new ProcessPool(options);
    const readies: Promise<void>[] = [];
    for (let number = 1; number <= options.processes; number += 1) readies.push(pool.startMember(number));
    try {
      await Promise.all(readies);
    } catch (error) {
      await pool.destroy();
      throw error;
    }
    return pool;
  }

  run(task: BatchTask | WarmupTask): Promise<BatchResult | number> {
    let member: Member | undefined;
    for (const candidate of this.members)
      if (candidate.alive && (!member || candidate.pending.size < member.pending.size)) member = candidate;
    if (!member) return Promise.reject(new Error('every stress process has exited'));
    const id = this.nextId++;
    const sent = 'warmup' in task ? task : { firstId: task.firstId, count: task.count, config: task.config };
    const target = member;
    return new Promise((resolve, reject) => {
      target.pending.set(id, { resolve, reject });
      this.send(target, { type: 'run', id, task: sent });
    });
  }

  /** The processes' resident sets as last reported (every COUNTS_INTERVAL_MS). */
  residentBytes(): number {
    return this.members.reduce((sum, member) => sum + (member.alive ? member.rssBytes : 0), 0);
  }

  /** The sum of each process's own peak resident set. */
  peakResidentBytes(): number {
    return this.members.reduce((sum, member) => sum + member.maxRssBytes, 0);
  }

  async destroy(): Promise<void> {
    this.closing = true;
    clearInterval(this.forwarder);
    await Promise.all(
      this.members.map(async (member) => {
        if (!member.child.running()) return;
        // Its channel closing is its signal to end (lib/stress/batchProcess.ts).
        if (member.child.process.connected) member.child.process.disconnect();
        const timer = setTimeout(() => member.child.stop('SIGKILL'), EXIT_TIMEOUT_MS);
        await member.child.exited.catch(() => 0);
        clearTimeout(timer);
      }),
    );
  }

  private startMember(number: number): Promise<void> {
    const { options } = this;
    const ipc = { ipc: true, tied: false };
    const spec: StressProcessSpec = {
      threads: options.threadsPerProcess,
      batchesPerThread: options.batchesPerThread,
      youngGenerationMb: options.youngGenerationMb,
      logFd: options.logFd >= 0 ? passedFd(ipc, 0) : -1,
    };
    const child = startChild(process.execPath, [...workerExecArgv(), PROCESS_FILE, JSON.stringify(spec)], {
      ...ipc,
      cwd: REPO_ROOT,
      stdin: 'ignore',
      output: 'inherit',
      passFds: options.logFd >= 0 ? [options.logFd] : [],
    });
    const member: Member = {
      number,
      child,
      pending: new Map(),
      counts: new Array<number>(CONTROL.length).fill(0),
      rssBytes: 0,
      maxRssBytes: 0,
      alive: true,
    };
    this.members.push(member);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`stress process ${number} was not ready within ${READY_TIMEOUT_MS / 1000} s`)),
        READY_TIMEOUT_MS,
      );
      child.process.on('message', (message: FromStressProcess) => {
        if (message.type === 'ready') {
          clearTimeout(timer);
          resolve();
        } else this.received(member, message);
      });
      child.exited.then(
        (code) => {
          clearTimeout(timer);
          reject(
            new Error(`stress process ${number} (pid ${child.pid}) exited (${code}) before it was ready`),
          );
          this.exited(member, code);
        },
        (error: Error) => {
          clearTimeout(timer);
          reject(new Error(`stress process ${number} could not start: ${error.message}`));
          this.exited(member, -1);
        },
      );
    });
  }

  private received(member: Member, message: FromStressProcess): void {
    switch (message.type) {
      case 'counts':
        this.applyCounts(member, message.counts);
        member.rssBytes = message.rssBytes;
        member.maxRssBytes = Math.max(member.maxRssBytes, message.maxRssBytes);
        return;
      case 'result':
      case 'failed': {
        const pending = member.pending.get(message.id);
        if (!pending) return;
        member.pending.delete(message.id);
        if (message.type === 'result') pending.resolve(message.result);
        else pending.reject(new Error(`stress process ${member.number}: ${message.error}`));
        return;
      }
      case 'workerDied':
        this.emit('error', new Error(`stress process ${member.number}: ${message.error}`));
        return;
    }
  }

  /** Adds what changed in a process's counters to the run's, and keeps the peak of pairs open at once. */
  private applyCounts(member: Member, counts: number[]): void {
    const { counters } = this.options;
    for (const slot of SUMMED_SLOTS) {
      const delta = (counts[slot] ?? 0) - (member.counts[slot] ?? 0);
      if (delta !== 0) Atomics.add(counters, slot, delta);
    }
    member.counts = counts;
    const open = Atomics.load(counters, CONTROL.open);
    if (open > Atomics.load(counters, CONTROL.peakOpen)) Atomics.store(counters, CONTROL.peakOpen, open);
  }

  private exited(member: Member, code: number): void {
    if (!member.alive) return;
    member.alive = false;
    // Its pairs are no longer open (the kernel closed its sockets).
    const counts = [...member.counts];
    counts[CONTROL.open] = 0;
    this.applyCounts(member, counts);
    if (this.closing && member.pending.size === 0) return;
    const error = new Error(`stress process ${member.number} (pid ${member.child.pid}) exited (${code})`);
    if (member.pending.size === 0) {
      this.emit('error', error);
      return;
    }
    for (const pending of member.pending.values()) pending.reject(error);
    member.pending.clear();
  }

  private forwardControl(): void {
    const { counters } = this.options;
    const stop = Atomics.load(counters, CONTROL.stop);
    const logFailed = Atomics.load(counters, CONTROL.logFailed);
    if (stop === this.sentControl.stop && logFailed === this.sentControl.logFailed) return;
    this.sentControl = { stop, logFailed };
    for (const member of this.members)
      if (member.alive) this.send(member, { type: 'control', stop, logFailed });
  }

  private send(member: Member, message: ToStressProcess): void {
    try {
      member.child.process.send(message);
    } catch {
      // It is exiting: its exit fails what it had.
    }
  }
}
