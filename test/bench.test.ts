/**
 * Smoke test of the benchmark's parts (not of its speed: no timing assertions): the C reference
 * builds and completes simultaneous opens in a sandbox, the Node baseline completes its pairs, the
 * verdicts judge the numbers they are given, and bad flags are refused.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { flatRateVerdict, flatRssVerdict, shareOfCVerdict } from '../bench/benchReport.ts';
import { probeSandbox } from '../lib/core/sandbox.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'simopen-bench-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function runBench(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 110_000,
  });
}

const hasCc = !spawnSync('cc', ['--version']).error;
const sandbox = probeSandbox();
// Under CI the facilities must be there (CI installs gcc and nftables): run, and fail if they are not.
const missing = process.env.CI ? undefined : !hasCc ? 'no cc' : !sandbox.ok ? sandbox.reason : undefined;
if (missing) console.warn(`bench.test: skipping the sandbox run: ${missing}`);

describe('npm run bench', () => {
  it.skipIf(missing !== undefined)(
    'builds the C reference and completes a few pairs of it and of the baseline in a sandbox',
    () => {
      const jsonFile = join(tmp, 'bench.json');
      const run = runBench([
        '--only',
        'c,baseline',
        '--repeat',
        '1',
        '--pairs',
        '200',
        '--payload',
        '100',
        '--json',
        jsonFile,
      ]);
      expect(run.stdout).not.toMatch(/NOT MEASURED|could not measure/);
      expect(run.status).toBe(0);
      const summary = JSON.parse(readFileSync(jsonFile, 'utf8'));
      expect(summary.c.median).toMatchObject({
        pairs: 200,
        completed: 200,
        failed: 0,
        bytesVerified: 200 * 2 * 100,
      });
      expect(summary.c.median.pairsPerSec).toBeGreaterThan(0);
      expect(summary.baseline.median).toMatchObject({
        pairs: 200,
        completed: 200,
        failed: 0,
        bytesVerified: 200 * 2 * 100,
      });
      expect(summary.stress).toEqual({ skipped: 'not selected (--only)' });
      expect(run.stdout).toMatch(/C reference \(\d+ threads, epoll\)\s+200 pairs\s+[\d,]+ pairs\/s/);
      expect(run.stdout).toMatch(/baseline\/C\s+\d+\.\d\d/);
    },
  );

  it.each([
    [['--close', 'sometimes'], /--close: 'sometimes' is not one of graceful, reset, simultaneous/],
    [['--only', 'rust'], /--only: 'rust' is not one of c, baseline, stress/],
    [['--pairs', 'many'], /--pairs: 'many' is not a whole number/],
    [['--repeat', '0'], /--repeat: 0 is out of range 1..20/],
    [['--json', '/nonexistent-dir/bench.json'], /--json: cannot write/],
    [['--frobnicate'], /Unknown option '--frobnicate'/],
  ])('refuses %j with one line naming the problem and exit 2', (args, message) => {
    const run = runBench(args);
    expect(run.status).toBe(2);
    expect(run.stderr.split('\n')[0]).toMatch(message);
  });
});

describe('bench verdicts', () => {
  it('judge the share of the C figure against 0.5', () => {
    expect(shareOfCVerdict(30_000, 50_000).pass).toBe(true);
    const miss = shareOfCVerdict(15_000, 50_000);
    expect(miss.pass).toBe(false);
    expect(miss.detail).toMatch(/^0\.30x/);
  });

  it('call a rate flat within 15% of the fastest, and name the numbers', () => {
    const flat = flatRateVerdict([
      { pairs: 10_000, pairsPerSec: 10_000, peakRssBytes: 1 },
      { pairs: 1_000_000, pairsPerSec: 8_600, peakRssBytes: 1 },
    ]);
    expect(flat.pass).toBe(true);
    expect(flat.detail).toContain('14.0% below fastest');
    expect(
      flatRateVerdict([
        { pairs: 10_000, pairsPerSec: 10_000, peakRssBytes: 1 },
        { pairs: 1_000_000, pairsPerSec: 8_400, peakRssBytes: 1 },
      ]).pass,
    ).toBe(false);
  });

  it('fail a peak RSS that grows with the pair count, or that was not measured', () => {
    const mb = 1024 * 1024;
    const point = (pairs: number, rss: number) => ({ pairs, pairsPerSec: 1, peakRssBytes: rss });
    expect(flatRssVerdict([point(10_000, 100 * mb), point(1_000_000, 110 * mb)]).pass).toBe(true);
    const grew = flatRssVerdict([point(1_000_000, 300 * mb), point(10_000, 100 * mb)]);
    expect(grew.pass).toBe(false);
    expect(grew.detail).toContain('+200.0% from 10k to 1M');
    expect(flatRssVerdict([point(10_000, 0), point(1_000_000, 100 * mb)]).detail).toBe(
      'peak RSS not measured',
    );
  });
});
