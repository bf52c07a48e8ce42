/**
 * The main thread of a stress run: starts the Piscina pool(s), hands out batches of pair ids with a
 * bounded number in flight, merges the workers' encoded statistics, accounts for every planned pair
 * (also when stopped early, when a worker dies or when the log cannot be written) and returns the
 * summary. Planned pairs that never started are counted and kept as id ranges, never one by one.
 *
 * Sandbox mode: one pool, each worker runs both sides of its pairs; spread (--processes, or a hold
 * one process cannot open), the pool is several stress processes, each with its own threads
 * (lib/stress/processPool.ts). Race mode: two pools, one per side, so the two connects of a pair
 * always come from different threads; they meet in a SharedArrayBuffer per batch
 * (lib/stress/raceJoin.ts).
 */
import { performance } from 'node:perf_hooks';
import { epochNow } from '../core/clock.ts';
import { describeFileError, type OutputFile } from '../core/outputFile.ts';
import { aggregateResult } from './aggregateResult.ts';
import { addIdRange, closeNotStarted } from './idRanges.ts';
import {
  AppendError,
  formatNotStartedRecord,
  formatPairRecord,
  PairLogFile,
  trimTornLine,
} from './pairLog.ts';
import { mergeStats, PairStats } from './pairStats.ts';
import { pairEndpoints, warmupCapacity, warmupPlan } from './planPairs.ts';
import { ProcessPool } from './processPool.ts';
import { type ProgressCounts, ProgressTracker } from './progressTracker.ts';
import { joinBufferSize, RaceJoin } from './raceJoin.ts';
import { startThreadPool, warmEveryThread, YOUNG_GENERATION_MB } from './threadPool.ts';
import { TimelineSampler } from './timeline.ts';
import {
  type AddressPlan,
  type BatchPool,
  type BatchResult,
  CONTROL,
  type IdRange,
  type Mode,
  type OutputError,
  PAIR_ERRORS,
  type RunConfig,
  type StressOptions,
  type StressResult,
} from './types.ts';

export interface StressRunInput {
  options: StressOptions;
  plan: AddressPlan;
  mode: Mode;
  modeReason: string;
  /** Why net.Socket although bare handles were asked for (lib/stress/prepareRun.ts); undefined otherwise. */
  socketsReason?: string;
  /** Aborting it stops the run: no new pairs, in-flight ones cancelled, partial result. */
  stop: AbortSignal;
  /** The pair log (--log), opened by the caller (lib/core/outputFile.ts); runStress appends, never closes. */
  log?: OutputFile;
}

/** Warm-up pairs carry at most this payload: warming the per-pair code needs no more, and big payloads would make it long. */
export const WARMUP_PAYLOAD_MAX = 64 * 1024;
/** The warm-up hands out no batch after this long (a slow machine, a big payload): the run starts anyway. */
export const WARMUP_MAX_MS = 5000;

/** --hold: how often the resident set is sampled while pairs are held. */
const HOLD_RSS_SAMPLE_MS = 100;

/**
 * Batches big enough to keep messaging cheap, small enough to balance the tail and honour --duration
 * and --rate. Over the held link a batch is one wave of the plan.
 */
export function batchSize(
  options: StressOptions,
  threads: number,
  slots: number,
  plan?: AddressPlan,
): number {
  if (plan?.layout === 'link') return plan.wave;
  let size = Math.min(4096, Math.max(64, slots * 8));
  if (options.pairs !== undefined) size = Math.min(size, Math.ceil(options.pairs / (threads * 4)));
  if (options.durationMs !== undefined) size = Math.min(size, slots * 2);
  // About 100 ms of schedule per batch: the pairs of one instant spread over the threads.
  if (options.rate !== undefined) size = Math.min(size, Math.ceil(options.rate / 10 / threads));
  // Held pairs stay in their batch for the whole hold: the two batches of a thread must fill its slots.
  if (options.holdMs > 0) size = Math.max(size, Math.ceil(slots / 2));
  return Math.max(1, size);
}

