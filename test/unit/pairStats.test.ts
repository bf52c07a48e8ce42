import { describe, expect, it } from 'vitest';
import { mergeStats, PairStats } from '../../lib/stress/pairStats.ts';

describe('stats', () => {
  it('merges encoded worker stats into the same totals and percentiles as one recorder', () => {
    const all = new PairStats();
    const parts = [new PairStats(), new PairStats()];
    for (let k = 1; k <= 1000; k += 1) {
      const part = parts[k % 2] as PairStats;
      for (const target of [all, part]) {
        target.recordEstablished(k * 10, k * 20, k % 3 ? 'fin' : 'rst');
        target.recordAttempts(1 + (k % 5), (k % 2) as 0 | 1);
        target.keepalivesVerified += 2;
        target.bytesVerified += 128;
        if (k % 100 === 0) target.recordFailed('EPAIRTIMEOUT');
        if (k % 250 === 0) target.recordCancelled();
        target.recordRetryErrors({ ECONNREFUSED: 2 });
      }
    }
    const merged = new PairStats();
    // Through structured clone, as they cross from the workers.
    for (const part of parts) mergeStats(merged, structuredClone(part.encode()));
    expect(merged.established).toBe(1000);
    expect(merged.failed).toBe(10);
    expect(merged.cancelled).toBe(4);
    expect(merged.bytesVerified).toBe(128_000);
    expect(merged.errors).toEqual({ EPAIRTIMEOUT: 10 });
    expect(merged.retryErrors).toEqual({ ECONNREFUSED: 2000 });
    expect(merged.closes).toEqual(all.closes);
    for (const p of [50, 90, 99, 99.9, 100]) {
      expect(merged.establishUs.getValueAtPercentile(p)).toBe(all.establishUs.getValueAtPercentile(p));
      expect(merged.pairUs.getValueAtPercentile(p)).toBe(all.pairUs.getValueAtPercentile(p));
      for (const side of [0, 1] as const)
        expect(merged.attempts[side].getValueAtPercentile(p)).toBe(
          all.attempts[side].getValueAtPercentile(p),
        );
    }
    expect(merged.establishUs.totalCount).toBe(1000);
    expect(merged.attempts[0].totalCount + merged.attempts[1].totalCount).toBe(1000);
    expect(merged.keepalivesVerified).toBe(2000);
  });
});
