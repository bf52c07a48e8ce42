import { describe, expect, it } from 'vitest';
import { aggregateResult } from '../../lib/stress/aggregateResult.ts';
import { PairStats } from '../../lib/stress/pairStats.ts';
import { printResult } from '../../lib/stress/printResult.ts';

describe('aggregateResult and printResult', () => {
  it('summarizes merged stats into the JSON names and the printed report', () => {
    const stats = new PairStats();
    for (let k = 1; k <= 100; k += 1) stats.recordEstablished(1000 * k, 2000 * k, 'fin');
    stats.recordFailed('EPAYLOAD', 3);
    stats.recordCancelled(2);
    stats.bytesVerified = 12_800;
    const result = aggregateResult(stats, {
      mode: 'sandbox',
      modeReason: 'default',
      workers: 2,
      concurrency: 128,
      sockets: 'handle',
      warmupPairsPerWorker: 2000,
      payloadBytes: 64,
      close: 'graceful',
      rate: undefined,
      timeoutMs: 10_000,
      planned: 105,
      durationMs: 2000,
      workerCrashes: 0,
      interrupted: false,
      peakRssBytes: 150 * 1024 * 1024,
      log: undefined,
      open: { mode: 'one-sided' },
    });
    expect(result.pairs).toEqual({ planned: 105, established: 100, failed: 3, cancelled: 2, notStarted: 0 });
    expect(result.peakRssBytes).toBe(150 * 1024 * 1024);
    expect(result.pairsPerSec).toBe(50);
    expect(result.successPct).toBeCloseTo(95.238, 2);
    expect(result.establishMs?.p50).toBeCloseTo(50, 0);
    expect(result.establishMs?.max).toBeCloseTo(100, 0);
    expect(Object.keys(result.establishMs ?? {})).toEqual([
      'min',
      'mean',
      'p50',
      'p90',
      'p99',
      'p999',
      'max',
    ]);
    expect(result.errors).toEqual({ EPAYLOAD: 3 });
    expect(result.rate).toBeNull();
    const text = printResult(result);
    expect(text).toMatch(/pairs +planned 105 +established 100 \(95\.24%\) +failed 3 +cancelled 2/);
    expect(text).toMatch(/throughput +50 pairs\/s/);
    expect(text).toMatch(/errors +EPAYLOAD 3/);
    expect(text).not.toMatch(/INTERRUPTED/);
    expect(printResult({ ...result, interrupted: true })).toMatch(/INTERRUPTED, partial report/);
  });
});
