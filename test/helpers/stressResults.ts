/** Stress results made in process (no run), for the tests of what reads them. */
import { aggregateResult } from '../../lib/stress/aggregateResult.ts';
import { PairStats } from '../../lib/stress/pairStats.ts';
import type { StressResult } from '../../lib/stress/types.ts';

/** 1,001 pairs planned: 1,000 established (establish 10 us .. 10 ms, whole pair twice that), 1 failed. */
export function sampleResult(scale = 1): StressResult {
  const stats = new PairStats();
  for (let k = 1; k <= 1000; k += 1) stats.recordEstablished(10 * k * scale, 20 * k * scale, 'fin');
  for (let k = 0; k < 2000; k += 1) stats.recordAttempts(1, (k % 2) as 0 | 1);
  stats.recordFailed('ETIMEDOUT', 1);
  return aggregateResult(stats, {
    mode: 'sandbox',
    modeReason: 'default',
    workers: 2,
    concurrency: 128,
    sockets: 'handle',
    warmupPairsPerWorker: 0,
    payloadBytes: 64,
    close: 'graceful',
    rate: undefined,
    timeoutMs: 10_000,
    planned: 1001,
    durationMs: 500,
    workerCrashes: 0,
    interrupted: false,
    peakRssBytes: 100 * 1024 * 1024,
    log: undefined,
    open: { mode: 'one-sided' },
  });
}
