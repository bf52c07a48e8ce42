/** Where lab state lives: one directory per user and clone, so one clone's `lab.ts down` leaves another's labs. */
import { describe, expect, it } from 'vitest';
import { cloneKey, type StateContext, stateBase, stateDirectory } from '../../lib/lab/labState.ts';

const context = (overrides: Partial<StateContext> = {}): StateContext => ({
  env: {},
  uid: 1000,
  root: false,
  tmpdir: '/tmp',
  clone: '/home/ann/simopen',
  ...overrides,
});

describe('lab state directory', () => {
  it('is per clone: two clones of one user never share one', () => {
    const first = stateDirectory(context());
    const second = stateDirectory(context({ clone: '/home/ann/work/simopen' }));
    expect(first).not.toBe(second);
    expect(first).toBe(`/tmp/simopen-lab-1000/${cloneKey('/home/ann/simopen')}`);
    expect(cloneKey('/home/ann/simopen')).toMatch(/^[0-9a-f]{12}$/);
    expect(stateDirectory(context())).toBe(first);
  });

  it('is per user, under /run for root', () => {
    expect(stateBase(context())).toBe('/tmp/simopen-lab-1000');
    expect(stateBase(context({ uid: 1001 }))).toBe('/tmp/simopen-lab-1001');
    expect(stateDirectory(context({ root: true, uid: 0 }))).toBe(
      `/run/simopen-lab/${cloneKey('/home/ann/simopen')}`,
    );
  });

  it('SIMOPEN_LAB_STATE_DIR names it instead (an empty value does not)', () => {
    expect(stateDirectory(context({ env: { SIMOPEN_LAB_STATE_DIR: '/tmp/run-42' } }))).toBe('/tmp/run-42');
    expect(stateDirectory(context({ env: { SIMOPEN_LAB_STATE_DIR: '' } }))).toBe(stateDirectory(context()));
  });
});
