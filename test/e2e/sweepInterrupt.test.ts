/**
 * stress.ts --sweep stopped by SIGINT in the middle: the run stops, exits 130, prints and writes the
 * partial sweep, every pair of every point it started is accounted for (planned = established +
 * failed + cancelled + not started, in the table and in the JSON), and nothing is left behind. Once
 * as a point starts (its pairs not started yet), once while a point's pairs wait on the held link.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { probeSandbox } from '../../lib/core/sandbox.ts';
import { sweepGrid } from '../../lib/stress/options.ts';
import type { StressResult, SweepResult } from '../../lib/stress/types.ts';
import { heldLinkLeftovers } from '../helpers/heldLink.ts';
import { runScript } from '../helpers/runScript.ts';

const sandbox = probeSandbox();
// Privileged facilities may be missing on a developer's machine, never under CI.
const skip = !sandbox.ok && !process.env.CI;
if (skip) console.warn(`skipping stress --sweep SIGINT: ${sandbox.reason}`);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simopen-sweep-interrupt-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const POINTS = 11;
const SWEEP = `skew=0..5ms:${POINTS}`;

function accountedFor(pairs: StressResult['pairs']): number {
  return pairs.established + pairs.failed + pairs.cancelled + pairs.notStarted;
}

/**
 * Runs the sweep, sends SIGINT `afterMs` after point `point` is announced, and checks what holds
 * wherever the signal lands; returns the stopped point's result.
 */
async function interruptSweep(
  name: string,
  pairs: number,
  extraArgs: string[],
  point: number,
  afterMs: number,
): Promise<StressResult> {
  const json = path.join(dir, `${name}.json`);
  const child = runScript(
    'stress',
    ['--sweep', SWEEP, '--pairs', String(pairs), '--json', json, ...extraArgs],
    {},
    { stdin: 'ignore' },
  );
  await child.waitFor(new RegExp(`stress: sweep point ${point}/${POINTS}:`), 120_000);
  if (afterMs > 0) await sleep(afterMs);
  const code = await child.stop('SIGINT');
  const stderr = child.stderr();
  expect(code, stderr).toBe(130);
  expect(stderr).toMatch(/stress: SIGINT: stopping/);

  // A point is announced on stderr just before it starts: those are the points that started.
  const started = stderr.match(new RegExp(`stress: sweep point \\d+/${POINTS}:`, 'g'))?.length ?? 0;
  expect(started).toBeGreaterThanOrEqual(point);
  expect(started).toBeLessThan(POINTS);

  const sweep = JSON.parse(fs.readFileSync(json, 'utf8')) as SweepResult;
  expect(sweep.interrupted).toBe(true);
  expect(sweep.results).toHaveLength(started);
  expect(sweep.rows.map((row) => row.skewMs)).toEqual(sweepGrid(0, 5, POINTS).slice(0, started));
  for (const [index, result] of sweep.results.entries()) {
    const counts = result.pairs;
    expect(counts.planned, `point ${index + 1}`).toBe(pairs);
    expect(accountedFor(counts), `point ${index + 1}`).toBe(pairs);
    expect(sweep.rows[index]).toMatchObject({
      planned: counts.planned,
      established: counts.established,
      failed: counts.failed,
      cancelled: counts.cancelled,
      notStarted: counts.notStarted,
    });
    // Only the last point can have been stopped; the ones before it ran to the end.
    if (index < started - 1) {
      expect(result.interrupted, `point ${index + 1}`).toBe(false);
      expect(counts.cancelled + counts.notStarted, `point ${index + 1}`).toBe(0);
    }
  }

  // The partial table: a line per point started, with the counts of the JSON.
  const stdout = child.stdout();
  expect(stdout).toMatch(/^simopen stress sweep: INTERRUPTED, partial table$/m);
  const lines = stdout.split('\n').filter((line) => /^\s+\d+(\.\d+)?\s+\d+\s+\d+\s/.test(line));
  expect(lines).toHaveLength(started);
  for (const [index, line] of lines.entries()) {
    const row = sweep.rows[index];
    const [, planned, established, , notEstablished] = line.trim().split(/\s+/);
    expect(Number(planned)).toBe(row?.planned);
    expect(Number(established)).toBe(row?.established);
    expect(Number(notEstablished)).toBe(pairs - (row?.established ?? 0));
  }

  // Nothing left: no process of the run, nothing of the held link on the host.
  const processes = execFileSync('ps', ['-eo', 'args='], { encoding: 'utf8' });
  expect(processes.split('\n').filter((line) => line.includes(json))).toEqual([]);
  expect(heldLinkLeftovers()).toEqual([]);
  return sweep.results.at(-1) as StressResult;
}

describe.skipIf(skip)('stress.ts --sweep, SIGINT in the middle', () => {
  it('as a point starts: exit 130, the partial sweep printed and written, every pair accounted for', async () => {
    await interruptSweep('at-start', 3000, [], 3, 0);
  });

  it('while a point’s pairs wait on the link: they are cancelled, every pair accounted for', async () => {
    // The link delivers every 2 s and a worker connects 8 pairs at a time: a point of 128 pairs
    // needs several deliveries, so 3 s into it some of its pairs are in flight, none has all finished.
    const stopped = await interruptSweep('in-flight', 128, ['--delay', '2s'], 2, 3000);
    expect(stopped.interrupted).toBe(true);
    expect(stopped.pairs.established).toBeLessThan(128);
    expect(stopped.pairs.cancelled + stopped.pairs.notStarted).toBeGreaterThan(0);
  });
});
