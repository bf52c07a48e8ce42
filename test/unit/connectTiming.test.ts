import { describe, expect, it } from 'vitest';
import { ConnectTimingRecorder, formatConnectTiming } from '../../lib/coordinator/connectTiming.ts';
import type { BatchHalf } from '../../lib/coordinator/joinSides.ts';

/** A side record: outcome (0 established, 1 failed), error, attempts, establishUs, startUs, durationUs, bytes, close. */
function side(startUs: number, attempts: number, outcome = 0): number[] {
  return [outcome, outcome === 0 ? -1 : 0, attempts, outcome === 0 ? 300 : -1, startUs, 900, 64, 1];
}

describe('timed connects: skew and crossings from both sides’ records', () => {
  it('measures |A - B|, who went first, and the pairs that opened on one connect each', () => {
    const a: BatchHalf = {
      records: [...side(1000, 1), ...side(5000, 3), ...side(9000, 1, 1)],
      errors: ['EPAIRTIMEOUT'],
    };
    const b: BatchHalf = { records: [...side(1500, 1), ...side(4000, 1), ...side(9000, 1)], errors: [] };
    const recorder = new ConnectTimingRecorder();
    for (let index = 0; index < 3; index += 1) recorder.record(a, b, index, 1_000_000);
    // A lost agent's half has no start time: not counted.
    recorder.record({ lost: 'gone' }, b, 0, 1_000_000);
    const timing = recorder.result([
      { name: 'alice', controlRttMs: 0.5, clockOffsetMs: 0.01 } as never,
      { name: 'bob', controlRttMs: 0.6, clockOffsetMs: -0.01 } as never,
    ]);
    expect(timing.pairs).toBe(3);
    expect(timing.crossed).toBe(1);
    expect(timing.aFirst).toBe(2);
    expect(timing.bFirst).toBe(1);
    expect(timing.skewMs?.max).toBeCloseTo(1, 2);
    expect(timing.skewMs?.p50).toBeCloseTo(0.5, 2);
    const text = formatConnectTiming(timing).join('\n');
    expect(text).toContain('alice  control round trip 0.5 ms, clock offset +0.01 ms');
    expect(text).toContain('1 of 3 pairs (33.3%) opened on both sides');
  });
});
