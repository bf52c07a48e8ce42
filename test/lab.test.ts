/**
 * The NAT lab for real: network namespaces, veth links, nft NAT routers, a rendezvous server and
 * peers as separate processes. Needs root with ip and nft; skips (saying why) only when those are
 * missing and CI is unset. After every test nothing of the lab may be left on the machine.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { type Child, startScript } from '../lib/core/childProcess.ts';
import { applyLab, listLabNamespaces, probeLab, stateDirectory, teardownLab } from '../lib/lab/buildLab.ts';
import { matrixRows } from '../lib/lab/matrixRows.ts';
import { runNatMatrix } from '../lib/lab/runMatrix.ts';
import { namespaceName, parseTopology, planLab, routerRuleset } from '../lib/lab/topology.ts';
import type { Topology } from '../lib/lab/types.ts';
import { repoRoot, runScript } from './helpers/runScript.ts';

const facility = probeLab();
// These tests drive `ip netns` from this process, which needs root; an ordinary user's path is tested below.
const isRoot = process.getuid?.() === 0;
const skip = !(facility.ok && isRoot) && !process.env.CI;
if (skip) process.stderr.write(`root lab tests skipped: ${isRoot ? facility.reason : 'not root'}\n`);

/** Nothing of any lab remains: namespaces, host-side links, nft tables, processes. */
function expectNothingLeft() {
  expect(listLabNamespaces()).toEqual([]);
  expect(existsSync(stateDirectory())).toBe(false);
  const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout;
  const names = links.split('\n').map((line) => line.split(':')[1]?.trim().split('@')[0]);
  for (const name of ['wan', 'lan', 'rv', 'r0', 'r1']) expect(names).not.toContain(name);
  expect(spawnSync('nft', ['list', 'tables'], { encoding: 'utf8' }).stdout).not.toMatch(/simopen_lab/);
  const processes = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).stdout;
  expect(processes).not.toMatch(/scripts\/lab\.ts agent|rendezvous\.ts --listen 203\.0\.113/);
}

describe('lab topology (pure)', () => {
  it('creates every link inside lab namespaces, never in the host namespace', () => {
    const plan = planLab('t1', parseTopology('eim:apdf:drop,edm:eif:rst:5'));
    const linkAdds = plan.commands.filter((argv) => argv.includes('link') && argv.includes('add'));
    expect(linkAdds.length).toBeGreaterThan(0);
    for (const argv of linkAdds) expect(argv.slice(0, 3)).toEqual(['ip', '-n', argv[2]]);
    for (const argv of linkAdds) expect(argv[2]).toMatch(/^simopen-lab-t1-/);
    expect(plan.hosts.map((host) => host.name)).toEqual([
      'internet',
      'rv',
      'alice-nat',
      'alice',
      'bob-nat',
      'bob',
    ]);
  });

  it('turns each router behaviour into its nft rules', () => {
    const base: Topology['hosts'][number]['router'] = {
      mapping: 'eim',
      filtering: 'apdf',
      inbound: 'drop',
      lossPercent: 0,
    };
    const plain = routerRuleset(base, '10.0.1.2');
    expect(plain).toMatch(/oifname "wan" masquerade\n/);
    expect(plain).toMatch(/tcp flags & \(syn\|ack\) == syn drop/);
    expect(plain).not.toMatch(/numgen|@mapped|reject/);
    expect(routerRuleset({ ...base, mapping: 'edm' }, '10.0.1.2')).toMatch(/masquerade random/);
    expect(routerRuleset({ ...base, inbound: 'rst' }, '10.0.1.2')).toMatch(/== syn reject with tcp reset/);
    expect(routerRuleset({ ...base, filtering: 'eif' }, '10.0.1.2')).toMatch(
      /tcp dport @mapped dnat to 10\.0\.1\.2/,
    );
    expect(routerRuleset({ ...base, lossPercent: 2.5 }, '10.0.1.2')).toMatch(
      /numgen random mod 10000 < 250 drop/,
    );
    expect(() => parseTopology('eim:bogus')).toThrow(/unknown field 'bogus'/);
    expect(() => parseTopology('eim:150%')).toThrow(/over 100/);
  });
});

