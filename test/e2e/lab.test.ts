/**
 * The NAT lab for real, driven from this process: network namespaces, veth links, nft NAT routers, a
 * rendezvous server and peers as separate processes. Needs root with ip and nft; skips (saying why)
 * only when those are missing and CI is unset. After every test nothing of this run's labs may be left.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type Child, startScript } from '../../lib/core/childProcess.ts';
import { applyLab, probeLab, teardownLab } from '../../lib/lab/buildLab.ts';
import { findLabs } from '../../lib/lab/findLabs.ts';
import { matrixRows } from '../../lib/lab/matrixRows.ts';
import { runNatMatrix } from '../../lib/lab/runMatrix.ts';
import { namespaceName, parseTopology, planLab } from '../../lib/lab/topology.ts';
import { expectNothingLeftThenClean, ownLab, processesInLab } from '../helpers/labScope.ts';

const facility = probeLab();
// These tests drive `ip netns` from this process, which needs root; an ordinary user's path is labUnprivileged.test.ts.
const isRoot = process.getuid?.() === 0;
const skip = !(facility.ok && isRoot) && !process.env.CI;
if (skip) process.stderr.write(`root lab tests skipped: ${isRoot ? facility.reason : 'not root'}\n`);

describe.skipIf(skip)('NAT lab', () => {
  const started: Child[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((child) => child.stop()));
    expectNothingLeftThenClean();
  });

  /** A lab with a rendezvous server on rv and two peer.ts processes using it; returns the pieces. */
  async function labWithPeers(topology: string, id: string, peerArgs: string[] = []) {
    ownLab(id);
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
      // Take the server away: the chat must not need it. SIGTERM: every script exits 130 when a signal stops it.
      expect(await server.stop()).toBe(130);
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
        row.number <= 41 &&
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
    const labId = ownLab(`m${process.pid}`);
    const summaries = await runNatMatrix({ labId, rows, punches: 2, deadlineMs: 3000, retryIntervalMs: 0 });
    expect(summaries.map((summary) => `${summary.successes}/${summary.punches}`)).toEqual([
      '2/2',
      '2/2',
      '0/2',
      '2/2',
      '0/2',
    ]);
    expect(summaries.every((summary) => summary.matches)).toBe(true);
  });

  it("a lab's processes end with the process that started them, even when it is killed with SIGKILL", async () => {
    const id = ownLab(`k${process.pid}`);
    const owner = startScript('test/fixtures/punchLabOwner.ts', [id], { stdin: 'ignore' });
    started.push(owner);
    await owner.waitForLine(/^ready /);
    // The rendezvous server on rv and an agent on alice and on bob, all idle now.
    expect(processesInLab(id)).toHaveLength(3);
    expect(await owner.stop('SIGKILL')).toBe(137);
    await expect.poll(() => processesInLab(id), { timeout: 20_000, interval: 100 }).toEqual([]);
    // Its namespaces and state stay: removing them is lab.ts down's job (labScript.test.ts).
    const { states } = findLabs({ kind: 'id', id });
    expect(states.map((state) => state.plan.id)).toEqual([id]);
    for (const state of states) teardownLab(state.plan, state);
  });
});
