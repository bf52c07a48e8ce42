/**
 * The lab for an ordinary user (user+network+mount namespace), for real: as an ordinary user we run
 * lab.ts directly; as root we run it as user nobody. Each run keeps its labs in a state directory of
 * its own, so `lab.ts down` here ends only this run's labs.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Child, scriptCommand, startChild } from '../../lib/core/childProcess.ts';
import { probeLab } from '../../lib/lab/buildLab.ts';
import { STATE_DIR_ENV } from '../../lib/lab/labState.ts';
import { processesOfThisRun } from '../helpers/runProcesses.ts';

const facility = probeLab();
const isRoot = process.getuid?.() === 0;
const unprivilegedPrefix: string[] | undefined = !isRoot
  ? []
  : spawnSync('runuser', ['-u', 'nobody', '--', 'true']).status === 0
    ? ['runuser', '-u', 'nobody', '--', 'env', 'HOME=/tmp']
    : undefined;
const unprivilegedProbe = isRoot
  ? { ok: unprivilegedPrefix !== undefined, reason: 'runuser cannot run commands as nobody' }
  : facility;
const skipUnprivileged = !unprivilegedProbe.ok && !process.env.CI;
if (skipUnprivileged) process.stderr.write(`unprivileged lab tests skipped: ${unprivilegedProbe.reason}\n`);

// Made by the user that runs lab.ts (nobody, as root), so not the directory of the root tests.
const stateDirectory = join(tmpdir(), `simopen-lab-test-${process.pid}-unprivileged`);
const started: Child[] = [];

function labUnprivileged(args: string[]): { output: () => string; exited: Promise<number>; pid?: number } {
  const [command, ...rest] = [...(unprivilegedPrefix ?? []), ...scriptCommand('scripts/lab.ts', args, true)];
  const child = startChild(command as string, rest, {
    cwd: process.cwd(),
    env: { ...process.env, [STATE_DIR_ENV]: stateDirectory },
    stdin: 'ignore',
    // Ends with this test process, should a failed test leave it running.
    tied: true,
  });
  started.push(child);
  return { output: () => child.stdout() + child.stderr(), exited: child.exited, pid: child.pid };
}

describe.skipIf(skipUnprivileged)('NAT lab for an ordinary user (user+network+mount namespace)', () => {
  afterEach(async () => {
    try {
      expect(processesOfThisRun().filter((args) => /scripts\/lab\.ts (up|matrix|agent)/.test(args))).toEqual(
        [],
      );
    } finally {
      await Promise.all(started.splice(0).map((child) => child.stop('SIGKILL')));
      rmSync(stateDirectory, { recursive: true, force: true });
    }
  });

  it('runs matrix rows as nobody', async () => {
    const run = labUnprivileged(['matrix', '--only', '1,38', '--punches', '1']);
    expect(await run.exited).toBe(0);
    expect(run.output()).toMatch(/\| 1 +\| eim:apdf:drop \| eim:apdf:drop \| sync +\| 1\/1 /);
    expect(run.output()).toMatch(/\| 38 +\| eim:apdf:drop \| eim:apdf:rst +\| skew +\| 0\/1 /);
  });

  it('up holds the lab, exec reaches into it from another process, down ends it', async () => {
    const up = labUnprivileged(['up']);
    await expect.poll(up.output, { timeout: 60_000 }).toMatch(/lives as long as this command/);
    const exec = labUnprivileged(['exec', 'bob', '--', 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    expect(await exec.exited).toBe(0);
    expect(exec.output()).toMatch(/inet 10\.0\.2\.2\/24/);
    const down = labUnprivileged(['down']);
    expect(await down.exited).toBe(0);
    expect(await up.exited).toBe(0);
    expect(up.output()).toMatch(/lab \d+ removed \(SIGTERM\)/);
    const status = labUnprivileged(['status']);
    expect(await status.exited).toBe(4);
  });
});
