import { describe, expect, it } from 'vitest';
import { flatRateVerdict, flatRssVerdict, shareOfCVerdict } from '../../bench/benchReport.ts';

describe('bench verdicts', () => {
  it('judge the share of the C figure against 0.5', () => {
    expect(shareOfCVerdict(30_000, 50_000).pass).toBe(true);
    const miss = shareOfCVerdict(15_000, 50_000);
    expect(miss.pass).toBe(false);
    expect(miss.detail).toMatch(/^0\.30x/);
  });

  it('call a rate flat within 15% of the fastest, and name the numbers', () => {
    const flat = flatRateVerdict([
      { pairs: 10_000, pairsPerSec: 10_000, peakRssBytes: 1 },
      { pairs: 1_000_000, pairsPerSec: 8_600, peakRssBytes: 1 },
    ]);
    expect(flat.pass).toBe(true);
    expect(flat.detail).toContain('14.0% below fastest');
    expect(
      flatRateVerdict([
        { pairs: 10_000, pairsPerSec: 10_000, peakRssBytes: 1 },
        { pairs: 1_000_000, pairsPerSec: 8_400, peakRssBytes: 1 },
      ]).pass,
    ).toBe(false);
  });

  it('fail a peak RSS that grows with the pair count, or that was not measured', () => {
    const mb = 1024 * 1024;
    const point = (pairs: number, rss: number) => ({ pairs, pairsPerSec: 1, peakRssBytes: rss });
    expect(flatRssVerdict([point(10_000, 100 * mb), point(1_000_000, 110 * mb)]).pass).toBe(true);
    const grew = flatRssVerdict([point(1_000_000, 300 * mb), point(10_000, 100 * mb)]);
    expect(grew.pass).toBe(false);
    expect(grew.detail).toContain('+200.0% from 10k to 1M');
    expect(flatRssVerdict([point(10_000, 0), point(1_000_000, 100 * mb)]).detail).toBe(
      'peak RSS not measured',
    );
  });
});
