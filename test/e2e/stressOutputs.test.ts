/**
 * stress.ts output files (--json, --log): checked before the first pair (exit 2 with the reason),
 * written through, never renamed over or replaced; a disk that fills mid-run ends the run cleanly
 * (report printed, the failed output named, exit 1); whatever fails at the end, the report comes first.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { runChild } from '../../lib/core/childProcess.ts';
import { probeSandbox } from '../../lib/core/sandbox.ts';
import type { PairLogRecord, StressResult } from '../../lib/stress/types.ts';
import { repoRoot, runScript } from '../helpers/runScript.ts';
import { runStressOnSmallDisk } from '../helpers/stressOnSmallDisk.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simopen-stress-outputs-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const sandbox = probeSandbox();
const needsSandbox = sandbox.ok || process.env.CI ? it : it.skip;
if (!sandbox.ok && !process.env.CI) console.warn(`skipping sandbox tests: ${sandbox.reason}`);

async function stress(args: string[]) {
  const run = runScript('stress', args);
  const code = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

function lines(file: string): unknown[] {
  const text = fs.readFileSync(file, 'utf8');
  if (text.length) expect(text.endsWith('\n')).toBe(true); // no torn last line
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line));
}

describe('stress.ts checks every output before the first pair', () => {
  it('refuses what it cannot write: exit 2, one line with the reason, no report', async () => {
    const cases: [string[], RegExp][] = [
      [['--json', '/proc/simopen-x'], /^stress: --json: \/proc\/simopen-x cannot be written: ENOENT/],
      [['--json', '/dev/full'], /^stress: --json: \/dev\/full cannot be written: ENOSPC/],
      [['--log', '/dev/full'], /^stress: --log: \/dev\/full cannot be written: ENOSPC/],
      [['--json', dir], /^stress: --json: .* is a directory$/],
    ];
    for (const [args, message] of cases) {
      const result = await stress(['--pairs', '100', '--quiet', ...args]);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr.split('\n')[0]).toMatch(message);
      expect(result.stdout).toBe('');
    }
  });

  it('refuses, as an ordinary user, a file it may not write (EACCES)', async () => {
    // Others may look, not write: the run's own check must name the permission, not a missing directory.
    const closed = fs.mkdtempSync(path.join(os.tmpdir(), 'simopen-stress-closed-'));
    fs.chmodSync(closed, 0o755);
    onTestFinished(() => fs.rmSync(closed, { recursive: true, force: true }));
    const target = path.join(closed, 'summary.json');
    const result = await runChild(
      'setpriv',
      [
        ...['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--'],
        ...[process.execPath, '--import', 'tsx', 'scripts/stress.ts', '--pairs', '10', '--json', target],
      ],
      { cwd: repoRoot, env: { ...process.env, HOME: '/nonexistent' } },
    );
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr.split('\n')[0]).toBe(
      `stress: --json: ${target} cannot be written: EACCES: permission denied`,
    );
    expect(result.stdout).toBe('');
    expect(fs.existsSync(target)).toBe(false);
  });

  it('refuses --json and --log naming one file through a link', async () => {
    const json = path.join(dir, 'same.json');
    const link = path.join(dir, 'same-link.ndjson');
    fs.writeFileSync(json, 'kept');
    fs.symlinkSync(json, link);
    const result = await stress(['--pairs', '10', '--quiet', '--json', json, '--log', link]);
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n')[0]).toBe(`stress: --json ${json} and --log ${link} are the same file`);
    expect(fs.readFileSync(json, 'utf8')).toBe('kept');
  });
});

describe('stress.ts --trace --log never replaces the path it was given', () => {
  it('refuses a character device (it cannot be read back), which stays a device', async () => {
    const device = path.join(dir, 'null-device');
    execFileSync('mknod', [device, 'c', '1', '3']);
    const result = await stress(['--pairs', '10', '--quiet', '--trace', '--log', device]);
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n')[0]).toMatch(
      /^stress: --log: .*null-device is a character device, not a regular file: --trace reads the log back/,
    );
    expect(fs.statSync(device).isCharacterDevice()).toBe(true);
  });

  needsSandbox('annotates the file behind a symlink in place: the link and the inode stay', async () => {
    const target = path.join(dir, 'traced.ndjson');
    const link = path.join(dir, 'traced-link.ndjson');
    fs.writeFileSync(target, 'old contents\n');
    fs.symlinkSync(target, link);
    const inode = fs.statSync(target).ino;
    const result = await stress(['--pairs', '200', '--quiet', '--trace', '--log', link]);
    expect(result.code, result.stderr).toBe(0);
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.statSync(target).ino).toBe(inode);
    const records = lines(target) as (PairLogRecord & { openKind: string | null })[];
    expect(records).toHaveLength(200);
    expect(records.every((record) => typeof record.openKind === 'string')).toBe(true);
    expect(fs.readdirSync(dir).filter((name) => name.includes('traced'))).toHaveLength(2);
  });
});

describe('stress.ts when an output fails during or after the run', () => {
  needsSandbox(
    'a disk that fills mid-run: no new pairs, report, the failed output named, exit 1',
    async () => {
      const disk = fs.mkdtempSync(path.join(dir, 'disk-'));
      const out = fs.mkdtempSync(path.join(dir, 'out-'));
      const json = path.join(out, 'summary.json');
      const run = runStressOnSmallDisk('256k', disk, out, [
        ...['--pairs', '1M', '--quiet', '--min-success', '0'],
        ...['--log', path.join(disk, 'pairs.ndjson'), '--json', json],
      ]);
      const code = await run.exited;
      expect(code, run.stderr()).toBe(1);
      expect(run.stdout()).toMatch(/^simopen stress: done/);
      expect(run.stdout()).toMatch(
        /output failed +--log .*pairs\.ndjson: ENOSPC: no space left on device \(/,
      );
      expect(run.stderr()).toMatch(
        /--log .*pairs\.ndjson: ENOSPC: no space left on device; starting no more pairs/,
      );
      // Not a worker crash, and no stack trace.
      expect(run.stderr()).not.toMatch(/worker died|EWORKERCRASH|\n\s+at /);
      const summary = JSON.parse(fs.readFileSync(json, 'utf8')) as StressResult;
      const { planned, established, failed, cancelled, notStarted } = summary.pairs;
      expect(planned).toBe(1_000_000);
      expect(established + failed + cancelled + notStarted).toBe(planned);
      expect(notStarted).toBeGreaterThan(0);
      expect(summary.interrupted).toBe(false);
      expect(summary.workerCrashes).toBe(0);
      const [failure] = summary.outputErrors ?? [];
      expect(failure).toMatchObject({ option: '--log', error: 'ENOSPC: no space left on device' });
      // Whole lines only, and every started pair either in the log or counted as missing from it.
      const records = lines(path.join(out, 'pairs.ndjson')) as PairLogRecord[];
      expect(records.length + (failure?.unlogged ?? 0)).toBe(established + failed + cancelled);
    },
  );

  it('an output that fails at the end: the report is printed first, the output named, exit 1', async () => {
    const json = path.join(dir, 'too-big.json');
    // A file size limit below the summary's size: the JSON write at the end fails (EFBIG).
    const { code, stdout, stderr } = await runChild(
      'prlimit',
      ['--fsize=600', '--', process.execPath, '--import', 'tsx', 'scripts/stress.ts'].concat([
        ...['--mode', 'race', '--pairs', '4', '--min-success', '0', '--quiet', '--json', json],
      ]),
      { cwd: repoRoot },
    );
    expect(code, stderr).toBe(1);
    expect(stdout).toMatch(/^simopen stress: done\n/);
    expect(stdout).toMatch(/pairs +planned 4 /);
    expect(stderr).toMatch(/stress: --json .*too-big\.json: EFBIG: file too large/);
    // No half a JSON document that would pass for a summary.
    expect(fs.readFileSync(json, 'utf8')).toBe('');
  });
});
