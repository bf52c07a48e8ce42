/** Where a stress run goes (sandbox, re-exec, race, fallback), decided in process with injected probes. */
import { describe, expect, it } from 'vitest';
import { ExitError, UsageError } from '../../lib/core/errors.ts';
import { DROP_EARLY_RST_RULESET, type SandboxProbe } from '../../lib/core/sandbox.ts';
import { chooseMode, EXIT_NO_SANDBOX, type ModeContext } from '../../lib/stress/chooseMode.ts';
import { CROSS_FINS_RTO_MIN_MS, crossFinsRuleset } from '../../lib/stress/finCrossing.ts';

const AVAILABLE: SandboxProbe = { ok: true, reason: 'private network namespace via unshare -n' };
const MISSING: SandboxProbe = { ok: false, reason: 'unshare (util-linux) is not installed' };

/** A context whose probe and random round are counted. */
function context(overrides: Partial<ModeContext> & { sandbox?: SandboxProbe } = {}) {
  const calls = { probe: 0, random: 0 };
  const { sandbox = AVAILABLE, ...rest } = overrides;
  const built: ModeContext = {
    cores: 2,
    insideSandbox: false,
    probe: () => {
      calls.probe += 1;
      return sandbox;
    },
    randomRound: () => {
      calls.random += 1;
      return 7;
    },
    ...rest,
  };
  return { context: built, calls };
}

describe('chooseMode', () => {
  it('--help asks for the help text, whatever else', () => {
    expect(chooseMode(['--help'], context().context)).toEqual({ action: 'help' });
  });

  it('outside the sandbox, with one possible: re-execute there, saying whether it was asked for', () => {
    const { context: ctx, calls } = context();
    expect(chooseMode([], ctx)).toEqual({
      action: 'reexec',
      reason: 'default; private network namespace via unshare -n, early RSTs dropped by nft',
    });
    expect(calls.probe).toBe(1);
    expect(chooseMode(['--mode', 'sandbox'], ctx)).toMatchObject({
      reason: expect.stringMatching(/^asked for; /),
    });
    expect(chooseMode(['--close', 'simultaneous'], ctx)).toMatchObject({
      reason: expect.stringMatching(/, FINs held until both sides sent theirs$/),
    });
  });

  it('inside the sandbox: run, with the network the close needs, and never probe again', () => {
    const { context: ctx, calls } = context({ insideSandbox: true, reasonFromParent: 'from the parent' });
    const plain = chooseMode(['--pairs', '10'], ctx);
    expect(plain).toMatchObject({
      action: 'run',
      modeReason: 'from the parent',
      network: { ruleset: DROP_EARLY_RST_RULESET },
    });
    if (plain.action !== 'run') throw new Error('not run');
    expect(plain.options.pairs).toBe(10);
    expect(plain.plan.roundOffset).toBe(0);
    expect(plain.warning).toBeUndefined();
    expect(chooseMode(['--close', 'simultaneous'], ctx)).toMatchObject({
      network: { ruleset: crossFinsRuleset(), rtoMinMs: CROSS_FINS_RTO_MIN_MS },
    });
    expect(calls).toEqual({ probe: 0, random: 0 });
    // Traced runs take a random address block: the tracepoint sees every namespace.
    const traced = chooseMode(['--trace'], ctx);
    if (traced.action !== 'run') throw new Error('not run');
    expect(calls.random).toBe(1);
    expect(traced.plan.roundOffset).toBe(7);
    expect(chooseMode([], context({ insideSandbox: true }).context)).toMatchObject({
      modeReason: 'private network namespace, early RSTs dropped',
    });
  });

  it('--mode race runs on the host loopback at a random address block, without probing', () => {
    const { context: ctx, calls } = context();
    const race = chooseMode(['--mode', 'race', '--pairs', '4'], ctx);
    expect(race).toMatchObject({
      action: 'run',
      modeReason: 'asked for; host loopback, sides retry from different threads',
    });
    if (race.action !== 'run') throw new Error('not run');
    expect(race.options.mode).toBe('race');
    expect(race.plan.roundOffset).toBe(7);
    expect(calls.probe).toBe(0);
  });

  it('no sandbox possible: the default falls back to race mode and says why; --mode sandbox is refused (exit 3)', () => {
    const { context: ctx } = context({ sandbox: MISSING });
    const fallback = chooseMode(['--pairs', '4'], ctx);
    expect(fallback).toMatchObject({
      action: 'run',
      modeReason: 'fallback: no sandbox (unshare (util-linux) is not installed)',
    });
    if (fallback.action !== 'run') throw new Error('not run');
    // Why, what it costs, and how to get the sandbox.
    expect(fallback.warning).toMatch(
      /^no sandbox \(unshare \(util-linux\) is not installed\); falling back to race mode on the host loopback, .*tens of thousands.*npm run setup as root/,
    );
    if (fallback.action !== 'run') throw new Error('not run');
    expect(fallback.options.mode).toBe('race');
    let refused: unknown;
    try {
      chooseMode(['--mode', 'sandbox'], ctx);
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(ExitError);
    expect((refused as ExitError).exitCode).toBe(EXIT_NO_SANDBOX);
    expect((refused as ExitError).message).toBe(
      '--mode sandbox is not possible here: unshare (util-linux) is not installed',
    );
  });

  it('a flag valid for the sandbox but not for the fallback: a usage error naming both', () => {
    const { context: ctx } = context({ sandbox: MISSING });
    expect(() => chooseMode(['--workers', '1'], ctx)).toThrow(UsageError);
    expect(() => chooseMode(['--workers', '1'], ctx)).toThrow(
      /^no sandbox \(unshare \(util-linux\) is not installed\), and the race-mode fallback refuses: --workers 1/,
    );
    // With a sandbox the same flags are fine.
    expect(chooseMode(['--workers', '1'], context().context)).toMatchObject({ action: 'reexec' });
  });

  it('usage errors come before any probe', () => {
    const { context: ctx, calls } = context();
    expect(() => chooseMode(['--pairs', 'lots'], ctx)).toThrow(UsageError);
    expect(calls.probe).toBe(0);
  });
});
