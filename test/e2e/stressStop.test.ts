/**
 * Stopping stress.ts: after a signal a huge run ends at once and costs no record per pair that never
 * started (one range record; planned = established + failed + cancelled + notStarted everywhere); a
 * second signal quits at once, also inside the sandbox; the warm-up honours signals; a sandbox child
 * killed from outside is named, not a silent 137.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { probeSandbox } from '../../lib/core/sandbox.ts';
import type { NotStartedRecord, PairLogRecord, StressResult } from '../../lib/stress/types.ts';
import { runScript } from '../helpers/runScript.ts';
import { childPids, runStressOnSmallDisk } from '../helpers/stressOnSmallDisk.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simopen-stress-stop-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const sandbox = probeSandbox();
const needsSandbox = sandbox.ok || process.env.CI ? it : it.skip;
if (!sandbox.ok && !process.env.CI) console.warn(`skipping sandbox tests: ${sandbox.reason}`);

/** Processes whose command line names this path (each run here passes a unique temp path). */
function processesMentioning(text: string): string[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out.split('\n').filter((line) => line.includes(text) && !line.includes('vitest'));
}

describe('stress.ts stopped by a signal', () => {
  needsSandbox(
    'a billion planned pairs: SIGINT ends the run, one not-started record, the invariant holds',
    async () => {
      const disk = fs.mkdtempSync(path.join(dir, 'disk-'));
      const out = fs.mkdtempSync(path.join(dir, 'out-'));
      const json = path.join(out, 'summary.json');
      const log = path.join(disk, 'pairs.ndjson');
      // 64 MiB of disk: a record per planned pair (about 230 GB) would fill it within a second.
      const run = runStressOnSmallDisk('64m', disk, out, [
        ...['--pairs', '1000000000', '--quiet', '--log', log, '--json', json],
      ]);
      const pid = await run.scriptPid();
      // Interrupt once pairs have been logged (the log is visible through the shell's mount namespace).
      const seen = `/proc/${run.process.pid}/root${log}`;
      await expect
        .poll(() => (fs.existsSync(seen) ? fs.statSync(seen).size : 0), { timeout: 60_000, interval: 50 })
        .toBeGreaterThan(0);
      process.kill(pid, 'SIGINT');
      const code = await run.exited;
      expect(code, run.stderr()).toBe(130);
      expect(run.stdout()).toMatch(/INTERRUPTED, partial report/);
      expect(run.stdout()).toMatch(/pairs +planned 1,000,000,000 .* not started [\d,]+\n/);
      const summary = JSON.parse(fs.readFileSync(json, 'utf8')) as StressResult;
      const { planned, established, failed, cancelled, notStarted } = summary.pairs;
      expect(planned).toBe(1_000_000_000);
      expect(established + failed + cancelled + notStarted).toBe(planned);
      expect(summary.outputErrors).toBeUndefined();
      const text = fs.readFileSync(path.join(out, 'pairs.ndjson'), 'utf8');
      expect(text.endsWith('\n')).toBe(true);
      const lines = text
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line));
      const last = lines.pop() as NotStartedRecord;
      expect(last).toEqual({ outcome: 'notStarted', count: notStarted, ids: summary.notStartedIds });
      // One record per pair that started, and together with the ranges exactly the planned ids.
      const records = lines as PairLogRecord[];
      expect(records).toHaveLength(established + failed + cancelled);
      const started = new Set(records.map((record) => record.id));
      expect(started.size).toBe(records.length);
      const inRanges = (id: number) => last.ids.some(([first, end]) => first <= id && id <= end);
      expect(records.filter((record) => inRanges(record.id))).toEqual([]);
      expect(last.ids[last.ids.length - 1]?.[1]).toBe(planned - 1);
      expect(processesMentioning(log)).toEqual([]);
    },
  );

  needsSandbox('a second signal quits at once, without a report, also inside the sandbox', async () => {
    const json = path.join(dir, 'quit.json');
    const run = runScript('stress', ['--pairs', '1000000000', '--json', json]);
    // The run is under way once its first status line or warm-up line is out.
    await run.waitFor(/stress: warm-up/);
    // Two signals sent together may be handled in either order (any thread of a process may take one).
    run.process.kill('SIGINT');
    run.process.kill('SIGTERM');
    const code = await run.exited;
    expect(code).toBe(130);
    expect(run.stderr()).toMatch(/stress: SIG(INT|TERM): stopping/);
    expect(run.stderr()).toMatch(/stress: SIG(INT|TERM) again: quitting at once, without a report/);
    expect(run.stdout()).not.toMatch(/simopen stress/);
    expect(processesMentioning(json)).toEqual([]);
  });

  needsSandbox(
    'the warm-up honours SIGINT and shows itself: partial report, every pair not started',
    async () => {
      const json = path.join(dir, 'warmup.json');
      // 16 MiB each way: a warm-up of 5,000 such pairs per worker would take minutes.
      const run = runScript('stress', ['--pairs', '10', '--payload', '16MiB', '--json', json]);
      await run.waitFor(/stress: warm-up: [\d,]+ throwaway pairs/);
      run.process.kill('SIGINT');
      expect(await run.exited).toBe(130);
      expect(run.stdout()).toMatch(/INTERRUPTED, partial report/);
      const summary = JSON.parse(fs.readFileSync(json, 'utf8')) as StressResult;
      expect(summary.interrupted).toBe(true);
      expect(summary.pairs).toEqual({ planned: 10, established: 0, failed: 0, cancelled: 0, notStarted: 10 });
      expect(summary.notStartedIds).toEqual([[0, 9]]);
      expect(processesMentioning(json)).toEqual([]);
    },
  );

  needsSandbox('a sandbox child killed from outside (SIGKILL) is named on stderr, exit 137', async () => {
    const json = path.join(dir, 'killed.json');
    const run = runScript('stress', ['--pairs', '1000000000', '--quiet', '--json', json]);
    let child: number | undefined;
    await expect
      .poll(
        () => {
          // The sandboxed copy of stress.ts (its other children, such as a probe, come and go).
          child = childPids(run.process.pid as number, json)[0];
          return child !== undefined && processesMentioning(json).length >= 2;
        },
        { timeout: 30_000, interval: 50 },
      )
      .toBe(true);
    process.kill(child as number, 'SIGKILL');
    expect(await run.exited).toBe(137);
    expect(run.stderr()).toMatch(
      /^stress: the run inside the sandbox \(pid \d+\) was killed by SIGKILL: no report/m,
    );
    expect(processesMentioning(json)).toEqual([]);
  });
});
