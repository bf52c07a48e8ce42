/**
 * The engine inside a stress worker thread. A task is a batch of consecutive pair ids; the thread
 * keeps up to `slots` pairs in flight across all its batches (the next batch fills the slots the
 * previous one frees, so there is no ramp-down between batches), reports each finished pair into its
 * batch's statistics and log lines, and resolves the batch with encoded statistics only.
 *
 * The main thread steers through a small SharedArrayBuffer (see CONTROL): a stop flag checked before
 * every start and by a sweep every 100 ms (which also enforces --timeout), and progress counters.
 */
import { performance } from 'node:perf_hooks';
import { epochNow, Waker } from '../core/clock.ts';
import { describeFileError } from '../core/outputFile.ts';
import { cachedPatterns } from '../core/payloadPattern.ts';
import { pinThisThread } from '../core/pinThread.ts';
import { HeldWave } from './heldWave.ts';
import { HoldSchedule } from './holdSchedule.ts';
import { addIdRange } from './idRanges.ts';
import { AppendError, formatPairRecord, PairLogFile } from './pairLog.ts';
import { PairStats } from './pairStats.ts';
import { pairEndpoints, waveAddressIndex } from './planPairs.ts';
import { type JoinedPair, RaceJoin } from './raceJoin.ts';
import { RaceSide, type SideConfig } from './raceSide.ts';
import { type PairConfig, SandboxPair } from './sandboxPair.ts';
import { type BatchResult, type BatchTask, CONTROL, type IdRange, PAIR_ERRORS } from './types.ts';

/** Test hook, internal: the worker reporting the Nth pair of the run throws (a simulated crash). */
export const CRASH_AFTER_ENV = 'SIMOPEN_TEST_CRASH_AFTER';

type Runner = SandboxPair | RaceSide;

interface Batch {
  task: BatchTask;
  /** Index of the next pair to start. */
  next: number;
  /** Pairs not finished yet. */
  pending: number;
  stats: PairStats;
  control: Int32Array;
  log: string[] | undefined;
  /** Pairs of the batch that never started. */
  notStarted: IdRange[];
  join: RaceJoin | undefined;
  /** The held link's wave (--open crossed, skew): the batch is one wave. */
  wave: HeldWave | undefined;
  /** What every pair of the batch gets (one object per batch, not per pair). */
  pairConfig: PairConfig & SideConfig;
  resolve: (result: BatchResult) => void;
  reject: (error: unknown) => void;
}

const batches: Batch[] = [];
const inFlight = new Map<Runner, { batch: Batch; dueAt: number }>();
let sweepTimer: NodeJS.Timeout | undefined;
/** Wakes the pump when the next pair of a --rate schedule is due. */
const waker = new Waker(() => pump());
let holdSchedule: HoldSchedule | undefined;
let logFile: PairLogFile | undefined;
const crashAfter = Number(process.env[CRASH_AFTER_ENV] ?? 0);

/** Keepalives continue the pattern past the payload: a read of them needs a read buffer's worth beyond a period. */
const KEEPALIVE_PATTERN_BYTES = 64 * 1024;

function holdScheduleFor(holdMs: number, keepaliveMs: number): HoldSchedule | undefined {
  if (holdMs === 0) return undefined;
  if (holdSchedule?.holdMs !== holdMs || holdSchedule.keepaliveMs !== keepaliveMs)
    holdSchedule = new HoldSchedule(holdMs, keepaliveMs);
  return holdSchedule;
}

function logFor(fd: number): PairLogFile {
  if (logFile?.fd !== fd) logFile = new PairLogFile(fd);
  return logFile;
}

function format(endpoint: { host: string; port: number }): string {
  return `${endpoint.host}:${endpoint.port}`;
}

/** Runs one batch; resolves when every pair of it has been reported. */
export function runBatch(task: BatchTask): Promise<BatchResult> {
  // Held FINs cross only when both timers of a pair are on one CPU's timer wheel (lib/core/pinThread.ts).
  if (task.config.mode === 'sandbox' && task.config.close === 'simultaneous') pinThisThread();
  return new Promise((resolve, reject) => {
    const config = task.config;
    const control = new Int32Array(task.control);
    const wave =
      config.plan.layout === 'link'
        ? new HeldWave(waveAddressIndex(config.plan, task.firstId), config, config.sockets)
        : undefined;
    const batch: Batch = {
      task,
      next: 0,
      pending: task.count,
      stats: new PairStats(),
      control,
      log: config.logFd >= 0 ? [] : undefined,
      notStarted: [],
      join: task.join ? new RaceJoin(task.join, task.count) : undefined,
      wave,
      pairConfig: {
        payload: config.payload,
        close: config.close,
        patterns: cachedPatterns(
          config.holdMs > 0 ? Math.max(config.payload, KEEPALIVE_PATTERN_BYTES) : config.payload,
        ),
        sockets: config.sockets,
        timeoutMs: config.timeoutMs,
        wave,
        retryRefused: wave !== undefined && config.open === 'skew' && config.earlySyn === 'rst',
        hold: holdScheduleFor(config.holdMs, config.keepaliveMs),
        control,
        plan: config.plan,
      },
      resolve,
      reject,
    };
    batches.push(batch);
    sweepTimer ??= setInterval(sweep, 100);
    pump();
  });
}

