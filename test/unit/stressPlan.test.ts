/** runStressPlan's plan, as stress.ts flags, and its usage errors (pure: thrown before any socket or process). */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../lib/core/errors.ts';
import { runStressPlan, stressArgs } from '../../lib/stress/runStressPlan.ts';

describe('stressArgs', () => {
  it('turns each field into the stress.ts flag, durations in ms, and no progress unless asked', () => {
    expect(stressArgs({})).toEqual(['--quiet']);
    expect(
      stressArgs({
        pairs: 500,
        durationMs: 1500,
        concurrency: 8,
        rate: 1000,
        workers: 2,
        payload: 4096,
        close: 'reset',
        timeoutMs: 250,
        mode: 'sandbox',
        log: 'pairs.ndjson',
        ports: { first: 2000, last: 2999 },
        addresses: 10,
        warmup: 0,
        sockets: 'net',
        progress: true,
      }),
    ).toEqual([
      '--pairs=500',
      '--duration=1500ms',
      '--concurrency=8',
      '--rate=1000',
      '--workers=2',
      '--payload=4096',
      '--close=reset',
      '--timeout=250ms',
      '--mode=sandbox',
      '--log=pairs.ndjson',
      '--ports=2000-2999',
      '--addresses=10',
      '--warmup=0',
      '--sockets=net',
    ]);
  });
});

describe('runStressPlan', () => {
  it('rejects a bad plan with a UsageError naming the flag, before anything starts', async () => {
    await expect(runStressPlan({ pairs: 0 })).rejects.toThrow(
      new UsageError('--pairs: 0 is out of range 1..1000000000'),
    );
    await expect(runStressPlan({ pairs: 1.5 })).rejects.toThrow(/--pairs: '1\.5' is not a whole number/);
    await expect(runStressPlan({ timeoutMs: -1 })).rejects.toThrow(/--timeout: invalid duration '-1ms'/);
    await expect(runStressPlan({ mode: 'race', workers: 1 })).rejects.toThrow(UsageError);
    await expect(
      runStressPlan({ pairs: 101, ports: { first: 2000, last: 2009 }, addresses: 20 }),
    ).rejects.toThrow(/--pairs 101 exceeds what the address plan holds/);
  });
});
