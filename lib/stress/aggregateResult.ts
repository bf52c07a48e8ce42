/**
 * The summary of a stress run (what --json writes and printResult prints), built from the merged
 * statistics and the run's facts. Pure.
 */
import type { Histogram } from 'hdr-histogram-js';
import type { CloseKind, Mode } from './options.ts';
import type { PairStats } from './pairStats.ts';

export interface Percentiles {
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface StressResult {
  mode: Mode;
  /** Why this mode: asked for, the default, or the fallback and its reason. */
  modeReason: string;
  workers: number;
  concurrency: number;
  /** handle: bare libuv TCP handles; net: net.Socket (always in race mode). */
  sockets: 'handle' | 'net';
  /** Throwaway pairs each worker ran before the clock started (not counted anywhere else). */
  warmupPairsPerWorker: number;
  payloadBytes: number;
  close: CloseKind;
  /** Open-loop rate (pairs/s) or null for a closed loop. */
  rate: number | null;
  timeoutMs: number;
  pairs: { planned: number; established: number; failed: number; cancelled: number };
  /** established / planned, in percent. */
  successPct: number;
  /** From the first pair's start to the last pair's end. */
  durationMs: number;
  /** Established pairs per second of durationMs. */
  pairsPerSec: number;
  /** Start (scheduled start with --rate) to both sides connected, established pairs only; null if none. */
  establishMs: Percentiles | null;
  /** Start to both sockets closed, payload and close included. */
  pairMs: Percentiles | null;
  /** connect() attempts per side (1 in sandbox mode). */
  attempts: Omit<Percentiles, 'p999'> | null;
  /** Why pairs failed, by code. */
  errors: Record<string, number>;
  /** Errors retried while dialing (race mode), by code. */
  retryErrors: Record<string, number>;
  bytesVerified: number;
  /** How the established pairs closed: fin (both saw EOF) or rst (the peer saw the reset). */
  closeOutcomes: Record<string, number>;
  workerCrashes: number;
  interrupted: boolean;
  /** Peak resident set of the process that ran the pool (its worker threads included), in bytes. */
  peakRssBytes: number;
  /** The NDJSON pair log, if written. */
  log: string | null;
}

export interface RunFacts {
  mode: Mode;
  modeReason: string;
  workers: number;
  concurrency: number;
  sockets: 'handle' | 'net';
  warmupPairsPerWorker: number;
  payloadBytes: number;
  close: CloseKind;
  rate: number | undefined;
  timeoutMs: number;
  planned: number;
  durationMs: number;
  workerCrashes: number;
  interrupted: boolean;
  peakRssBytes: number;
  log: string | undefined;
}

function round(value: number, digits = 3): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** Percentiles of a histogram recorded in microseconds, as milliseconds. */
function percentilesMs(histogram: Histogram): Percentiles | null {
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

function sorted(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).sort((x, y) => y[1] - x[1]));
}

export function aggregateResult(stats: PairStats, facts: RunFacts): StressResult {
  const planned = facts.planned;
  const attempts = stats.attempts;
  return {
    mode: facts.mode,
    modeReason: facts.modeReason,
    workers: facts.workers,
    concurrency: facts.concurrency,
    sockets: facts.sockets,
    warmupPairsPerWorker: facts.warmupPairsPerWorker,
    payloadBytes: facts.payloadBytes,
    close: facts.close,
    rate: facts.rate ?? null,
    timeoutMs: facts.timeoutMs,
    pairs: { planned, established: stats.established, failed: stats.failed, cancelled: stats.cancelled },
    successPct: planned > 0 ? round((stats.established / planned) * 100, 4) : 0,
    durationMs: round(facts.durationMs, 1),
    pairsPerSec: facts.durationMs > 0 ? round(stats.established / (facts.durationMs / 1000), 1) : 0,
    establishMs: percentilesMs(stats.establishUs),
    pairMs: percentilesMs(stats.pairUs),
    attempts:
      attempts.totalCount === 0
        ? null
        : {
            min: attempts.minNonZeroValue,
            mean: round(attempts.mean, 2),
            p50: attempts.getValueAtPercentile(50),
            p90: attempts.getValueAtPercentile(90),
            p99: attempts.getValueAtPercentile(99),
            max: attempts.maxValue,
          },
    errors: sorted(stats.errors),
    retryErrors: sorted(stats.retryErrors),
    bytesVerified: stats.bytesVerified,
    closeOutcomes: sorted(stats.closes),
    workerCrashes: facts.workerCrashes,
    interrupted: facts.interrupted,
    peakRssBytes: facts.peakRssBytes,
    log: facts.log ?? null,
  };
}