function stopRequested(batch: Batch): boolean {
  return Atomics.load(batch.control, CONTROL.stop) !== 0;
}

/** Starts pairs while slots are free and pairs are due. */
function pump(): void {
  for (;;) {
    const batch = batches.find((candidate) => candidate.next < candidate.task.count);
    if (!batch) return;
    const { config, firstId } = batch.task;
    if (stopRequested(batch)) {
      cancelUnstarted();
      return;
    }
    if (batch.wave) {
      startWave(batch, batch.wave);
      continue;
    }
    if (inFlight.size >= config.slots) return;
    const id = firstId + batch.next;
    let dueAt = epochNow();
    if (config.rate !== undefined) {
      const due = config.t0 + (id * 1000) / config.rate;
      if (due > dueAt) {
        waker.in(due - dueAt);
        return;
      }
      dueAt = due;
    }
    batch.next += 1;
    start(batch, id, dueAt);
  }
}

/** The held link: a batch is one wave, its pairs start together (the wave bounds what is in flight). */
function startWave(batch: Batch, wave: HeldWave): void {
  const { firstId, count } = batch.task;
  const dueAt = epochNow();
  for (; batch.next < count; batch.next += 1) {
    const id = firstId + batch.next;
    const pair = new SandboxPair(id, batch.pairConfig, finished);
    inFlight.set(pair, { batch, dueAt });
    wave.add(pair);
  }
  wave.start();
}

function start(batch: Batch, id: number, dueAt: number): void {
  const config = batch.task.config;
  const runner =
    config.mode === 'sandbox'
      ? new SandboxPair(id, batch.pairConfig, finished)
      : new RaceSide(id, config.side, pairEndpoints(config.plan, id), batch.pairConfig, finished);
  inFlight.set(runner, { batch, dueAt });
  runner.start();
}

function finished(runner: Runner): void {
  const entry = inFlight.get(runner);
  if (!entry) return;
  inFlight.delete(runner);
  const { batch, dueAt } = entry;
  // Latency counts from the scheduled start: a generator that falls behind cannot hide it.
  const lagMs = Math.max(0, performance.timeOrigin + runner.startedAt - dueAt);
  if (runner instanceof SandboxPair) {
    if (runner.retries > 0) batch.stats.recordRetries('ECONNREFUSED', runner.retries);
    batch.stats.keepalivesVerified += runner.keepalivesVerified;
    report(batch, runner.id, {
      outcome: runner.outcome,
      error: runner.error,
      attempts: runner.attempts,
      establishUs: runner.establishUs,
      bytesVerified: runner.bytesVerified,
      closeOutcome: runner.closeOutcome,
      startedAt: performance.timeOrigin + runner.startedAt,
      finishedAt: performance.timeOrigin + runner.finishedAt,
      lagMs,
    });
  } else {
    batch.stats.recordRetryErrors(runner.retryErrors);
    putHalf(
      batch,
      runner.id,
      {
        outcome: runner.outcome,
        error: runner.error,
        attempts: runner.attempts,
        bytesVerified: runner.bytesVerified,
        closeOutcome: runner.closeOutcome,
        establishUs: runner.establishUs,
        startedAt: performance.timeOrigin + runner.startedAt,
        finishedAt: performance.timeOrigin + runner.finishedAt,
      },
      dueAt,
    );
  }
  pairDone(batch);
  pump();
}

/** Race mode: hand our half over; report the pair if the other half is already there. */
function putHalf(batch: Batch, id: number, half: Parameters<RaceJoin['put']>[2], dueAt: number): void {
  const join = batch.join;
  if (!join) throw new Error('race batch without a join buffer');
  const index = id - batch.task.firstId;
  if (half.attempts > 0) batch.stats.recordAttempts(half.attempts, batch.task.config.side);
  if (!join.put(index, batch.task.config.side, half)) return;
  const pair: JoinedPair = join.joined(index);
  report(
    batch,
    id,
    {
      ...pair,
      lagMs: pair.startedAt > 0 ? Math.max(0, pair.startedAt - dueAt) : 0,
    },
    false,
  );
}

interface Finished extends Omit<JoinedPair, 'attempts' | 'establishUs'> {
  attempts: [number, number];
  establishUs: [number, number];
  lagMs: number;
}

