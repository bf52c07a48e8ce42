/**
 * The summary of a stress run (what --json writes and printResult prints), built from the merged
 * statistics and the run's facts. Pure.
 */
import type { Histogram } from 'hdr-histogram-js';
import { distributionsOf } from './distributions.ts';
import { newHistogram, type PairStats } from './pairStats.ts';
import type { AttemptStats, Percentiles, RunFacts, StressResult } from './types.ts';

export function round(value: number, digits = 3): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** Percentiles of a histogram recorded in microseconds, as milliseconds. */
export function percentilesMs(histogram: Histogram): Percentiles | null {
  if (histogram.totalCount === 0) return null;
  const ms = (us: number) => round(us / 1000);
  return {
    min: ms(histogram.minNonZeroValue),
    mean: ms(histogram.mean),
    p50: ms(histogram.getValueAtPercentile(50)),
    p90: ms(histogram.getValueAtPercentile(90)),
    p99: ms(histogram.getValueAtPercentile(99)),
    p999: ms(histogram.getValueAtPercentile(99.9)),
    max: ms(histogram.maxValue),
  };
}

function attemptStats(histogram: Histogram): AttemptStats | null {
  if (histogram.totalCount === 0) return null;
  return {
    min: histogram.minNonZeroValue,
    mean: round(histogram.mean, 2),
    p50: histogram.getValueAtPercentile(50),
    p90: histogram.getValueAtPercentile(90),
    p99: histogram.getValueAtPercentile(99),
    max: histogram.maxValue,
  };
}

function sorted(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).sort((x, y) => y[1] - x[1]));
}

export function aggregateResult(stats: PairStats, facts: RunFacts): StressResult {
  const planned = facts.planned;
  const both = newHistogram();
  both.add(stats.attempts[0]);
  both.add(stats.attempts[1]);
  const attempts = attemptStats(both);
  // The report's attempts plot is of every side, A's and B's together.
  const distributions = distributionsOf(stats.establishUs, stats.pairUs, both);
  both.destroy();
  const hold = facts.hold;
  return {
    mode: facts.mode,
    modeReason: facts.modeReason,
    workers: facts.workers,
    ...(facts.processes ? { processes: facts.processes } : {}),
    concurrency: facts.concurrency,
    sockets: facts.sockets,
    ...(facts.socketsReason ? { socketsReason: facts.socketsReason } : {}),
    warmupPairsPerWorker: facts.warmupPairsPerWorker,
    payloadBytes: facts.payloadBytes,
    close: facts.close,
    rate: facts.rate ?? null,
    timeoutMs: facts.timeoutMs,
    pairs: {
      planned,
      established: stats.established,
      failed: stats.failed,
      cancelled: stats.cancelled,
      notStarted: stats.notStarted,
    },
    notStartedIds: facts.notStartedIds ?? [],
    successPct: planned > 0 ? round((stats.established / planned) * 100, 4) : 0,
    durationMs: round(facts.durationMs, 1),
    pairsPerSec: facts.durationMs > 0 ? round(stats.established / (facts.durationMs / 1000), 1) : 0,
    establishMs: percentilesMs(stats.establishUs),
    pairMs: percentilesMs(stats.pairUs),
    attempts,
    attemptsBySide: [attemptStats(stats.attempts[0]), attemptStats(stats.attempts[1])],
    errors: sorted(stats.errors),
    retryErrors: sorted(stats.retryErrors),
    bytesVerified: stats.bytesVerified,
    closeOutcomes: sorted(stats.closes),
    workerCrashes: facts.workerCrashes,
    interrupted: facts.interrupted,
    peakRssBytes: facts.peakRssBytes,
    open: facts.open,
    ...(hold
      ? {
          hold: {
            ...hold,
            keepalivesVerified: stats.keepalivesVerified,
            rssPerHeldPairBytes:
              hold.peakOpenPairs > 0
                ? Math.round((hold.peakRssBytes - hold.rssAtStartBytes) / hold.peakOpenPairs)
                : null,
          },
        }
      : {}),
    log: facts.log ?? null,
    ...(facts.outputError ? { outputErrors: [facts.outputError] } : {}),
    distributions,
    ...(facts.timeline ? { timeline: facts.timeline } : {}),
  };
}
