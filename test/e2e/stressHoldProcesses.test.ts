/**
 * stress.ts --hold spread over several processes in the sandbox's namespace: a hold one process
 * cannot open (its open-files limit lowered with prlimit, as the hard limit of 20,000 is on a machine
 * holding 100,000 pairs) goes to as many stress processes as it needs; every pair and keepalive is
 * counted across them, the pair log has every pair once, SIGINT stops them all, and a stress process
 * killed mid-hold fails only its own pairs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type Child, REPO_ROOT, startChild } from '../../lib/core/childProcess.ts';
import { probeSandbox } from '../../lib/core/sandbox.ts';
import { pairsPerProcess } from '../../lib/stress/options.ts';
import type { PairLogRecord, StressResult } from '../../lib/stress/types.ts';
import { processesOfThisRun } from '../helpers/runProcesses.ts';

const sandbox = probeSandbox();
// Privileged facilities may be missing on a developer's machine, never under CI.
const skip = !sandbox.ok && !process.env.CI;
if (skip) console.warn(`skipping stress --hold over processes: ${sandbox.reason}`);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simopen-stress-processes-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The stress processes this run started (another run's are not ours to count or kill). */
function stressProcesses(): number[] {
  return processesOfThisRun()
    .filter((line) => line.includes('workers/stressProcess.ts'))
    .map((line) => Number(line.split(' ')[0]));
}

afterEach(() => {
  expect(stressProcesses()).toEqual([]);
});

/** stress.ts under an open-files limit of `nofile` (prlimit), so that one process holds few pairs. */
function stress(nofile: number, args: string[]): Child {
  return startChild(
    'prlimit',
    [`--nofile=${nofile}`, process.execPath, '--import', 'tsx', 'scripts/stress.ts', ...args],
    { cwd: REPO_ROOT, stdin: 'ignore' },
  );
}

function readLog(file: string): PairLogRecord[] {
  return fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as PairLogRecord | { outcome: 'notStarted' })
    .filter((record): record is PairLogRecord => record.outcome !== 'notStarted');
}

function accountedFor(pairs: StressResult['pairs']): number {
  return pairs.established + pairs.failed + pairs.cancelled + pairs.notStarted;
}

describe.skipIf(skip)('stress.ts --hold over several processes', () => {
  it('spreads a hold past the open-files limit over processes, every pair and keepalive counted', async () => {
    // 600 pairs a process: 2,000 held at once need 4 (2 threads each, whole waves of 125).
    expect(pairsPerProcess(1400)).toBe(600);
    const json = path.join(dir, 'spread.json');
    const log = path.join(dir, 'spread.ndjson');
    const child = stress(1400, [
      ...['--open', 'crossed', '--pairs', '2000', '--workers', '2', '--hold', '2s', '--keepalive', '200ms'],
      ...['--quiet', '--json', json, '--log', log],
    ]);
    const code = await child.exited;
    expect(code, child.stderr()).toBe(0);
    const summary = JSON.parse(fs.readFileSync(json, 'utf8')) as StressResult;
    expect(summary.processes).toBe(4);
    expect(summary.workers).toBe(8);
    expect(summary.pairs).toMatchObject({ planned: 2000, established: 2000, failed: 0 });
    expect(summary.hold).toMatchObject({ peakOpenPairs: 2000, keepalivesVerified: 2000 * 2 * 10 });
    expect(summary.hold?.rssPerHeldPairBytes).toBeGreaterThan(0);
    expect(child.stdout()).toMatch(/^ {2}workers {8}8 \(in 4 processes\)/m);
    const records = readLog(log);
    expect(records).toHaveLength(2000);
    expect(new Set(records.map((record) => record.id)).size).toBe(2000);
    expect(records.every((record) => record.outcome === 'established')).toBe(true);
  });

  it('SIGINT in the middle of a spread hold stops every process: partial report, every pair accounted for', async () => {
    const json = path.join(dir, 'stopped.json');
    const log = path.join(dir, 'stopped.ndjson');
    const child = stress(20_000, [
      ...['--processes', '3', '--pairs', '3000', '--hold', '60s', '--keepalive', '250ms'],
      ...['--json', json, '--log', log],
    ]);
    await child.waitFor(/stress: .* 3,000 held/, 120_000);
    expect(stressProcesses()).toHaveLength(3);
    const code = await child.stop('SIGINT');
    expect(code, child.stderr()).toBe(130);
    expect(child.stdout()).toMatch(/INTERRUPTED, partial report/);
    const summary = JSON.parse(fs.readFileSync(json, 'utf8')) as StressResult;
    expect(summary.interrupted).toBe(true);
    expect(summary.processes).toBe(3);
    expect(accountedFor(summary.pairs)).toBe(3000);
    expect(summary.pairs.cancelled).toBe(3000);
    expect(summary.hold?.peakOpenPairs).toBe(3000);
    expect(summary.errors.EKEEPALIVE).toBeUndefined();
    const records = readLog(log);
    expect(new Set(records.map((record) => record.id)).size).toBe(3000);
    expect(records.every((record) => record.outcome === 'cancelled')).toBe(true);
  });

  it('a stress process killed mid-hold fails its own pairs only; the others finish', async () => {
    const json = path.join(dir, 'killed.json');
    const log = path.join(dir, 'killed.ndjson');
    const child = stress(20_000, [
      ...['--processes', '3', '--workers', '1', '--pairs', '1500', '--hold', '12s', '--keepalive', '500ms'],
      ...['--json', json, '--log', log],
    ]);
    await child.waitFor(/stress: .* 1,500 held/, 120_000);
    const [victim] = stressProcesses();
    expect(victim).toBeDefined();
    process.kill(victim as number, 'SIGKILL');
    const code = await child.exited;
    // Fewer than all established: below --min-success.
    expect(code, child.stderr()).toBe(1);
    expect(child.stderr()).toMatch(/stress process \d \(pid \d+\) exited/);
    const summary = JSON.parse(fs.readFileSync(json, 'utf8')) as StressResult;
    expect(accountedFor(summary.pairs)).toBe(1500);
    // One process of three ran a third of the pairs, in whole batches.
    expect(summary.pairs.failed).toBe(500);
    expect(summary.errors.EWORKERCRASH).toBe(500);
    expect(summary.pairs.established).toBe(1000);
    expect(summary.workerCrashes).toBe(1);
    const records = readLog(log);
    expect(records).toHaveLength(1500);
    expect(new Set(records.map((record) => record.id)).size).toBe(1500);
    expect(records.filter((record) => record.error === 'EWORKERCRASH')).toHaveLength(500);
  });
});