describe.skipIf(skip)('NAT lab', () => {
  const started: Child[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((child) => child.stop()));
    expectNothingLeft();
  });

  /** A lab with a rendezvous server on rv and two peer.ts processes using it; returns the pieces. */
  async function labWithPeers(topology: string, id: string, peerArgs: string[] = []) {
    const plan = planLab(id, parseTopology(topology));
    applyLab(plan);
    const spawnIn = (host: string, script: string, args: string[]) => {
      const child = startScript(script, args, { netns: namespaceName(id, host) });
      started.push(child);
      return child;
    };
    const server = spawnIn('rv', 'scripts/rendezvous.ts', ['--listen', '203.0.113.10:3478']);
    await server.waitForLine(/ listening /, 60_000);
    const peer = (port: string) =>
      spawnIn(port === '5000' ? 'alice' : 'bob', 'scripts/peer.ts', [
        '--rendezvous',
        '203.0.113.10:3478',
        '--session',
        `chat-${id}`,
        '--secret',
        'correct horse',
        '--local-port',
        port,
        '--prefix',
        '',
        ...peerArgs,
      ]);
    return { plan, server, alice: peer('5000'), bob: peer('6000') };
  }

  it('two peers behind port-preserving NATs chat over a punched connection that does not pass the server', async () => {
    const { plan, server, alice, bob } = await labWithPeers('eim:apdf:drop,eim:apdf:drop', `c${process.pid}`);
    try {
      const [aliceConnected, bobConnected] = await Promise.all([
        alice.waitForLine(/connected directly/, 60_000),
        bob.waitForLine(/connected directly/, 60_000),
      ]);
      // Each sees the other's router's public address, not the server's.
      expect(aliceConnected).toMatch(/10\.0\.1\.2:5000 <-> 203\.0\.113\.2:6000/);
      expect(bobConnected).toMatch(/10\.0\.2\.2:6000 <-> 203\.0\.113\.1:5000/);
      // Take the server away: the chat must not need it.
      expect(await server.stop()).toBe(0);
      alice.process.stdin?.write('hello bob, alice here\n');
      await bob.waitForLine(/^hello bob, alice here$/);
      bob.process.stdin?.write('hi alice\n');
      await alice.waitForLine(/^hi alice$/);
      alice.process.stdin?.write('/quit\n');
      expect(await alice.exited).toBe(0);
      expect(await bob.exited).toBe(0);
      const log = server.output.join('\n');
      expect(log).toMatch(/ paired session=chat-c\d+ /);
      expect(log).toMatch(/ result .* ok=true/);
      expect(log).not.toMatch(/hello bob|hi alice/);
    } finally {
      teardownLab(plan);
    }
  });

  it('symmetric NAT on both sides fails, and the peers say why', async () => {
    const { plan, alice, bob } = await labWithPeers('edm:apdf:drop,edm:apdf:drop', `s${process.pid}`, [
      '--timeout',
      '2s',
    ]);
    try {
      expect(await alice.exited).toBe(3);
      expect(await bob.exited).toBe(3);
      for (const peer of [alice, bob]) {
        const text = peer.output.join('\n');
        expect(text).toMatch(/endpoint-dependent mapping/);
        expect(text).toMatch(/no direct connection .*symmetric NAT.*the mapped port cannot be predicted/);
      }
    } finally {
      teardownLab(plan);
    }
  });

  it('matrix rows: a RST-answering router succeeds only when the SYNs cross in time', async () => {
    // The deterministic rows: bob's router answers RST while both retry (the retry crosses), and the
    // skewed rows (one connect each, bob 500 ms late). Rows where both sides refuse succeed by chance
    // only ("some"): they are left to `lab.ts matrix`, not asserted here.
    const rows = matrixRows().filter(
      (row) =>
        row.expect !== 'some' &&
        row.alice.mapping === 'eim' &&
        row.bob.mapping === 'eim' &&
        row.alice.filtering === 'apdf' &&
        row.bob.filtering === 'apdf' &&
        row.alice.lossPercent === 0 &&
        (row.timing === 'skew' || row.bob.inbound === 'rst'),
    );
    expect(rows.map((row) => `${row.alice.inbound}/${row.bob.inbound}/${row.timing}`)).toEqual([
      'drop/rst/sync',
      'drop/drop/skew',
      'drop/rst/skew',
      'rst/drop/skew',
      'rst/rst/skew',
    ]);
    const summaries = await runNatMatrix({ rows, punches: 2, deadlineMs: 3000, retryIntervalMs: 0 });
    expect(summaries.map((summary) => `${summary.successes}/${summary.punches}`)).toEqual([
      '2/2',
      '2/2',
      '0/2',
      '2/2',
      '0/2',
    ]);
    expect(summaries.every((summary) => summary.matches)).toBe(true);
  });

  it('lab.ts up, status, exec and down; down leaves nothing', async () => {
    const up = runScript('lab', ['up', 'eim:eif:rst,edm:apdf:drop']);
    expect(await up.exited).toBe(0);
    expect(up.stdout()).toMatch(
      /alice-nat .*endpoint-independent mapping, port-preserving, endpoint-independent filtering, unsolicited SYN answered with RST/,
    );
    const again = runScript('lab', ['up']);
    expect(await again.exited).toBe(4);
    const status = runScript('lab', ['status']);
    expect(await status.exited).toBe(0);
    expect(status.stdout()).toMatch(/bob-nat .*symmetric/);
    const exec = runScript('lab', ['exec', 'bob', '--', 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    expect(await exec.exited).toBe(0);
    expect(exec.stdout()).toMatch(/inet 10\.0\.2\.2\/24/);
    const failing = runScript('lab', ['exec', 'alice', '--', 'sh', '-c', 'exit 7']);
    expect(await failing.exited).toBe(7);
    const down = runScript('lab', ['down']);
    expect(await down.exited).toBe(0);
    expect(down.stdout()).toMatch(/removed .*simopen-lab-\d+-alice/);
    const after = runScript('lab', ['status']);
    expect(await after.exited).toBe(4);
  });

  it('Ctrl-C during the matrix leaves nothing behind', async () => {
    const run = runScript('lab', ['matrix', '--punches', '1']);
    await run.waitFor(/row 1 \(1\/\d+\)/);
    run.process.kill('SIGINT');
    expect(await run.exited).toBe(130);
  });
});

