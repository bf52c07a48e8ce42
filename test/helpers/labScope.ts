/**
 * What a lab test run owns, and the check that none of it is left: its own lab state directory (so
 * `lab.ts down` and `status` in this run see only this run's labs), the labs it made (ids are pids of
 * this run's processes), and the processes it started. Another run's labs on the machine are theirs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect } from 'vitest';
import type { Child } from '../../lib/core/childProcess.ts';
import { namespacesOfLab, probeLab, removeNamespaces } from '../../lib/lab/buildLab.ts';
import { STATE_DIR_ENV } from '../../lib/lab/labState.ts';
import { processesOfThisRun } from './runProcesses.ts';
import { runScript } from './runScript.ts';

export const LAB_STATE_DIR = join(tmpdir(), `simopen-lab-test-${process.pid}`);
// Before any lab is made: every lab.ts this run starts inherits it.
process.env[STATE_DIR_ENV] = LAB_STATE_DIR;

const labIds = new Set<string>();

/** Records a lab id (or the pid of a lab.ts process: its lab's id) as this run's; returns it. */
export function ownLab(id: string | number | undefined): string {
  if (id === undefined) throw new Error('no lab id (the process did not start)');
  labIds.add(String(id));
  return String(id);
}

/** Namespaces of this run's labs that still exist. */
export function namespacesOfThisRun(): string[] {
  return [...labIds].flatMap((id) => namespacesOfLab(id));
}

/** pids of the processes inside a lab's namespaces. */
export function processesInLab(id: string): string[] {
  return namespacesOfLab(id).flatMap((namespace) =>
    spawnSync('ip', ['netns', 'pids', namespace], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean),
  );
}

/** Nothing of this run's labs remains: namespaces, state, host-side links, nft tables, processes. */
export function expectNothingLeft(): void {
  expect(namespacesOfThisRun()).toEqual([]);
  expect(existsSync(LAB_STATE_DIR)).toBe(false);
  // No lab ever puts a link or a table into the host's own namespace, whoever made it.
  const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout;
  const names = links.split('\n').map((line) => line.split(':')[1]?.trim().split('@')[0]);
  for (const name of ['wan', 'lan', 'rv', 'r0', 'r1']) expect(names).not.toContain(name);
  expect(spawnSync('nft', ['list', 'tables'], { encoding: 'utf8' }).stdout).not.toMatch(/simopen_lab/);
  expect(
    processesOfThisRun().filter((args) =>
      /scripts\/lab\.ts agent|rendezvous\.ts --listen 203\.0\.113/.test(args),
    ),
  ).toEqual([]);
}

/**
 * The leftover check, then (whatever it found) removal of anything of this run's that is still
 * there, so a failing test leaves the machine clean too.
 */
export function expectNothingLeftThenClean(): void {
  try {
    expectNothingLeft();
  } finally {
    removeNamespaces(namespacesOfThisRun());
    rmSync(LAB_STATE_DIR, { recursive: true, force: true });
  }
}

/**
 * Whether root lab tests must be skipped here (root, the lab's tools, and conntrack when `conntrack`
 * says so): said on stderr with the reason. Never under CI, where a missing facility fails the tests.
 */
export function skipLabTests(label: string, options: { conntrack?: boolean } = {}): boolean {
  const facility = probeLab();
  const isRoot = process.getuid?.() === 0;
  const hasConntrack = !options.conntrack || !spawnSync('conntrack', ['--version']).error;
  const skip = !(facility.ok && isRoot && hasConntrack) && !process.env.CI;
  if (skip)
    process.stderr.write(
      `${label} skipped: ${!isRoot ? 'not root' : !facility.ok ? facility.reason : 'conntrack missing'}\n`,
    );
  return skip;
}

/**
 * Scripts that make labs, started for this run: each one's pid is its lab's id, owned by this run.
 * Called at a test file's top level, it registers the file's afterEach: whatever a failed test left
 * running is killed, then nothing of this run's may be left (and is removed if it is).
 */
export function labRuns(script: 'lab' | 'stress') {
  const started: Child[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((child) => child.stop('SIGKILL')));
    expectNothingLeftThenClean();
  });
  return {
    start(args: string[], env: Record<string, string> = {}, options: { cwd?: string } = {}): Child {
      const child = runScript(script, args, env, options);
      started.push(child);
      ownLab(child.pid);
      return child;
    },
    /** Another child of the test's, stopped with the others. */
    track(child: Child): Child {
      started.push(child);
      return child;
    },
  };
}
