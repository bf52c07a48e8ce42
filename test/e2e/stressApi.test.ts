/**
 * simopen/stress's runStressPlan: in this process in race mode (no namespace needed), and from a
 * script that runs two plans in the sandbox (the script re-executes itself there once; the second
 * run replaces the first one's nft rules, and the bare handles' self-test passes both times).
 */

import { describe, expect, it } from 'vitest';
import { runChild } from '../../lib/core/childProcess.ts';
import { probeSandbox } from '../../lib/core/sandbox.ts';
import { runStressPlan } from '../../lib/stress/index.ts';
import { repoRoot } from '../helpers/runScript.ts';

const sandbox = probeSandbox();
const needsSandbox = sandbox.ok || process.env.CI ? it : it.skip;
if (!sandbox.ok && !process.env.CI) console.warn(`skipping the sandbox API test: ${sandbox.reason}`);

describe('runStressPlan', () => {
  it('runs a race-mode plan in this process and returns its result', async () => {
    const result = await runStressPlan({ mode: 'race', pairs: 4, payload: 100, timeoutMs: 2000 });
    expect(result.mode).toBe('race');
    expect(result.modeReason).toMatch(/^asked for/);
    expect(result.sockets).toBe('net');
    expect(result.payloadBytes).toBe(100);
    expect(result.timeoutMs).toBe(2000);
    expect(result.pairs.planned).toBe(4);
    expect(
      result.pairs.established + result.pairs.failed + result.pairs.cancelled + result.pairs.notStarted,
    ).toBe(4);
    expect(result.workerCrashes).toBe(0);
  });

  it('stops when its signal aborts: a partial result, every pair accounted for', async () => {
    const stop = new AbortController();
    stop.abort();
    const result = await runStressPlan({ mode: 'race', pairs: 50, signal: stop.signal });
    expect(result.interrupted).toBe(true);
    expect(result.pairs.planned).toBe(50);
    // Stopped before the first pair: none started, every one is accounted for as not started.
    expect(result.pairs.notStarted).toBe(50);
  });

  needsSandbox('runs two plans from one script in the sandbox, each with its own rules', async () => {
    const { code, stdout, stderr } = await runChild(
      process.execPath,
      ['--import', 'tsx', 'test/fixtures/stressPlanTwice.ts'],
      { cwd: repoRoot },
    );
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const runs = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(runs).toHaveLength(2);
    for (const run of runs) {
      expect(run.mode).toBe('sandbox');
      expect(run.sockets).toBe('handle');
      expect(run.socketsReason).toBeUndefined();
      expect(run.pairs).toEqual({ planned: 200, established: 200, failed: 0, cancelled: 0, notStarted: 0 });
      expect(run.closeOutcomes).toEqual({ fin: 200 });
    }
    expect(runs.map((run) => run.close)).toEqual(['simultaneous', 'graceful']);
  });
});
