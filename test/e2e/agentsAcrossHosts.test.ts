/**
 * Agents across machines: each agent in a network namespace of its own, all on one bridge, plain
 * addresses, no NAT (two machines on one LAN would be so), and the coordinator on a third. A SYN that
 * arrives before its peer's connect() meets a RST there, unless the agent drops it (--drop-early-rst).
 * Also the Kubernetes wiring: agents started the way the manifests start them (JOB_COMPLETION_INDEX,
 * the peer list of DNS names, resolved through a hosts file the test owns), and the faults.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Job } from 'kubernetes-models/batch/v1';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_TOKEN_ENV } from '../../lib/agent/types.ts';
import type { ConnectTiming } from '../../lib/coordinator/connectTiming.ts';
import type { DistributedResult } from '../../lib/coordinator/types.ts';
import { type Child, startScript } from '../../lib/core/childProcess.ts';
import { agentNames, buildManifests } from '../../lib/k8s/manifests.ts';
import { planFromDefaults } from '../../lib/k8s/options.ts';
import { AGENT_INDEX_ENV } from '../../lib/k8s/types.ts';
import { type BridgeHost, type BridgeNet, buildBridgeNet, hostRuleset } from '../helpers/bridgeHosts.ts';
import { processesOfThisRun } from '../helpers/runProcesses.ts';

const TOKEN = `token-${process.pid}`;
const PORT = 7411;
const dir = mkdtempSync(join(tmpdir(), 'simopen-agents-hosts-'));
let net: BridgeNet;
let hostRulesBefore: string;
const children: Child[] = [];

/** Whatever a test left running is stopped the way an operator would (SIGTERM: agents clean up). */
afterEach(async () => {
  await Promise.all(children.splice(0).map((child) => child.stop('SIGTERM')));
});

beforeAll(() => {
  hostRulesBefore = hostRuleset();
  net = buildBridgeNet('x', 3);
});

afterAll(async () => {
  await Promise.all(children.map((child) => child.stop('SIGKILL')));
  net?.teardown();
  rmSync(dir, { recursive: true, force: true });
  // The machine's own ruleset is as it was; nothing of this run is left running.
  expect(hostRuleset()).toBe(hostRulesBefore);
  expect(processesOfThisRun()).toEqual([]);
});

function agentAt(host: BridgeHost, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const child = startScript('scripts/stress.ts', ['agent', '--workers', '1', ...args], {
    netns: host.namespace,
    env: { ...process.env, [AGENT_TOKEN_ENV]: TOKEN, ...env },
    stdin: 'ignore',
  });
  children.push(child);
  return child;
}

function startCoordinator(args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const coordinatorHost = net.hosts[2] as BridgeHost;
  const child = startScript('scripts/stress.ts', ['--workers', '1', ...args], {
    netns: coordinatorHost.namespace,
    env: { ...process.env, [AGENT_TOKEN_ENV]: TOKEN, ...env },
    stdin: 'ignore',
  });
  children.push(child);
  return child;
}