describe('lab.ts and peer.ts usage errors', () => {
  it('exit 2 with a one-line reason, before anything is built', async () => {
    for (const args of [['frob'], ['up', 'eim:nope'], ['matrix', '--punches', '0'], ['exec', 'alice']]) {
      const run = runScript('lab', args);
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
    expect(listLabNamespaces()).toEqual([]);
  });
});

/**
 * The unprivileged path (user+network+mount namespace), for real: as an ordinary user we run lab.ts
 * directly; as root we run it as user nobody.
 */
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

function labUnprivileged(args: string[]): {
  output: () => string;
  exited: Promise<number>;
  pid: number | undefined;
} {
  const argv = [
    ...(unprivilegedPrefix ?? []),
    process.execPath,
    '--import',
    'tsx',
    'scripts/lab.ts',
    ...args,
  ];
  const child = spawn(argv[0] as string, argv.slice(1), { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
  });
  const exited = new Promise<number>((resolve) => child.once('close', (code) => resolve(code ?? 128)));
  return { output: () => text, exited, pid: child.pid };
}

describe.skipIf(skipUnprivileged)('NAT lab for an ordinary user (user+network+mount namespace)', () => {
  afterEach(() => {
    const processes = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).stdout;
    expect(processes).not.toMatch(/scripts\/lab\.ts (up|matrix|agent)/);
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
