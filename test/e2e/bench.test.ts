/**
 * Smoke test of the benchmark (not of its speed: no timing assertions): the C reference builds and
 * completes simultaneous opens in a sandbox, the Node baseline completes its pairs, and bad flags are
 * refused. The verdicts are unit/benchReport.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startScript } from '../../lib/core/childProcess.ts';
import { probeSandbox } from '../../lib/core/sandbox.ts';

const tmp = mkdtempSync(join(tmpdir(), 'simopen-bench-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function runBench(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const child = startScript('bench/run.ts', args, { stdin: 'ignore' });
  const status = await child.exited;
  return { status, stdout: child.stdout(), stderr: child.stderr() };
}

const hasCc = !spawnSync('cc', ['--version']).error;
const sandbox = probeSandbox();
// Under CI the facilities must be there (CI installs gcc and nftables): run, and fail if they are not.
const missing = process.env.CI ? undefined : !hasCc ? 'no cc' : !sandbox.ok ? sandbox.reason : undefined;
if (missing) console.warn(`bench.test: skipping the sandbox run: ${missing}`);

describe('npm run bench', () => {
  it.skipIf(missing !== undefined)(
    'builds the C reference and completes a few pairs of it and of the baseline in a sandbox',
    async () => {
      const jsonFile = join(tmp, 'bench.json');
      const run = await runBench([
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
    [['--only', 'rust'], /--only: 'rust' is not one of c, baseline, stress, open, hold/],
    [['--pairs', 'many'], /--pairs: 'many' is not a whole number/],
    [['--repeat', '0'], /--repeat: 0 is out of range 1..20/],
    [['--json', '/nonexistent-dir/bench.json'], /--json: cannot write/],
    [['--frobnicate'], /Unknown option '--frobnicate'/],
  ])('refuses %j with one line naming the problem and exit 2', async (args, message) => {
    const run = await runBench(args);
    expect(run.status).toBe(2);
    expect(run.stderr.split('\n')[0]).toMatch(message);
  });
});
