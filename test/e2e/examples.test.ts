/**
 * The examples/ scripts, run as a user runs them (the tsx CLI, real processes, namespaces and kernel),
 * with assertions on their output: they use only the public API (simopen/...), so they also prove
 * that it works as docs/api.md says.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ChildRun, runChild, startChild } from '../../lib/core/childProcess.ts';
import { probeSandbox } from '../../lib/core/sandbox.ts';
import { namespacesOfLab, probeLab } from '../../lib/lab/buildLab.ts';
import { probeTracefs, TRACEFS } from '../../lib/trace/kernelTracepoint.ts';
import { processesOfThisRun } from '../helpers/runProcesses.ts';
import { repoRoot } from '../helpers/runScript.ts';

const EXAMPLES = join(repoRoot, 'examples');
const TSX = join(repoRoot, 'node_modules/.bin/tsx');

/** As a user runs them: the tsx CLI from the repository. */
function runExample(name: string, args: string[] = []): Promise<ChildRun> {
  return runChild(TSX, [join('examples', name), ...args], { cwd: repoRoot });
}

/** The pids of a process's children (its main thread's). */
function childrenOf(pid: number | undefined): string[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

const sandbox = probeSandbox();
const needsSandbox = sandbox.ok || process.env.CI ? it : it.skip;
if (!sandbox.ok && !process.env.CI) console.warn(`skipping the stress example: ${sandbox.reason}`);
const lab = probeLab();
const tracefs = probeTracefs();
const isRoot = process.getuid?.() === 0;
const needsRootLabAndTrace = (isRoot && lab.ok && tracefs.ok) || process.env.CI ? it : it.skip;
if (!(isRoot && lab.ok && tracefs.ok) && !process.env.CI)
  console.warn(
    `skipping the NAT punch example: ${!isRoot ? 'not root' : !lab.ok ? lab.reason : tracefs.reason}`,
  );

const TESTED = ['custom-stress.ts', 'dial-two-processes.ts', 'punch-through-nat.ts'];

describe('examples/', () => {
  it('are all run below, and import nothing but simopen/... and node: modules', () => {
    const files = readdirSync(EXAMPLES).filter((name) => name.endsWith('.ts'));
    expect(files.sort()).toEqual(TESTED);
    for (const file of files) {
      const source = readFileSync(join(EXAMPLES, file), 'utf8');
      const specifiers = [...source.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map((match) => match[1]);
      expect(specifiers.length).toBeGreaterThan(0);
      for (const specifier of specifiers)
        expect(specifier, file).toMatch(/^(simopen\/[a-z]+|node:[a-z_/]+)$/);
    }
  });

  it('dial-two-processes.ts: two processes open one connection by simultaneous open, lines both ways', async () => {
    const run = await runExample('dial-two-processes.ts');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const first =
      /^first: 127\.0\.0\.1:(\d+) <-> 127\.0\.0\.1:(\d+) after \d+ connect attempts \([\d.]+ ms\), received: hello from the second process$/m.exec(
        run.stdout,
      );
    const second =
      /^second: 127\.0\.0\.1:(\d+) <-> 127\.0\.0\.1:(\d+) after \d+ connect attempts \([\d.]+ ms\), received: hello from the first process$/m.exec(
        run.stdout,
      );
    expect(first, run.stdout).not.toBeNull();
    expect(second, run.stdout).not.toBeNull();
    // One connection: each side's local port is the other's remote port.
    expect([second?.[1], second?.[2]]).toEqual([first?.[2], first?.[1]]);
  });

  needsSandbox(
    'custom-stress.ts: re-executes itself in the sandbox, runs its scenario, passes its own check',
    async () => {
      const run = await runExample('custom-stress.ts', ['1000']);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^ {2}mode +sandbox \(default; private network namespace/m);
      expect(run.stdout).toMatch(/^ {2}per pair +16,384 bytes each way, close reset/m);
      expect(run.stdout).toMatch(/planned 1,000 {2}established 1,000 \(100\.00%\)/);
      expect(run.stdout).toMatch(/^ {2}bytes verified 32,768,000$/m);
      expect(run.stdout).toMatch(/^check: ok: 1000 pairs, 32768 bytes verified each, all closed by RST$/m);
      // The report is printed once: by the copy in the sandbox, not by the calling process too.
      expect(run.stdout.match(/simopen stress: done/g)).toHaveLength(1);
    },
  );

  needsRootLabAndTrace(
    'punch-through-nat.ts: punches through two NATs and prints the kernel path of each side',
    async () => {
      // The example's own process (tsx's child) names its lab (PIDl1) and its trace instances
      // (simopen-PID-N): what it leaves is told apart from another run's on the machine by that pid.
      const child = startChild(TSX, [join('examples', 'punch-through-nat.ts')], {
        cwd: repoRoot,
        stdin: 'ignore',
      });
      let examplePid: string | undefined;
      const findPid = setInterval(() => {
        examplePid ??= childrenOf(child.pid)[0];
      }, 20);
      const code = await child.exited;
      clearInterval(findPid);
      const run = { code, stdout: child.stdout(), stderr: child.stderr() };
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^alice: direct to bob at 203\.0\.113\.2:\d+, received: hello from bob$/m);
      expect(run.stdout).toMatch(/^bob: direct to alice at 203\.0\.113\.1:\d+, received: hello from alice$/m);
      expect(run.stdout).toMatch(/^source: kernel tracepoint/m);
      const path = (side: string, local: string, remote: string) =>
        new RegExp(
          `^${side} +${local}:(\\d+) > ${remote}:\\1  CLOSED → SYN_SENT \\+\\d+µs → .*ESTABLISHED \\+\\d+µs → `,
          'm',
        );
      expect(run.stdout).toMatch(path('alice', '10\\.0\\.1\\.2', '203\\.0\\.113\\.2'));
      expect(run.stdout).toMatch(path('bob', '10\\.0\\.2\\.2', '203\\.0\\.113\\.1'));
      expect(run.stdout).toMatch(/^open: (one-sided|crossed); close: alice \w+, bob \w+$/m);
      // Nothing of the run is left: its namespaces, its trace instance, its processes.
      expect(examplePid).toBeDefined();
      expect(namespacesOfLab(`${examplePid}l1`)).toEqual([]);
      expect(
        readdirSync(join(TRACEFS, 'instances')).filter((name) => name.startsWith(`simopen-${examplePid}-`)),
      ).toEqual([]);
      expect(processesOfThisRun().filter((args) => args.includes('examples/punch-through-nat.ts'))).toEqual(
        [],
      );
    },
  );
});