function report(batch: Batch, id: number, pair: Finished, withAttempts = true): void {
  const stats = batch.stats;
  const control = batch.control;
  stats.bytesVerified += pair.bytesVerified;
  if (withAttempts) {
    stats.recordAttempts(pair.attempts[0], 0);
    stats.recordAttempts(pair.attempts[1], 1);
  }
  const started = pair.startedAt > 0;
  if (!started && pair.outcome === 'cancelled') {
    // Race mode: neither side started it before the stop.
    addIdRange(batch.notStarted, id, id);
    stats.recordNotStarted();
    Atomics.add(control, CONTROL.notStarted, 1);
    return;
  }
  const pairUs = started ? (pair.finishedAt - pair.startedAt) * 1000 : -1;
  if (pair.outcome === 'established') {
    const lagUs = pair.lagMs * 1000;
    stats.recordEstablished(
      lagUs + Math.max(pair.establishUs[0], pair.establishUs[1]),
      lagUs + pairUs,
      pair.closeOutcome ?? 'fin',
    );
    Atomics.add(control, CONTROL.established, 1);
  } else if (pair.outcome === 'failed') {
    stats.recordFailed(pair.error ?? 'EUNKNOWN');
    Atomics.add(control, CONTROL.failed, 1);
  } else {
    stats.recordCancelled();
    Atomics.add(control, CONTROL.cancelled, 1);
  }
  if (batch.log) {
    // The addresses only for the log: computed from the plan, not kept with the pair.
    const endpoints = pairEndpoints(batch.task.config.plan, id);
    batch.log.push(
      formatPairRecord({
        id,
        a: format(endpoints.a),
        b: format(endpoints.b),
        outcome: pair.outcome,
        error: pair.outcome === 'established' ? null : (pair.error ?? 'EUNKNOWN'),
        attempts: pair.attempts,
        establishUs: [pair.establishUs[0], pair.establishUs[1]],
        bytesVerified: pair.bytesVerified,
        close: batch.task.config.close,
        closeOutcome: pair.closeOutcome ?? null,
        startLagUs: pair.lagMs * 1000,
        pairUs,
      }),
    );
  }
  const reported = Atomics.add(control, CONTROL.reported, 1) + 1;
  if (crashAfter > 0 && reported === crashAfter && !batch.task.config.warmup) {
    setImmediate(() => {
      throw new Error(`${CRASH_AFTER_ENV}=${crashAfter}: simulated worker crash`);
    });
  }
}

function pairDone(batch: Batch, count = 1): void {
  batch.pending -= count;
  if (batch.pending > 0) return;
  batches.splice(batches.indexOf(batch), 1);
  batch.wave?.finish();
  if (batches.length === 0 && sweepTimer) {
    clearInterval(sweepTimer);
    sweepTimer = undefined;
  }
  // A failed append is the log's failure, not this thread's: the batch still reports its statistics.
  let logError: string | undefined;
  let unlogged = 0;
  if (batch.log && batch.log.length > 0) {
    if (Atomics.load(batch.control, CONTROL.logFailed) !== 0) unlogged = batch.log.length;
    else {
      try {
        logFor(batch.task.config.logFd).append(batch.log.join(''));
      } catch (error) {
        Atomics.store(batch.control, CONTROL.logFailed, 1);
        const failed = error instanceof AppendError ? error : new AppendError(error, 0);
        logError = describeFileError(failed.cause);
        unlogged = batch.log.length - failed.linesWritten;
      }
    }
  }
  try {
    const stats = batch.stats.encode();
    batch.stats.destroy();
    batch.resolve({ stats, notStarted: batch.notStarted, logError, unlogged });
  } catch (error) {
    batch.reject(error);
  }
}

/**
 * Stop requested: no pair not started yet will start. Sandbox mode counts them as one range per batch;
 * race mode hands in a never-started half, and the pair is not started if the other side did not start
 * it either (the side that joins the halves counts it).
 */
function cancelUnstarted(): void {
  for (const batch of [...batches]) {
    const { firstId, count, config } = batch.task;
    const unstarted = count - batch.next;
    if (unstarted <= 0) continue;
    if (config.mode === 'sandbox') {
      addIdRange(batch.notStarted, firstId + batch.next, firstId + count - 1);
      batch.stats.recordNotStarted(unstarted);
      Atomics.add(batch.control, CONTROL.notStarted, unstarted);
      batch.next = count;
      pairDone(batch, unstarted);
      continue;
    }
    for (let index = batch.next; index < count; index += 1) {
      const id = firstId + index;
      const never = {
        outcome: 'cancelled' as const,
        error: PAIR_ERRORS.cancelled,
        attempts: 0,
        bytesVerified: 0,
        closeOutcome: undefined,
        establishUs: -1,
        startedAt: 0,
        finishedAt: 0,
      };
      putHalf(batch, id, never, 0);
    }
    batch.next = count;
    pairDone(batch, unstarted);
  }
}

/** Every 100 ms: a stop cancels what is in flight; a pair past --timeout fails. */
function sweep(): void {
  const first = batches[0];
  if (!first) return;
  if (stopRequested(first)) {
    cancelUnstarted();
    for (const runner of [...inFlight.keys()]) runner.cancel();
    return;
  }
  const now = performance.now();
  for (const [runner, { batch }] of inFlight) {
    const config = batch.task.config;
    // A held pair's timeout does not count the hold.
    if (runner.startedAt > 0 && now - runner.startedAt > config.timeoutMs + config.holdMs)
      runner.fail(PAIR_ERRORS.timeout);
  }
}