export async function runStress(input: StressRunInput): Promise<StressResult> {
  const { options, plan, mode, stop } = input;
  const control = new SharedArrayBuffer(CONTROL.length * 4);
  const counters = new Int32Array(control);
  const stats = new PairStats();
  const notStartedIds: IdRange[] = [];
  const log = input.log;
  const mainLog = log ? new PairLogFile(log.fd) : undefined;
  let outputError: OutputError | undefined;
  // The run's own stop (a failed output), beside the caller's.
  const halt = new AbortController();
  const onLogError = (error: string, unlogged: number) => {
    if (!log) return;
    if (!outputError) {
      outputError = { option: log.option, path: log.path, error: '', unlogged: 0 };
      Atomics.store(counters, CONTROL.logFailed, 1);
      halt.abort();
    }
    // Threads that skipped their appends may report before the one that failed: its reason is the one.
    if (error && !outputError.error) {
      outputError.error = error;
      process.stderr.write(`\nstress: ${log.option} ${log.path}: ${error}; starting no more pairs\n`);
    }
    outputError.unlogged = (outputError.unlogged ?? 0) + unlogged;
  };
  /** Main-thread appends (records of a crashed worker's pairs, the not-started record): never throw. */
  const appendLog = (text: string, records: number) => {
    if (!mainLog) return;
    if (Atomics.load(counters, CONTROL.logFailed) !== 0) return onLogError('', records);
    try {
      mainLog.append(text);
    } catch (error) {
      const failed = error instanceof AppendError ? error : new AppendError(error, 0);
      onLogError(describeFileError(failed.cause), Math.max(0, records - failed.linesWritten));
    }
  };
  const mergeBatch = (target: PairStats, result: BatchResult) => {
    mergeStats(target, result.stats);
    if (target !== stats) return;
    for (const [first, last] of result.notStarted) addIdRange(notStartedIds, first, last);
    if (result.logError || result.unlogged) onLogError(result.logError ?? '', result.unlogged);
  };

  // Spread over stress processes (a hold of more descriptors than one process may open): each runs
  // --workers threads, and the run's threads are all of theirs.
  const spread = mode === 'sandbox' && options.processes > 1 ? options.processes : 1;
  // Race mode: threads for side A and side B.
  const sides =
    mode === 'race'
      ? [Math.ceil(options.workers / 2), Math.floor(options.workers / 2)]
      : [options.workers * spread];
  // Batches in flight per thread: two (the next fills the slots the current one frees); over the held
  // link a batch is a wave, and as many waves as the thread's share of --concurrency (a long hold).
  const slotsPerThread = Math.max(1, Math.ceil(options.concurrency / (sides[0] ?? 1)));
  const batchesPerThread = plan.layout === 'link' ? Math.max(2, Math.ceil(slotsPerThread / plan.wave)) : 2;
  const youngGenerationMb = options.holdMs > 0 ? YOUNG_GENERATION_MB.hold : YOUNG_GENERATION_MB.run;
  const processPool =
    spread > 1
      ? await ProcessPool.start({
          processes: spread,
          threadsPerProcess: options.workers,
          batchesPerThread,
          youngGenerationMb,
          counters,
          logFd: log ? log.fd : -1,
        })
      : undefined;
  const pools: BatchPool[] = processPool
    ? [processPool]
    : sides.map((threads) => startThreadPool(threads, batchesPerThread, youngGenerationMb));
  /** This run's resident set: this process's, and the stress processes' as they last reported it. */
  const residentBytes = () => process.memoryUsage.rss() + (processPool?.residentBytes() ?? 0);
  const crashes = new Set<unknown>();
  for (const pool of pools)
    pool.on('error', (error: unknown) => {
      crashes.add(error);
      process.stderr.write(`stress: a worker died between batches: ${String(error)}\n`);
    });

  const failBatch = (firstId: number, ids: number[], error: unknown) => {
    process.stderr.write(
      `stress: a worker died (${error instanceof Error ? error.message : String(error)}): ${ids.length} unreported pairs of its batch count as failed (${PAIR_ERRORS.workerCrash})\n`,
    );
    // The worker's statistics and buffered log lines for these pairs died with it.
    stats.recordFailed(PAIR_ERRORS.workerCrash, ids.length);
    Atomics.add(counters, CONTROL.failed, ids.length);
    if (!mainLog) return;
    const lines = ids.map((index) => mainRecord(firstId + index, 'failed', PAIR_ERRORS.workerCrash));
    appendLog(lines.join(''), lines.length);
  };

  const mainRecord = (id: number, outcome: 'failed', error: string) => {
    const { a, b } = pairEndpoints(plan, id);
    return formatPairRecord({
      id,
      a: `${a.host}:${a.port}`,
      b: `${b.host}:${b.port}`,
      outcome,
      error,
      attempts: [0, 0],
      establishUs: [null, null],
      bytesVerified: 0,
      close: options.close,
      closeOutcome: null,
      startLagUs: 0,
      pairUs: null,
    });
  };

  let progress: ProgressTracker | undefined;
  const readCounts = (): ProgressCounts => ({
    established: Atomics.load(counters, CONTROL.established),
    failed: Atomics.load(counters, CONTROL.failed),
    cancelled: Atomics.load(counters, CONTROL.cancelled),
    notStarted: Atomics.load(counters, CONTROL.notStarted),
    ...(options.holdMs > 0 ? { open: Atomics.load(counters, CONTROL.open) } : {}),
  });
  const timeline = new TimelineSampler(readCounts);
  let rssSampler: NodeJS.Timeout | undefined;
  try {
    const configFor = (threads: number, side: number, t0: number): RunConfig => ({
      mode,
      side: side === 0 ? 0 : 1,
      payload: options.payload,
      close: options.close,
      sockets: options.sockets,
      timeoutMs: options.timeoutMs,
      slots: Math.max(1, Math.ceil(options.concurrency / threads)),
      rate: options.rate,
      t0,
      plan,
      logFd: log ? log.fd : -1,
      // Same shape as the warm-up's config: a new hidden class here would deoptimize the warmed code.
      warmup: false,
      open: options.open,
      skewMs: options.skewMs,
      earlySyn: options.earlySyn,
      delayMs: options.delayMs,
      holdMs: options.holdMs,
      keepaliveMs: options.keepaliveMs,
    });

    const threadsMax = Math.max(...sides);
    const size = batchSize(options, threadsMax, configFor(threadsMax, 0, 0).slots, plan);

    // Workers load (tsx compiles the modules) and, in sandbox mode, run throwaway pairs on an address
    // pair no run uses, so the clock starts with optimized code. The warm-up goes through the run's own
    // path (same batch size, two batches per worker in flight, a plan of the run plan's hidden class,
    // statistics merged here): code warmed on other shapes or paths is deoptimized or compiled in the
    // run's first milliseconds, and on 2 cores the compiler threads then take CPU from the workers.
    const warmThreads = sides[0] ?? 1;
    const warmupPerWorker = Math.min(options.warmup, Math.floor(warmupCapacity(plan) / warmThreads));
    let warmedPerWorker = 0;
    if (mode === 'sandbox' && warmupPerWorker > 0 && !stop.aborted) {
      const config: RunConfig = {
        ...configFor(warmThreads, 0, epochNow()),
        payload: Math.min(options.payload, WARMUP_PAYLOAD_MAX),
        plan: warmupPlan(plan),
        logFd: -1,
        rate: undefined,
        warmup: true,
      };
      const control = new SharedArrayBuffer(CONTROL.length * 4);
      const warmCounters = new Int32Array(control);
      const throwaway = new PairStats();
      const total = warmupPerWorker * warmThreads;
      const until = performance.now() + WARMUP_MAX_MS;
      // A stop cancels the warm-up's pairs in flight, as the run's.
      const onStop = () => Atomics.store(warmCounters, CONTROL.stop, 1);
      stop.addEventListener('abort', onStop, { once: true });
      if (!options.quiet) {
        process.stderr.write(
          `stress: warm-up: ${total.toLocaleString('en-US')} throwaway pairs (at most ${WARMUP_MAX_MS / 1000} s) before the clock starts\n`,
        );
        progress = new ProgressTracker({
          label: 'warm-up',
          total,
          durationMs: undefined,
          read: () => ({
            established: Atomics.load(warmCounters, CONTROL.established),
            failed: Atomics.load(warmCounters, CONTROL.failed),
            cancelled: Atomics.load(warmCounters, CONTROL.cancelled),
            notStarted: Atomics.load(warmCounters, CONTROL.notStarted),
          }),
        });
        progress.start();
      }
      let next = 0;
      // Failures here are not the run's.
      const lane = async () => {
        while (next < total && !stop.aborted && performance.now() < until) {
          const firstId = next;
          const count = Math.min(size, total - next);
          next += count;
          try {
            const result = await (pools[0] as BatchPool).run({ firstId, count, config, control });
            mergeBatch(throwaway, result as BatchResult);
          } catch {}
        }
      };
      await Promise.all(Array.from({ length: batchesPerThread * warmThreads }, lane));
      stop.removeEventListener('abort', onStop);
      progress?.stop();
      progress = undefined;
      warmedPerWorker = Math.floor((throwaway.established + throwaway.failed) / warmThreads);
      throwaway.destroy();
    } else if (!processPool) {
      // (Stress processes warm their threads before they say they are ready.)
      await Promise.all(
        pools.map((pool, index) => warmEveryThread((task) => pool.run(task), sides[index] ?? 1)),
      );
    }

    const t0 = epochNow();
    const rssAtStartBytes = residentBytes();
    // --hold: the resident set sampled while pairs are held (maxRSS would include the start-up's peak).
    let heldRssPeakBytes = rssAtStartBytes;
    rssSampler =
      options.holdMs > 0
        ? setInterval(() => {
            heldRssPeakBytes = Math.max(heldRssPeakBytes, residentBytes());
          }, HOLD_RSS_SAMPLE_MS)
        : undefined;
    const configs = sides.map((threads, side) => configFor(threads, side, t0));
    let limit = Math.min(options.pairs ?? plan.capacity, plan.capacity);
    // Open loop for a time: pair N is due at N / rate s, so the schedule ends with the pairs due before the end.
    if (options.rate !== undefined && options.durationMs !== undefined)
      limit = Math.min(limit, Math.ceil((options.durationMs * options.rate) / 1000));
    const endAt = options.durationMs === undefined ? Number.POSITIVE_INFINITY : t0 + options.durationMs;
    const maxOutstanding = batchesPerThread * threadsMax;
    // Waves are whole (their ids share an address pair); other batches shrink towards the end.
    const tailBatch = plan.layout === 'link' ? size : Math.min(size, configs[0]?.slots ?? 1);

    if (!options.quiet) {
      progress = new ProgressTracker({
        total: options.pairs,
        durationMs: options.durationMs,
        read: readCounts,
      });
      progress.start();
    }
    timeline.start();

    const runSandboxBatch = async (firstId: number, count: number) => {
      const config = configs[0] as RunConfig;
      try {
        const result = await (pools[0] as BatchPool).run({ firstId, count, config, control });
        mergeBatch(stats, result as BatchResult);
      } catch (error) {
        crashes.add(error);
        failBatch(
          firstId,
          Array.from({ length: count }, (_, index) => index),
          error,
        );
      }
    };

    const runRaceBatch = async (firstId: number, count: number) => {
      const join = new SharedArrayBuffer(joinBufferSize(count));
      const settled = await Promise.allSettled(
        pools.map((pool, side) =>
          pool.run({ firstId, count, config: configs[side] as RunConfig, control, join }),
        ),
      );
      const crashedSides = new Set<number>();
      let crash: unknown;
      settled.forEach((outcome, side) => {
        if (outcome.status === 'fulfilled') mergeBatch(stats, outcome.value as BatchResult);
        else {
          crashes.add(outcome.reason);
          crashedSides.add(side + 1);
          crash = outcome.reason;
        }
      });
      if (crashedSides.size === 0) return;
      // Pairs whose report died with a worker, or that never got both halves: failed by us.
      const view = new RaceJoin(join, count);
      const lost: number[] = [];
      for (let index = 0; index < count; index += 1) {
        const { halves, reportedBy } = view.state(index);
        if (halves < 2 || crashedSides.has(reportedBy)) lost.push(index);
      }
      failBatch(firstId, lost, crash);
    };

    let nextId = 0;
    let outstanding = 0;
    let stopped = false;
    const onStop = () => {
      stopped = true;
      Atomics.store(counters, CONTROL.stop, 1);
    };
    stop.addEventListener('abort', onStop, { once: true });
    halt.signal.addEventListener('abort', onStop, { once: true });
    if (stop.aborted || halt.signal.aborted) onStop();

    await new Promise<void>((resolve) => {
      const dispatch = () => {
        while (!stopped && outstanding < maxOutstanding && nextId < limit && epochNow() < endAt) {
          const firstId = nextId;
          // Guided: batches shrink towards the end, so no worker idles while another finishes a big one.
          const remaining = limit - nextId;
          const count = Math.min(
            remaining,
            size,
            Math.max(tailBatch, Math.ceil(remaining / (threadsMax * 4))),
          );
          nextId += count;
          outstanding += 1;
          const run = mode === 'race' ? runRaceBatch : runSandboxBatch;
          run(firstId, count).finally(() => {
            outstanding -= 1;
            dispatch();
          });
        }
        if (outstanding === 0) resolve();
      };
      dispatch();
    });
    stop.removeEventListener('abort', onStop);
    halt.signal.removeEventListener('abort', onStop);
    const interrupted = stop.aborted;
    const durationMs = epochNow() - t0;
    progress?.stop();
    const samples = timeline.stop();

    // Planned but never handed out (stopped early): not started, one range.
    const planned = stopped && options.pairs !== undefined ? limit : nextId;
    const notStarted = closeNotStarted(stats, notStartedIds, nextId, planned);
    appendLog(formatNotStartedRecord(notStarted), 0);
    // After a failed append the file may end in part of a line: cut it (no thread appends any more).
    if (outputError && log?.regular) {
      try {
        trimTornLine(log.fd);
      } catch {}
    }

    return aggregateResult(stats, {
      mode,
      modeReason: input.modeReason,
      workers: sides.reduce((sum, threads) => sum + threads, 0),
      ...(spread > 1 ? { processes: spread } : {}),
      // What the workers really allowed: slots are whole per thread (rounded up), and race mode's
      // two pools each bound it.
      concurrency: Math.min(
        options.pairs ?? Number.POSITIVE_INFINITY,
        ...configs.map((config, index) => config.slots * (sides[index] ?? 1)),
      ),
      sockets: mode === 'race' ? 'net' : options.sockets,
      socketsReason: input.socketsReason,
      warmupPairsPerWorker: warmedPerWorker,
      payloadBytes: options.payload,
      close: options.close,
      rate: options.rate,
      timeoutMs: options.timeoutMs,
      planned,
      durationMs,
      workerCrashes: crashes.size,
      interrupted,
      outputError,
      notStartedIds: notStarted,
      // maxRSS is in KiB; this process holds the worker threads, so it covers the whole pool (spread:
      // the sum of every process's own peak).
      peakRssBytes: process.resourceUsage().maxRSS * 1024 + (processPool?.peakResidentBytes() ?? 0),
      log: log?.path,
      timeline: samples,
      open: {
        mode: options.open,
        ...(options.open === 'skew'
          ? { skewMs: options.skewMs, earlySyn: options.earlySyn, delayMs: options.delayMs }
          : {}),
        ...(plan.layout === 'link' ? { pairsPerWave: plan.wave } : {}),
      },
      ...(options.holdMs > 0
        ? {
            hold: {
              holdMs: options.holdMs,
              keepaliveMs: options.keepaliveMs,
              peakOpenPairs: Atomics.load(counters, CONTROL.peakOpen),
              rssAtStartBytes,
              peakRssBytes: Math.max(heldRssPeakBytes, residentBytes()),
            },
          }
        : {}),
    });
  } finally {
    progress?.stop();
    timeline.stop();
    if (rssSampler) clearInterval(rssSampler);
    await Promise.all(pools.map((pool) => pool.destroy()));
  }
}
