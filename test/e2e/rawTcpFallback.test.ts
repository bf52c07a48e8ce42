/**
 * stress.ts in the sandbox runs the bare TCP handles' self-test once before its pool starts: when it
 * passes the run uses the handles; when it fails (forced by the test hook) the run falls back to
 * net.Socket, says why on stderr, in the report's sockets line and in the JSON, and still completes.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RAW_TCP_CORRUPT_ENV } from '../../lib/core/rawTcpSelfTest.ts';
import { probeSandbox } from '../../lib/core/sandbox.ts';
import type { StressResult } from '../../lib/stress/types.ts';
import { runScript } from '../helpers/runScript.ts';

const dir = mkdtempSync(join(tmpdir(), 'simopen-raw-fallback-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sandbox = probeSandbox();
const needsSandbox = sandbox.ok || process.env.CI ? it : it.skip;
if (!sandbox.ok && !process.env.CI) console.warn(`skipping the sandbox self-test tests: ${sandbox.reason}`);

const REASON =
  'bare TCP handles failed their self-test: the other end received other bytes than the bare socket wrote';

async function stress(name: string, extraArgs: string[], env: Record<string, string> = {}) {
  const json = join(dir, `${name}.json`);
  const run = runScript('stress', ['--pairs', '500', '--quiet', '--json', json, ...extraArgs], env);
  const code = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr(), summary: () => readJson(json) };
}

function readJson(path: string): StressResult {
  return JSON.parse(readFileSync(path, 'utf8')) as StressResult;
}

describe('stress.ts: the bare handles self-test', () => {
  needsSandbox('passes in the sandbox child: the run uses the bare handles and gives no reason', async () => {
    const run = await stress('passes', []);
    expect(run.code).toBe(0);
    expect(run.stderr).not.toMatch(/self-test|using net\.Socket/);
    expect(run.stdout).toMatch(/workers +\d+, .*bare TCP handles/);
    const summary = run.summary();
    expect(summary.mode).toBe('sandbox');
    expect(summary.sockets).toBe('handle');
    expect(summary).not.toHaveProperty('socketsReason');
    expect(summary.pairs).toEqual({ planned: 500, established: 500, failed: 0, cancelled: 0, notStarted: 0 });
  });

  needsSandbox(
    `forced to fail (${RAW_TCP_CORRUPT_ENV}): net.Socket, the reason everywhere, every pair established`,
    async () => {
      const run = await stress('forced', ['--payload', '4KiB'], { [RAW_TCP_CORRUPT_ENV]: '1' });
      expect(run.code).toBe(0);
      // Once, in the sandbox child, before the pool starts.
      expect(run.stderr).toBe(`stress: ${REASON}; using net.Socket\n`);
      expect(run.stdout).toContain(`net.Socket (${REASON})`);
      const summary = run.summary();
      expect(summary.mode).toBe('sandbox');
      expect(summary.sockets).toBe('net');
      expect(summary.socketsReason).toBe(REASON);
      expect(summary.pairs).toEqual({
        planned: 500,
        established: 500,
        failed: 0,
        cancelled: 0,
        notStarted: 0,
      });
      expect(summary.bytesVerified).toBe(500 * 2 * 4096);
      expect(summary.workerCrashes).toBe(0);
    },
  );

  needsSandbox('--sockets net asks for no self-test and gives no reason', async () => {
    const run = await stress('net', ['--sockets', 'net'], { [RAW_TCP_CORRUPT_ENV]: '1' });
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    const summary = run.summary();
    expect(summary.sockets).toBe('net');
    expect(summary).not.toHaveProperty('socketsReason');
    expect(summary.pairs.established).toBe(500);
  });
});
