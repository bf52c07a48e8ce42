/**
 * stress.ts --open crossed, --open skew (a sweep) and --hold in the sandbox: the kernel's trace says
 * how every pair opened, every pair is accounted for, held pairs' keepalives are checked, a stop in
 * the middle of a hold keeps the invariant, and nothing of the held link is left behind.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openFilesLimit } from '../../lib/core/processLimits.ts';
import { probeSandbox } from '../../lib/core/sandbox.ts';
import { pairsPerProcess } from '../../lib/stress/options.ts';
import type { StressResult, SweepResult } from '../../lib/stress/types.ts';
import { probeTracefs } from '../../lib/trace/kernelTracepoint.ts';
import { heldLinkLeftovers } from '../helpers/heldLink.ts';
import { runScript } from '../helpers/runScript.ts';

const sandbox = probeSandbox();
const tracefs = probeTracefs();
// Privileged facilities may be missing on a developer's machine, never under CI.
const skip = (!sandbox.ok || !tracefs.ok) && !process.env.CI;
if (skip) console.warn(`skipping stress --open: ${sandbox.ok ? tracefs.reason : sandbox.reason}`);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simopen-stress-open-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function run(args: string[]) {
  const child = runScript('stress', args, {}, { stdin: 'ignore' });
  const code = await child.exited;
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

function sum(counts: Record<string, number> | undefined): number {
  return Object.values(counts ?? {}).reduce((a, b) => a + b, 0);
}

function accountedFor(pairs: StressResult['pairs']): number {
  return pairs.established + pairs.failed + pairs.cancelled + pairs.notStarted;
}

afterEach(() => {
  expect(heldLinkLeftovers()).toEqual([]);
});

describe.skipIf(skip)('stress.ts --open', () => {
  it('crossed: every pair’s SYNs cross, by the kernel’s record (both sides pass SYN_RECEIVED)', async () => {
    const json = path.join(dir, 'crossed.json');
    const result = await run(['--open', 'crossed', '--pairs', '3000', '--trace', '--quiet', '--json', json]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^ {2}open {11}crossed \(both SYNs held on the veth link/m);
    expect(result.stdout).toMatch(/^ {2}open kinds {5}crossed 3,000$/m);
    const summary = JSON.parse(fs.readFileSync(json, 'utf8')) as StressResult;
    expect(summary.pairs).toMatchObject({ planned: 3000, established: 3000 });
    expect(summary.trace).toMatchObject({ source: 'kernel', lostEvents: 0 });
    expect(summary.open.mode).toBe('crossed');
    expect(summary.openKinds).toMatchObject({ crossed: 3000, 'one-sided': 0, 'not-simultaneous': 0 });
    expect(sum(summary.openKinds)).toBe(3000);
    expect(summary.attempts).toMatchObject({ max: 1 });
  });

  it('a skew sweep accounts for every pair at every point; with --early-syn rst the retries show', async () => {
    const json = path.join(dir, 'sweep-rst.json');
    const result = await run([
      ...['--sweep', 'skew=0..200ms:3', '--delay', '20ms', '--early-syn', 'rst'],
      ...['--pairs', '300', '--trace', '--quiet', '--json', json],
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/simopen stress sweep: done/);
    expect(result.stdout).toMatch(/skew ms +planned +established +success % +failed +crossed +one-sided/);
    const sweep = JSON.parse(fs.readFileSync(json, 'utf8')) as SweepResult;
    expect(sweep.rows.map((row) => row.skewMs)).toEqual([0, 100, 200]);
    for (const [index, point] of sweep.results.entries()) {
      expect(accountedFor(point.pairs)).toBe(300);
      expect(point.pairs.planned).toBe(300);
      // Every planned pair is classified, once.
      expect(sum(point.openKinds)).toBe(300);
      expect(point.open).toMatchObject({ mode: 'skew', earlySyn: 'rst', delayMs: 20 });
      expect(sweep.rows[index]).toMatchObject({ planned: 300, established: point.pairs.established });
    }
    const [none, , large] = sweep.results as StressResult[];
    // No skew: B's SYNs go with A's in the first delivery, they cross, nobody retries.
    expect(none?.openKinds?.crossed).toBe(300);
    expect(none?.attemptsBySide[0]?.max).toBe(1);
    // 200 ms: A's SYN meets no socket, its RST comes back, A connects again (refused tries counted).
    expect(large?.attemptsBySide[0]?.max).toBeGreaterThan(1);
    expect(large?.retryErrors.ECONNREFUSED).toBeGreaterThan(0);
    expect((large?.openKinds?.crossed ?? 0) + (large?.openKinds?.['one-sided'] ?? 0)).toBe(
      large?.pairs.established,
    );
  });

  it('skew at scale: no pair fails (no held packet is ever deleted with its neighbour entry)', async () => {
    const json = path.join(dir, 'skew-scale.json');
    const result = await run(['--open', 'skew:4ms', '--pairs', '20000', '--quiet', '--json', json]);
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(fs.readFileSync(json, 'utf8')) as StressResult;
    expect(summary.pairs).toMatchObject({ planned: 20_000, established: 20_000, failed: 0 });
    expect(summary.errors).toEqual({});
  });

  it('a skew sweep with the early SYN dropped: crossed at no skew, one-sided past the delivery interval', async () => {
    const json = path.join(dir, 'sweep-drop.json');
    const html = path.join(dir, 'sweep-drop.html');
    const result = await run([
      ...['--sweep', 'skew=0..200ms:2', '--delay', '20ms', '--pairs', '200', '--trace', '--quiet'],
      ...['--json', json, '--report', html],
    ]);
    expect(result.code, result.stderr).toBe(0);
    const sweep = JSON.parse(fs.readFileSync(json, 'utf8')) as SweepResult;
    const [none, large] = sweep.results as StressResult[];
    for (const point of sweep.results) {
      expect(accountedFor(point.pairs)).toBe(200);
      expect(sum(point.openKinds)).toBe(200);
      // Dropped, not refused: nobody connects twice.
      expect(point.attempts?.max).toBe(1);
    }
    expect(none?.openKinds?.crossed).toBe(200);
    // 200 ms: A's SYN went in the first delivery, B's in a later one, which found A in SYN_SENT.
    expect(large?.openKinds?.['one-sided']).toBe(200);
    // One report for the sweep (not the last point's): its plots by skew and the rows as in the JSON.
    const page = fs.readFileSync(html, 'utf8');
    expect(page).toContain('Stress sweep: 2 points, skew 0 to 200 ms');
    for (const id of ['plot-sweep-open', 'plot-sweep-establish', 'sweep-rows'])
      expect(page, id).toContain(`id="${id}"`);
    // The data block is JSON whose <, > and & are \u escapes, which JSON.parse reads as they are.
    const data = JSON.parse(
      /<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(page)?.[1] ?? '{}',
    ) as { result?: SweepResult };
    expect(data.result?.rows).toEqual(sweep.rows);
  });
});

describe.skipIf(skip)('stress.ts --hold', () => {
  it('holds every pair open at once and checks every keepalive', async () => {
    const json = path.join(dir, 'hold.json');
    const result = await run([
      ...['--open', 'crossed', '--pairs', '2000', '--hold', '2s', '--keepalive', '200ms'],
      ...['--quiet', '--json', json],
    ]);
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(fs.readFileSync(json, 'utf8')) as StressResult;
    expect(summary.pairs).toMatchObject({ planned: 2000, established: 2000 });
    expect(summary.hold).toMatchObject({ holdMs: 2000, keepaliveMs: 200, peakOpenPairs: 2000 });
    // Ten rounds in 2 s, both sides each: every one arrived intact.
    expect(summary.hold?.keepalivesVerified).toBe(2000 * 2 * 10);
    expect(summary.hold?.rssPerHeldPairBytes).toBeGreaterThan(0);
    expect(result.stdout).toMatch(
      /^ {2}hold {11}2 s each, keepalive every 0\.2 s: 2,000 pairs open at once/m,
    );
  });

  it('holds one-sided pairs too, all of them at once', async () => {
    const json = path.join(dir, 'hold-one-sided.json');
    const result = await run([
      '--pairs',
      '1000',
      '--hold',
      '1s',
      '--keepalive',
      '250ms',
      '--quiet',
      '--json',
      json,
    ]);
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(fs.readFileSync(json, 'utf8')) as StressResult;
    expect(summary.open.mode).toBe('one-sided');
    expect(summary.pairs).toMatchObject({ planned: 1000, established: 1000 });
    expect(summary.hold).toMatchObject({ peakOpenPairs: 1000, keepalivesVerified: 1000 * 2 * 4 });
  });

  it('SIGINT in the middle of a hold: partial report, every pair accounted for, exit 130', async () => {
    const json = path.join(dir, 'hold-stopped.json');
    const child = runScript(
      'stress',
      ['--open', 'crossed', '--pairs', '3000', '--hold', '60s', '--keepalive', '250ms', '--json', json],
      {},
      { stdin: 'ignore' },
    );
    // The status line counts the pairs held: stop once all of them are.
    await child.waitFor(/stress: .* 3,000 held/, 120_000);
    const code = await child.stop('SIGINT');
    expect(code, child.stderr()).toBe(130);
    expect(child.stdout()).toMatch(/INTERRUPTED, partial report/);
    const summary = JSON.parse(fs.readFileSync(json, 'utf8')) as StressResult;
    expect(summary.interrupted).toBe(true);
    expect(accountedFor(summary.pairs)).toBe(3000);
    expect(summary.pairs.cancelled).toBe(3000);
    expect(summary.hold?.peakOpenPairs).toBe(3000);
    expect(summary.hold?.keepalivesVerified).toBeGreaterThan(0);
    expect(summary.pairs.failed).toBe(0);
    expect(summary.errors.EKEEPALIVE).toBeUndefined();
  });

  it('refuses a hold past what the processes asked for can open, before the run starts', async () => {
    const limit = openFilesLimit() ?? 20_000;
    const pairs = pairsPerProcess(limit) + 1;
    const result = await run(['--pairs', String(pairs), '--hold', '1s', '--processes', '1']);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain(
      `--hold: ${pairs.toLocaleString('en-US')} pairs open at once need ${(2 * pairs).toLocaleString('en-US')} descriptors`,
    );
    expect(result.stderr).toMatch(/RLIMIT_NOFILE.*--processes 1 .*raise --processes/);
    expect(result.stdout).toBe('');
  });
});