async function coordinate(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = startCoordinator(['--quiet', ...args], env);
  const code = await child.exited;
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

/** An agent listening on each of the two hosts (`--once`, and `extra`), ready. */
async function agentsOnBoth(extra: string[] = []): Promise<Child[]> {
  const agents = net.hosts
    .slice(0, 2)
    .map((host) => agentAt(host, ['--listen', `${host.address}:${PORT}`, '--once', ...extra]));
  await Promise.all(agents.map((agent) => agent.waitForLine(/listening on/)));
  return agents;
}

const agentList = () => `${net.hosts[0]?.address}:${PORT},${net.hosts[1]?.address}:${PORT}`;

describe('agents on two hosts joined by a bridge', () => {
  it('--drop-early-rst: every pair opens on its first SYN; the table is scoped to the run and gone after it', async () => {
    const [h0, h1] = net.hosts as [BridgeHost, BridgeHost];
    const agents = await agentsOnBoth(['--drop-early-rst']);
    const json = join(dir, 'drop.json');
    const run = await coordinate([
      '--agents',
      agentList(),
      '--pairs',
      '400',
      '--ports',
      '30000-30099',
      '--json',
      json,
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const result = JSON.parse(readFileSync(json, 'utf8')) as DistributedResult;
    expect(result.pairs).toMatchObject({ planned: 400, established: 400, failed: 0 });
    // No RST reached a side: nothing to retry.
    expect(result.attempts?.max).toBe(1);
    expect(result.agents.map((agent) => agent.name).sort()).toEqual([h0.address, h1.address].sort());
    for (const [index, agent] of agents.entries()) {
      expect(await agent.exited).toBe(0);
      const peer = (index === 0 ? h1 : h0).address;
      expect(agent.stderr()).toContain(`dropping early RSTs to ${peer} on ports 30000-30099`);
      expect(agent.stderr()).toMatch(/removed nft table inet simopen_agent_rst_\d+/);
      // The agent's host is left as it was found: no table.
      expect(net.ruleset(index === 0 ? h0 : h1)).toBe('');
    }
    expect(hostRuleset()).toBe(hostRulesBefore);
  });

  it('without it, early SYNs meet RSTs between the hosts: the sides retry', async () => {
    const agents = await agentsOnBoth();
    const json = join(dir, 'plain.json');
    const run = await coordinate([
      '--agents',
      agentList(),
      '--pairs',
      '200',
      '--ports',
      '30100-30199',
      '--min-success',
      '0',
      '--json',
      json,
    ]);
    expect(run.code).toBe(0);
    const result = JSON.parse(readFileSync(json, 'utf8')) as DistributedResult;
    expect(result.pairs.planned).toBe(200);
    expect(result.pairs.established + result.pairs.failed + result.pairs.cancelled).toBe(200);
    expect(result.attempts?.max ?? 0).toBeGreaterThan(1);
    for (const agent of agents) expect(await agent.exited).toBe(0);
  });

  it('timed connects: both sides connect at the due time; the report says how close they came and how many crossed', async () => {
    const agents = await agentsOnBoth();
    const json = join(dir, 'timed.json');
    const run = await coordinate([
      '--agents',
      agentList(),
      '--pairs',
      '200',
      '--rate',
      '200',
      '--timed-connects',
      '--ports',
      '30400-30499',
      '--min-success',
      '0',
      '--json',
      json,
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/connect skew {2}\|A - B\| p50 [\d.]+ ms/);
    expect(run.stdout).toMatch(/crossed {7}\d+ of 200 pairs/);
    const result = JSON.parse(readFileSync(json, 'utf8')) as DistributedResult & {
      connectTiming: ConnectTiming;
    };
    const timing = result.connectTiming;
    // Every pair started on both sides (nothing was stopped), and each is counted once.
    expect(timing.pairs).toBe(200);
    expect(timing.aFirst + timing.bFirst).toBe(200);
    expect(timing.skewMs).not.toBeNull();
    expect(timing.skewMs?.max ?? -1).toBeGreaterThanOrEqual(timing.skewMs?.p50 ?? Number.POSITIVE_INFINITY);
    // A pair that crossed opened on one connect each: never more than the pairs established.
    expect(timing.crossed).toBeLessThanOrEqual(result.pairs.established);
    for (const agent of timing.agents) {
      expect(agent.controlRttMs).toBeGreaterThan(0);
      expect(typeof agent.clockOffsetMs).toBe('number');
    }
    for (const agent of agents) expect(await agent.exited).toBe(0);
  });

  it('SIGTERM mid-run removes the table; a SIGKILLed agent is lost by name, its table swept by the next agent', async () => {
    const [h0, h1] = net.hosts as [BridgeHost, BridgeHost];
    const agents = await agentsOnBoth(['--drop-early-rst']);
    const coordinator = startCoordinator([
      '--agents',
      agentList(),
      '--duration',
      '60s',
      '--rate',
      '100',
      '--ports',
      '30200-30299',
      '--min-success',
      '0',
    ]);
    await coordinator.waitForLine(/pairs start now/);
    expect(net.ruleset(h0)).toMatch(/table inet simopen_agent_rst_\d+/);
    expect(net.ruleset(h1)).toMatch(/tcp sport 30200-30299 tcp dport 30200-30299/);
    // h0's agent: SIGTERM, its table goes with it.
    expect(await (agents[0] as Child).stop('SIGTERM')).toBe(130);
    expect(net.ruleset(h0)).toBe('');
    // The coordinator names the agent lost, accounts for every pair, and ends.
    await coordinator.exited;
    const run = { stdout: coordinator.stdout(), stderr: coordinator.stderr() };
    expect(run.stderr).toContain(`agent ${h0.address} was lost`);
    expect(run.stdout).toMatch(/agent-lost|cancelled/);
    // h1's agent: killed outright while it held a table (a fresh run, killed before it ends).
    expect(await (agents[1] as Child).exited).toBeGreaterThanOrEqual(0);
    const again = await agentsOnBoth(['--drop-early-rst']);
    const second = startCoordinator([
      '--agents',
      agentList(),
      '--duration',
      '60s',
      '--rate',
      '100',
      '--ports',
      '30300-30399',
      '--min-success',
      '0',
    ]);
    await second.waitForLine(/pairs start now/);
    expect(await (again[1] as Child).stop('SIGKILL')).toBe(137);
    expect(net.ruleset(h1)).toMatch(/simopen_agent_rst_/);
    await second.exited;
    expect(second.stderr()).toContain(`agent ${h1.address} was lost`);
    await (again[0] as Child).stop('SIGTERM');
    const sweeper = agentAt(h1, ['--listen', `${h1.address}:${PORT}`, '--once', '--drop-early-rst']);
    await sweeper.waitForLine(/listening on/);
    expect(sweeper.stderr()).toMatch(/removed simopen_agent_rst_\d+, left by an agent that is gone/);
    expect(net.ruleset(h1)).toBe('');
    await sweeper.stop('SIGTERM');
  });

  it('a wrong token is refused on both ends; an unreachable agent ends the run by name before any pair', async () => {
    const [h0, h1] = net.hosts as [BridgeHost, BridgeHost];
    const agent = agentAt(h0, ['--listen', `${h0.address}:${PORT}`]);
    await agent.waitForLine(/listening on/);
    const wrong = await coordinate(['--agents', agentList(), '--pairs', '10', '--connect-timeout', '3s'], {
      [AGENT_TOKEN_ENV]: 'not-the-token',
    });
    expect(wrong.code).toBe(4);
    expect(wrong.stderr).toContain(`agent ${h0.address}: ${h0.address}:${PORT}: refused:`);
    expect(wrong.stderr).toContain('wrong token');
    await agent.waitFor(/refused the coordinator at .*: wrong token/);
    // h1 has no agent: named, with the reason, before any pair runs (the agent at h0 is left alone).
    const unreachable = await coordinate([
      '--agents',
      agentList(),
      '--pairs',
      '10',
      '--connect-timeout',
      '2s',
    ]);
    expect(unreachable.code).toBe(4);
    expect(unreachable.stderr).toContain(`${h1.address}:${PORT}`);
    expect(unreachable.stderr).toMatch(/ECONNREFUSED|EHOSTUNREACH|within/);
    expect(unreachable.stdout).toBe('');
    expect(await agent.stop('SIGTERM')).toBe(130);
  });
});

describe('agents started as the Kubernetes manifests start them', () => {
  const plan = planFromDefaults({ agents: 2, pairs: 300, dropEarlyRst: true, name: 'so11' });
  const [, , agentJob, coordinatorJob] = buildManifests(plan) as [unknown, unknown, Job, Job];
  const agentContainer = agentJob.spec?.template.spec?.containers[0];
  const coordinatorContainer = coordinatorJob.spec?.template.spec?.containers[0];
  const plainEnv = (container: typeof agentContainer) =>
    Object.fromEntries(
      (container?.env ?? []).filter((entry) => entry.value !== undefined).map((e) => [e.name, e.value]),
    );
  const names = agentNames(plan);

  beforeAll(() => {
    // The cluster DNS of the headless Service, as a hosts file in every namespace.
    const entries = Object.fromEntries(
      names.map((name, index) => [name, net.hosts[index]?.address as string]),
    );
    for (const host of net.hosts) net.hostsFile(host, entries);
  });

  /** The pod's command (after `node --import tsx scripts/stress.ts`) and env, with the Indexed Job's index. */
  function startPod(index: number, env: NodeJS.ProcessEnv = {}): Child {
    const host = net.hosts[index] as BridgeHost;
    const args = (agentContainer?.command ?? []).slice(4);
    expect(args[0]).toBe('agent');
    const child = startScript('scripts/stress.ts', [...args, '--workers', '1'], {
      netns: host.namespace,
      env: {
        ...process.env,
        ...plainEnv(agentContainer),
        [AGENT_TOKEN_ENV]: TOKEN,
        [AGENT_INDEX_ENV]: String(index),
        ...env,
      },
      stdin: 'ignore',
    });
    children.push(child);
    return child;
  }

  it('agents find each other by their DNS names; the coordinator dials the names the manifests give it', async () => {
    const pods = [startPod(0), startPod(1)];
    await Promise.all(pods.map((pod) => pod.waitForLine(/listening on 0\.0\.0\.0:7411/)));
    const args = (coordinatorContainer?.command ?? []).slice(4);
    const json = join(dir, 'k8s.json');
    const run = await coordinate([...args, '--json', json]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('so11-agent-0');
    const result = JSON.parse(readFileSync(json, 'utf8')) as DistributedResult;
    expect(result.pairs).toMatchObject({ planned: 300, established: 300 });
    expect(result.agents.map((agent) => agent.name)).toEqual(['so11-agent-0', 'so11-agent-1']);
    for (const pod of pods) expect(await pod.exited).toBe(0);
    for (const host of net.hosts) expect(net.ruleset(host)).toBe('');
  });

  it('an agent whose index or peer list differs refuses the run, naming the difference', async () => {
    // Index 1 given to the pod at index 0's address: it names itself so11-agent-1, which is not who was dialled.
    const swapped = [startPod(0, { [AGENT_INDEX_ENV]: '1' }), startPod(1)];
    await Promise.all(swapped.map((pod) => pod.waitForLine(/listening on/)));
    const full = (coordinatorContainer?.command ?? []).slice(4);
    const at = full.indexOf('--connect-timeout');
    const args = [...full.slice(0, at), ...full.slice(at + 2), '--connect-timeout', '5s'];
    const run = await coordinate(args);
    expect(run.code).toBe(4);
    expect(run.stderr).toMatch(/agent so11-agent-0: .*answers as agent 'so11-agent-1', not 'so11-agent-0'/);
    await Promise.all(swapped.map((pod) => pod.stop('SIGTERM')));

    // Peers listed in another order: the agent refuses, naming the order.
    const reordered = [
      startPod(0, { SIMOPEN_AGENT_PEERS: [...names].reverse().join(','), [AGENT_INDEX_ENV]: '1' }),
      startPod(1),
    ];
    await Promise.all(reordered.map((pod) => pod.waitForLine(/listening on/)));
    const refused = await coordinate(args);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(
      /so11-agent-0.*index: so11-agent-0 is agent 1 of so11-agent-1,so11-agent-0/,
    );
    expect(refused.stdout).toBe('');
    await Promise.all(reordered.map((pod) => pod.stop('SIGTERM')));
  });
});

describe('stress.ts --agents --help', () => {
  it('is quoted verbatim in docs/distributed.md', async () => {
    const child = startScript('scripts/stress.ts', ['--agents', 'A:PORT,B:PORT', '--help'], {
      stdin: 'ignore',
    });
    expect(await child.exited).toBe(0);
    const doc = readFileSync(new URL('../../docs/distributed.md', import.meta.url), 'utf8');
    // When this fails: paste the output of `npx tsx scripts/stress.ts --agents A:PORT,B:PORT --help` into the doc.
    expect(doc).toContain(
      `$ npx tsx scripts/stress.ts --agents A:PORT,B:PORT --help\n${child.stdout()}\`\`\``,
    );
  });
});
