/**
 * lab.ts as a child process: up, status, exec, down, the matrix and its signals, which labs a command
 * acts on, and usage errors. Needs root with ip and nft (the unprivileged path is
 * labUnprivileged.test.ts). This run's labs are recorded in its own state directory (labScope.ts), so
 * `lab.ts down` here never touches another run's labs.
 */
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startChild } from '../../lib/core/childProcess.ts';
import { STATE_DIR_ENV } from '../../lib/lab/labState.ts';
import { labRuns, namespacesOfThisRun, processesInLab, skipLabTests } from '../helpers/labScope.ts';
import { runScript } from '../helpers/runScript.ts';

const skip = skipLabTests('root lab.ts tests');

const scratch = mkdtempSync(join(tmpdir(), 'simopen-lab-script-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** lab.ts with these arguments; its pid is the id of any lab it makes, which is this run's. */
const runs = labRuns('lab');
const lab = runs.start;

describe.skipIf(skip)('lab.ts', () => {
  it('lab.ts up, status, exec and down; down leaves nothing', async () => {
    const up = lab(['up', 'eim:eif:rst,edm:apdf:drop']);
    expect(await up.exited).toBe(0);
    expect(up.stdout()).toMatch(
      /alice-nat .*endpoint-independent mapping, port-preserving, endpoint-independent filtering, unsolicited SYN answered with RST/,
    );
    const again = lab(['up']);
    expect(await again.exited).toBe(4);
    const status = lab(['status']);
    expect(await status.exited).toBe(0);
    expect(status.stdout()).toMatch(/bob-nat .*symmetric/);
    const exec = lab(['exec', 'bob', '--', 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    expect(await exec.exited).toBe(0);
    expect(exec.stdout()).toMatch(/inet 10\.0\.2\.2\/24/);
    const failing = lab(['exec', 'alice', '--', 'sh', '-c', 'exit 7']);
    expect(await failing.exited).toBe(7);
    const down = lab(['down']);
    expect(await down.exited).toBe(0);
    expect(down.stdout()).toMatch(/removed .*simopen-lab-\d+-alice/);
    const after = lab(['status']);
    expect(await after.exited).toBe(4);
  });

  it('SIGTERM to lab.ts exec reaches the command: it does not outlive lab.ts', async () => {
    const up = lab(['up']);
    expect(await up.exited).toBe(0);
    const id = String(up.pid);
    const exec = lab(['exec', 'alice', '--', 'sleep', '60']);
    await expect.poll(() => processesInLab(id).length, { timeout: 20_000, interval: 50 }).toBe(1);
    expect(await exec.stop('SIGTERM')).toBe(143);
    await expect.poll(() => processesInLab(id), { timeout: 10_000, interval: 50 }).toEqual([]);
    const down = lab(['down']);
    expect(await down.exited).toBe(0);
  });

  it('Ctrl-C during the matrix leaves nothing behind', async () => {
    const run = lab(['matrix', '--punches', '1']);
    await run.waitFor(/row 1 \(1\/\d+\)/);
    run.process.kill('SIGINT');
    expect(await run.exited).toBe(130);
  });

  it.each(['SIGTERM', 'SIGHUP'] as const)(
    '%s during the matrix: exit 130 as for Ctrl-C, nothing left behind',
    async (signal) => {
      const run = lab(['matrix', '--punches', '1']);
      await run.waitFor(/row 1 \(1\/\d+\)/);
      expect(await run.stop(signal)).toBe(130);
    },
  );

  it("after SIGKILL of lab.ts matrix its lab's processes end; status names the orphan, down ID removes it", async () => {
    const run = lab(['matrix', '--punches', '1']);
    await run.waitFor(/row 1 \(1\/\d+\)/);
    const id = /in lab ([a-z0-9]+)/.exec(run.stderr())?.[1];
    expect(id).toBe(String(run.pid));
    expect(processesInLab(id as string).length).toBeGreaterThan(0);
    await run.stop('SIGKILL');
    // The rendezvous server and the punch agents were tied to it: they end by themselves.
    await expect.poll(() => processesInLab(id as string), { timeout: 20_000, interval: 100 }).toEqual([]);
    // Its namespaces stay (nobody was left to remove them) until down.
    expect(namespacesOfThisRun().length).toBeGreaterThan(0);
    const status = lab(['status']);
    expect(await status.exited).toBe(0);
    expect(status.stdout()).toContain(`its owner (pid ${id}) is gone: lab.ts down ${id} removes it`);
    const down = lab(['down', id as string]);
    expect(await down.exited).toBe(0);
    expect(down.stdout()).toMatch(new RegExp(`^removed lab ${id}: .*simopen-lab-${id}-alice`, 'm'));
  });

  it("status and down act on this state's labs; another state's down leaves them; down ID removes one", async () => {
    const up = lab(['up']);
    expect(await up.exited).toBe(0);
    const id = String(up.pid);
    // Another clone (or another run) has a state of its own.
    const elsewhere = { [STATE_DIR_ENV]: join(scratch, 'other-state') };
    const otherStatus = lab(['status'], elsewhere);
    expect(await otherStatus.exited).toBe(4);
    expect(otherStatus.stdout()).toMatch(/^no lab is up/);
    const otherDown = lab(['down'], elsewhere);
    expect(await otherDown.exited).toBe(0);
    expect(otherDown.stdout()).toMatch(/^nothing to remove/);
    expect(namespacesOfThisRun()).toContain(`simopen-lab-${id}-alice`);
    const mine = lab(['status']);
    expect(await mine.exited).toBe(0);
    expect(mine.stdout()).toContain(`lab ${id}:`);
    // Named by id, the lab is found from anywhere.
    const byId = lab(['status', id], elsewhere);
    expect(await byId.exited).toBe(0);
    expect(byId.stdout()).toContain(`lab ${id}`);
    const downById = lab(['down', id], elsewhere);
    expect(await downById.exited).toBe(0);
    expect(downById.stdout()).toMatch(new RegExp(`removed lab ${id}.*simopen-lab-${id}-alice`));
    expect(namespacesOfThisRun()).toEqual([]);
    const missing = lab(['down', id], elsewhere);
    expect(await missing.exited).toBe(4);
    // Our state no longer lists a lab whose namespaces are gone.
    const after = lab(['status']);
    expect(await after.exited).toBe(4);
  });

  it('each clone has its own state: a lab up in one clone is not seen or removed from another', async () => {
    // Two clones of this repository (their own lib/ and scripts/, the same node_modules).
    const clones = ['a', 'b'].map((name) => {
      const clone = join(scratch, `clone-${name}`);
      for (const part of ['lib', 'scripts', 'workers', 'package.json'])
        cpSync(join(REPO_ROOT, part), join(clone, part), { recursive: true });
      symlinkSync(join(REPO_ROOT, 'node_modules'), join(clone, 'node_modules'));
      return clone;
    });
    // The default state (no SIMOPEN_LAB_STATE_DIR): what a user gets.
    const inClone = (clone: string, args: string[]) => lab(args, { [STATE_DIR_ENV]: '' }, { cwd: clone });
    const [a, b] = clones as [string, string];
    const up = inClone(a, ['up']);
    expect(await up.exited).toBe(0);
    const id = String(up.pid);
    const statusB = inClone(b, ['status']);
    expect(await statusB.exited).toBe(4);
    expect(statusB.stdout()).toMatch(
      /^no lab is up \(\d+ other lab\(s\) on this machine: lab\.ts status --all\)/,
    );
    const downB = inClone(b, ['down']);
    expect(await downB.exited).toBe(0);
    expect(namespacesOfThisRun()).toContain(`simopen-lab-${id}-alice`);
    const statusA = inClone(a, ['status']);
    expect(await statusA.exited).toBe(0);
    expect(statusA.stdout()).toMatch(new RegExp(`lab ${id}:[^]*state in /run/simopen-lab/[0-9a-f]{12}\\)`));
    const downA = inClone(a, ['down']);
    expect(await downA.exited).toBe(0);
    expect(downA.stdout()).toMatch(new RegExp(`removed lab ${id}: .*simopen-lab-${id}-alice`));
  });

  it('down --all removes every lab, saying what it removes (in a mount namespace of its own)', async () => {
    // --all acts on the whole machine: run it where "the machine" is a private /run (ip netns keeps its
    // namespaces there), so another run's labs on this machine are out of its reach.
    const script = [
      'mount -t tmpfs simopen-test /run && mkdir -p /run/netns || exit 99',
      'LAB="$0 --import tsx scripts/lab.ts"',
      '$LAB up >/dev/null || exit 98',
      `SIMOPEN_LAB_STATE_DIR=${join(scratch, 'all-b')} $LAB up eim:eif:rst >/dev/null || exit 97`,
      'ip netns add simopen-lab-zz1-alice || exit 96',
      'echo "--- status"; $LAB status --all; echo "status exit $?"',
      'echo "--- down"; $LAB down --all; echo "down exit $?"',
      'echo "--- after"; ip netns list; $LAB status --all; echo "status exit $?"',
    ].join('\n');
    const run = startChild(
      'unshare',
      ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, process.execPath],
      { cwd: REPO_ROOT, env: { ...process.env, [STATE_DIR_ENV]: '' }, stdin: 'ignore' },
    );
    runs.track(run);
    expect(await run.exited, run.stderr()).toBe(0);
    const [, status = '', down = '', after = ''] = run.stdout().split(/^--- \w+\n/m);
    expect(status).toMatch(/^lab \d+:$/m);
    expect(status).toMatch(/^lab zz1 \(/m);
    expect(status).toMatch(/status exit 0/);
    const removed = down.split('\n').filter((line) => line.startsWith('removed lab '));
    expect(removed).toHaveLength(3);
    expect(removed.some((line) => /^removed lab \d+: .*simopen-lab-\d+-bob-nat/.test(line))).toBe(true);
    expect(removed.some((line) => /^removed lab \d+ \(no state file\): .*-alice-nat/.test(line))).toBe(true);
    expect(removed).toContain('removed lab zz1 (no state file): simopen-lab-zz1-alice');
    expect(down).toMatch(/down exit 0/);
    expect(after).toMatch(/^no lab is up\nstatus exit 4\n$/);
  });
});

describe('lab.ts and peer.ts usage errors', () => {
  it('exit 2 with a one-line reason, before anything is built', async () => {
    for (const args of [['frob'], ['up', 'eim:nope'], ['matrix', '--punches', '0'], ['exec', 'alice']]) {
      const run = lab(args);
      expect(await run.exited).toBe(2);
      expect(run.stderr().split('\n')[0]).toMatch(/^lab: /);
    }
    for (const args of [
      ['--rendezvous', '203.0.113.10:3478', '--secret', 'x'],
      ['--rendezvous', '203.0.113.10:3478', '--session', 'a b', '--secret', 'x'],
      ['--rendezvous', '203.0.113.10:3478', '--session', 'demo'],
      ['--session', 'demo', '--secret', 'x', '203.0.113.2', '6000'],
      ['--rendezvous', '203.0.113.10', '--session', 'demo', '--secret', 'x'],
    ]) {
      const run = runScript('peer', args);
      expect(await run.exited).toBe(2);
      expect(run.stderr().split('\n')[0]).toMatch(/^peer: .*(--rendezvous|--session|--secret)/);
    }
    expect(namespacesOfThisRun()).toEqual([]);
  });

  it('a topology naming one field twice (eim:edm:drop) is a usage error, not the last one winning', async () => {
    for (const [topology, what] of [
      ['eim:edm:drop', "mapping given twice \\('eim' and 'edm'\\)"],
      ['eim:apdf:drop,edm:apdf:drop:rst', "inbound given twice \\('drop' and 'rst'\\)"],
      ['eim:5%:10', "loss given twice \\('5%' and '10'\\)"],
    ] as const) {
      const run = lab(['up', topology]);
      expect(await run.exited).toBe(2);
      expect(run.stderr().split('\n')[0]).toMatch(new RegExp(`^lab: router '[^']+': ${what}$`));
    }
    expect(namespacesOfThisRun()).toEqual([]);
  });

  it('status and down take one lab id or --all', async () => {
    for (const args of [
      ['down', 'NOT-AN-ID'],
      ['status', 'a', 'b'],
      ['down', '123', '--all'],
      ['status', '--everything'],
    ]) {
      const run = lab(args);
      expect(await run.exited, args.join(' ')).toBe(2);
      expect(run.stderr().split('\n')[0]).toMatch(/^lab: /);
    }
  });
});
