/**
 * simopen/lab's createLab in this process (root): a real lab of network namespaces, commands run in
 * its hosts, a router reconfigured, and nothing of it left after close().
 */
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { runChild } from '../../lib/core/childProcess.ts';
import { UsageError } from '../../lib/core/errors.ts';
import { listLabNamespaces } from '../../lib/lab/buildLab.ts';
import { createLab, type Lab, probeLab } from '../../lib/lab/index.ts';
import { repoRoot } from '../helpers/runScript.ts';

const facility = probeLab();
const isRoot = process.getuid?.() === 0;
const skip = !(facility.ok && isRoot) && !process.env.CI;
if (skip) console.warn(`skipping the createLab tests: ${isRoot ? facility.reason : 'not root'}`);

const ours = (id: string) => listLabNamespaces().filter((name) => name.startsWith(`simopen-lab-${id}-`));

describe('createLab: bad input', () => {
  it('refuses a bad topology text with a UsageError, and a bad id, before building anything', async () => {
    await expect(createLab({ topology: 'eim:bogus' })).rejects.toThrow(UsageError);
    await expect(createLab({ id: 'Not-An-Id' })).rejects.toThrow(
      /lab id 'Not-An-Id' must be 1\.\.12 of \[a-z0-9\]/,
    );
  });
});

describe.skipIf(skip)('createLab', () => {
  let lab: Lab | undefined;
  afterEach(async () => {
    const id = lab?.id;
    await lab?.close();
    lab = undefined;
    if (id) expect(ours(id)).toEqual([]);
  });

  it('builds the topology, runs commands in its hosts, reconfigures a router, and removes it all', async () => {
    lab = await createLab({ topology: 'eim:apdf:drop,eim:apdf:rst' });
    expect(lab.id).toMatch(new RegExp(`^${process.pid}l\\d+$`));
    expect(lab.hosts.map((host) => host.name)).toEqual([
      'internet',
      'rv',
      'alice-nat',
      'alice',
      'bob-nat',
      'bob',
    ]);
    expect(ours(lab.id)).toHaveLength(6);
    expect(lab.host('alice').addresses).toEqual(['10.0.1.2']);
    expect(lab.host('bob-nat').behaviour?.inbound).toBe('rst');
    expect(() => lab?.host('carol')).toThrow(/no host 'carol' in lab .* \(hosts: internet, rv, alice-nat/);

    const address = await lab.exec('alice', ['ip', '-4', '-o', 'address', 'show', 'dev', 'eth0']);
    expect(address).toMatchObject({ code: 0, stderr: '' });
    expect(address.stdout).toMatch(/inet 10\.0\.1\.2\/24/);
    // A failing command is a result: its exit code and both streams.
    expect(await lab.exec('rv', ['sh', '-c', 'echo out; echo err >&2; exit 3'])).toEqual({
      code: 3,
      stdout: 'out\n',
      stderr: 'err\n',
    });

    const rules = () => lab?.exec('alice-nat', ['nft', 'list', 'table', 'ip', 'simopen_lab']);
    expect((await rules())?.stdout).not.toMatch(/masquerade random/);
    lab.reconfigureRouter('alice', { mapping: 'edm', filtering: 'apdf', inbound: 'drop', lossPercent: 0 });
    expect((await rules())?.stdout).toMatch(/masquerade random/);
    expect(lab.host('alice-nat').behaviour?.mapping).toBe('edm');

    const id = lab.id;
    await lab.close();
    await lab.close();
    expect(ours(id)).toEqual([]);
  });

  it('stops the scripts it started when it closes', async () => {
    lab = await createLab();
    // Dials a peer that never comes (its deadline is 20 s): running until stopped.
    const dialer = lab.spawnScript('bob', 'test/fixtures/dialOnce.ts', [
      '10.0.2.2',
      '5000',
      '10.0.1.2',
      '5000',
    ]);
    await lab.close();
    // Ended by the lab's SIGTERM (143), not by an error of its own.
    expect(await dialer.exited).toBe(143);
  });
});

/** An ordinary user's script (as root: run as nobody) is re-executed in a user+network+mount namespace. */
const asUser: string[] | undefined = !isRoot
  ? []
  : spawnSync('runuser', ['-u', 'nobody', '--', 'true']).status === 0
    ? ['runuser', '-u', 'nobody', '--', 'env', 'HOME=/tmp']
    : undefined;
const skipUser = !(asUser && (isRoot || facility.ok)) && !process.env.CI;
if (skipUser)
  console.warn(
    `skipping the unprivileged createLab test: ${isRoot ? 'runuser cannot run as nobody' : facility.reason}`,
  );

describe.skipIf(skipUser)('createLab for an ordinary user', () => {
  it('re-executes the script in a user namespace, where the lab is built and used', async () => {
    const argv = [...(asUser ?? []), process.execPath, '--import', 'tsx', 'test/fixtures/labAsUser.ts'];
    const run = await runChild(argv[0] as string, argv.slice(1), { cwd: repoRoot });
    const output = run.stdout + run.stderr;
    const code = run.code;
    expect(output).toMatch(/^uid 0 exec 0: .*inet 10\.0\.1\.2\/24/);
    expect(code).toBe(0);
  });
});
