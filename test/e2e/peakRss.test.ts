import { describe, expect, it } from 'vitest';
import { samplePeakRss } from '../../bench/peakRss.ts';
import { startChild } from '../../lib/core/childProcess.ts';

describe('peak RSS sampling', () => {
  it('finds the high-water mark of a grandchild (as stress.ts runs under unshare)', async () => {
    // sh -> node (the '; true' keeps sh from exec'ing node): the memory is in a descendant.
    const child = startChild(
      'sh',
      [
        '-c',
        `"${process.execPath}" -e "const b = Buffer.alloc(200 * 1024 * 1024, 1); setTimeout(() => b, 1500)"; true`,
      ],
      { stdin: 'ignore' },
    );
    const sampler = samplePeakRss(child.pid as number, 100);
    await child.exited;
    const peak = sampler.stop();
    expect(peak).toBeGreaterThan(200 * 1024 * 1024);
    expect(peak).toBeLessThan(1024 * 1024 * 1024);
  });
});
