import { describe, expect, it } from 'vitest';
import { TimelineSampler } from '../../lib/stress/timeline.ts';

describe('the stress timeline', () => {
  it('samples cumulative counts and stays bounded, thinning as the run goes on', () => {
    let established = 0;
    let failed = 0;
    const sampler = new TimelineSampler(() => ({ established, failed, cancelled: 0 }), 16, 100);
    sampler.start(0);
    for (let tick = 1; tick <= 1000; tick += 1) {
      established += 10;
      if (tick % 100 === 0) failed += 1;
      sampler.sample(tick * 100);
    }
    const timeline = sampler.stop(100_050);
    expect(timeline.points.length).toBeLessThanOrEqual(17);
    expect(timeline.points[0]).toEqual([0, 0, 0, 0]);
    // The last point is the end of the run, with every pair counted.
    expect(timeline.points.at(-1)).toEqual([100_050, 10_000, 10, 0]);
    // Time and counts never go back.
    for (let index = 1; index < timeline.points.length; index += 1) {
      const [t, e, f] = timeline.points[index] as number[];
      const [pt, pe, pf] = timeline.points[index - 1] as number[];
      expect(t).toBeGreaterThan(pt as number);
      expect(e).toBeGreaterThanOrEqual(pe as number);
      expect(f).toBeGreaterThanOrEqual(pf as number);
    }
    expect(timeline.intervalMs).toBeGreaterThan(100);
    expect(sampler.stop(200_000)).toBe(timeline);
  });

  it('gives no points when the clock never started', () => {
    const sampler = new TimelineSampler(() => ({ established: 0, failed: 0, cancelled: 0 }));
    expect(sampler.stop().points).toEqual([]);
  });
});
