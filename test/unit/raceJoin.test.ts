import { describe, expect, it } from 'vitest';
import { combineHalves, joinBufferSize, RaceJoin, type SideHalf } from '../../lib/stress/raceJoin.ts';

describe('race join', () => {
  it('reports a pair once, from the side that finishes second', () => {
    const join = new RaceJoin(new SharedArrayBuffer(joinBufferSize(4)), 4);
    const half = (overrides: Partial<SideHalf>): SideHalf => ({
      outcome: 'established',
      error: undefined,
      attempts: 3,
      bytesVerified: 64,
      closeOutcome: 'fin',
      establishUs: 500,
      startedAt: 1000,
      finishedAt: 1002,
      ...overrides,
    });
    expect(join.put(2, 1, half({ startedAt: 1000.5 }))).toBe(false);
    expect(join.put(2, 0, half({ error: undefined }))).toBe(true);
    expect(join.state(2)).toEqual({ halves: 2, reportedBy: 1 });
    const pair = join.joined(2);
    expect(pair.outcome).toBe('established');
    expect(pair.bytesVerified).toBe(128);
    expect(pair.establishUs).toEqual([500, 1000]); // B started 0.5 ms later
    expect(join.state(1)).toEqual({ halves: 0, reportedBy: 0 });
    expect(
      combineHalves(half({ outcome: 'failed', error: 'EPAIRTIMEOUT' }), half({ outcome: 'cancelled' })),
    ).toMatchObject({ outcome: 'failed', error: 'EPAIRTIMEOUT' });
    expect(combineHalves(half({}), half({ outcome: 'cancelled', error: 'ECANCELED' }))).toMatchObject({
      outcome: 'cancelled',
    });
  });
});
