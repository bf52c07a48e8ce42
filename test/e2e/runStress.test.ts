/** runStress called in this process (race mode: worker threads, real sockets on the host loopback). */
import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseStressOptions } from '../../lib/stress/options.ts';
import { runStress } from '../../lib/stress/runStress.ts';

describe('runStress in this process', () => {
  it('loads its TypeScript workers under vitest too (race mode: no namespace needed)', async () => {
    const parsed = parseStressOptions(['--mode', 'race', '--pairs', '4', '--quiet'], {
      cores: 2,
      // A random address block, as stress.ts picks for race mode: another run's pairs are elsewhere.
      roundOffset: randomInt(1 << 30),
    });
    if (parsed.help) throw new Error('help');
    const result = await runStress({
      options: parsed.options,
      plan: parsed.plan,
      mode: 'race',
      modeReason: 'test',
      stop: new AbortController().signal,
    });
    expect(result.workerCrashes).toBe(0);
    expect(result.pairs.planned).toBe(4);
    expect(result.pairs.established + result.pairs.failed + result.pairs.cancelled).toBe(4);
  });
});
