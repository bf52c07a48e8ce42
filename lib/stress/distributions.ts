/**
 * What the report's plots need from the merged histograms, in a few hundred numbers whatever the pair
 * count: latency at log-spaced percentiles (as HdrHistogram's plotter draws them, the x axis being
 * 1/(1 - percentile)), and connect() attempts per side as bins. Pure.
 */
import * as hdr from 'hdr-histogram-js';
import type { AttemptsBin, Distributions, PercentilePoint } from './types.ts';

/** Points per decade of 1/(1 - percentile): 90%, 99%, 99.9%... each ten points apart. */
export const POINTS_PER_DECADE = 10;
/** Deepest percentile drawn: 1/(1 - q) up to 10^6 (99.9999%), or the count of values, whichever is less. */
export const MAX_DECADES = 6;
/** Attempt counts drawn one by one up to this many distinct values; beyond, in power-of-two bins. */
export const MAX_ATTEMPT_BINS = 64;

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/**
 * [percentile, value / unitDivisor] at 1/(1 - q) = 10^(j / POINTS_PER_DECADE), as deep as the number
 * of values resolves (one value in N is the 1 - 1/N percentile), then the maximum at 100.
 */
export function percentileCurve(histogram: hdr.Histogram, unitDivisor = 1000): PercentilePoint[] {
  const total = histogram.totalCount;
  if (total === 0) return [];
  const points: PercentilePoint[] = [];
  for (let step = 0; step <= MAX_DECADES * POINTS_PER_DECADE; step += 1) {
    const inverse = 10 ** (step / POINTS_PER_DECADE);
    if (inverse > total) break;
    const percentile = 100 * (1 - 1 / inverse);
    // A bucket's highest equivalent value can pass the largest value recorded: never draw above it.
    const value = Math.min(histogram.getValueAtPercentile(percentile), histogram.maxValue);
    points.push([round(percentile, 6), round(value / unitDivisor, 3)]);
  }
  points.push([100, round(histogram.maxValue / unitDivisor, 3)]);
  return points;
}

/**
 * Every recorded value with its count ([low, high, count]: the histogram's bucket, one value wide for
 * small values), or power-of-two bins ([1,1], [2,2], [3,4], [5,8], ...) when there are many.
 */
export function valueBins(histogram: hdr.Histogram): AttemptsBin[] {
  if (histogram.totalCount === 0 || !(histogram instanceof hdr.JsHistogram)) return [];
  const exact: AttemptsBin[] = [];
  const iterator = histogram.recordedValuesIterator;
  iterator.reset();
  while (iterator.hasNext()) {
    const step = iterator.next();
    exact.push([
      histogram.lowestEquivalentValue(step.valueIteratedTo),
      step.valueIteratedTo,
      step.countAtValueIteratedTo,
    ]);
  }
  if (exact.length <= MAX_ATTEMPT_BINS) return exact;
  const bins: AttemptsBin[] = [];
  for (const [, high, count] of exact) {
    let top = 1;
    while (top < high) top *= 2;
    const last = bins.at(-1);
    if (last && last[1] === top) last[2] += count;
    else bins.push([top === 1 ? 1 : top / 2 + 1, top, count]);
  }
  return bins;
}

/** The report's plot data from a run's merged histograms (latencies recorded in microseconds, shown in ms). */
export function distributionsOf(
  establishUs: hdr.Histogram,
  pairUs: hdr.Histogram,
  attempts: hdr.Histogram,
): Distributions {
  return {
    establishMs: percentileCurve(establishUs),
    pairMs: percentileCurve(pairUs),
    attempts: valueBins(attempts),
  };
}
