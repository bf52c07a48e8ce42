/** The sandboxed child's environment: the mode's reason always, the hold's malloc arenas unless the user set them. */
import { describe, expect, it } from 'vitest';
import type { SandboxProbe } from '../../lib/core/sandbox.ts';
import {
  chooseMode,
  HOLD_MALLOC_ARENA_MAX,
  MODE_REASON_ENV,
  type ModeContext,
  reexecEnv,
} from '../../lib/stress/chooseMode.ts';

const AVAILABLE: SandboxProbe = { ok: true, reason: 'private network namespace via unshare -n' };
const CONTEXT: ModeContext = {
  cores: 2,
  insideSandbox: false,
  probe: () => AVAILABLE,
  randomRound: () => 7,
};

function reexecChoice(args: string[]) {
  const choice = chooseMode(args, CONTEXT);
  if (choice.action !== 'reexec') throw new Error(`expected a re-exec, got ${choice.action}`);
  return choice;
}

describe('reexecEnv', () => {
  it('a hold runs its sandboxed child with fewer malloc arenas; other runs add nothing but the reason', () => {
    const held = reexecChoice(['--pairs', '100', '--hold', '1s']);
    expect(reexecEnv(held, {})).toEqual({
      [MODE_REASON_ENV]: held.reason,
      MALLOC_ARENA_MAX: HOLD_MALLOC_ARENA_MAX,
    });
    const plain = reexecChoice(['--pairs', '100']);
    expect(reexecEnv(plain, {})).toEqual({ [MODE_REASON_ENV]: plain.reason });
  });

  it('keeps a MALLOC_ARENA_MAX the user set (the child inherits it)', () => {
    const held = reexecChoice(['--pairs', '100', '--hold', '1s']);
    expect(reexecEnv(held, { MALLOC_ARENA_MAX: '8' })).toEqual({ [MODE_REASON_ENV]: held.reason });
  });
});
