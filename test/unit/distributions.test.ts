import * as hdr from 'hdr-histogram-js';
import { describe, expect, it } from 'vitest';
import { MAX_ATTEMPT_BINS, percentileCurve, valueBins } from '../../lib/stress/distributions.ts';

const build = () =>
  hdr.build({ lowestDiscernibleValue: 1, numberOfSignificantValueDigits: 3, autoResize: true });

describe('plot data from histograms', () => {
  it('gives latency at log-spaced percentiles, as deep as the count resolves, then the maximum', () => {
    const histogram = build();
    for (let us = 1; us <= 100_000; us += 1) histogram.recordValue(us);
    const curve = percentileCurve(histogram);
    // 1/(1-q) up to 10^5 (the count): 5 decades of 10 points, plus the 0th, plus the maximum.
    expect(curve.length).toBe(52);
    expect(curve[0]).toEqual([0, 0.001]);
    expect(curve.at(-1)).toEqual([100, 100]);
    const at = (percentile: number) => curve.find(([q]) => Math.abs(q - percentile) < 1e-9)?.[1];
    expect(at(90)).toBeCloseTo(90, 0);
    expect(at(99)).toBeCloseTo(99, 0);
    expect(at(99.9)).toBeCloseTo(99.9, 0);
    for (let index = 1; index < curve.length; index += 1) {
      expect((curve[index] as number[])[0]).toBeGreaterThan((curve[index - 1] as number[])[0] as number);
      expect((curve[index] as number[])[1]).toBeGreaterThanOrEqual(
        (curve[index - 1] as number[])[1] as number,
      );
    }
    expect(percentileCurve(build())).toEqual([]);
  });

  it('bins attempts one value each, or by powers of two when there are many', () => {
    const few = build();
    few.recordValueWithCount(1, 900);
    few.recordValueWithCount(2, 90);
    few.recordValueWithCount(7, 10);
    expect(valueBins(few)).toEqual([
      [1, 1, 900],
      [2, 2, 90],
      [7, 7, 10],
    ]);
    const many = build();
    for (let value = 1; value <= 1000; value += 1) many.recordValue(value);
    const bins = valueBins(many);
    expect(bins.length).toBeLessThanOrEqual(MAX_ATTEMPT_BINS);
    expect(bins.slice(0, 4)).toEqual([
      [1, 1, 1],
      [2, 2, 1],
      [3, 4, 2],
      [5, 8, 4],
    ]);
    expect(bins.reduce((sum, [, , count]) => sum + count, 0)).toBe(1000);
  });
});
