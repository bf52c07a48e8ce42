/**
 * `stress.ts --lab TOPOLOGY`: every pair across real NAT routers. This process builds a lab of
 * network namespaces (lib/lab: a router per private host, with its behaviour and loss) plus a
 * management network, then runs itself again inside the management namespace as the coordinator, and
 * removes the lab when that copy ends, however it ends. The coordinator starts one agent per private
 * host (`stress.ts agent`, reached on its management address), watches every router's conntrack,
 * runs the pairs (lib/coordinator/runDistributed.ts) and reports: the merged statistics, each agent,
 * each link with what the NAT matrix predicts for its routers, and each router's conntrack figures.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { newToken } from '../agent/tokenProof.ts';
import { AGENT_TOKEN_ENV } from '../agent/types.ts';
import { type Child, INTERRUPT_SIGNALS, reexecSelf, startScript } from '../core/childProcess.ts';
import { EXIT, ExitError } from '../core/errors.ts';
import { applyLab, probeLab, teardownLab } from '../lab/buildLab.ts';
import { startLabJanitor } from '../lab/labJanitor.ts';
import { MANAGEMENT_HOST, managementAddress, withManagementNetwork } from '../lab/managementNetwork.ts';
import { expectationFor } from '../lab/matrixRows.ts';
import { formatBehaviour, planLab } from '../lab/topology.ts';
import type { LabHost, LabPlan } from '../lab/types.ts';
import { insideLabUserNamespace, reexecInLabUserNamespace } from '../lab/userNamespace.ts';
import { HOLD_MALLOC_ARENA_MAX } from '../stress/chooseMode.ts';
import { STRESS_HELP } from '../stress/options.ts';
import { deliverResult, openRunOutputs, watchStopSignals } from '../stress/stressCommand.ts';
import { AgentStartError } from './agentClient.ts';
import {
  type ConntrackWatch,
  type EventCounts,
  execIn,
  readConntrackStats,
  watchConntrack,
} from './conntrack.ts';
import { type LabRunOptions, parseLabRunOptions } from './labOptions.ts';
import { printDistributed } from './printDistributed.ts';
import { runDistributed } from './runDistributed.ts';
import type { AgentSpec, ConntrackStats, DistributedResult, LabReport, RouterReport } from './types.ts';

/** The coordinator copy finds the lab's plan here. */
const LAB_PLAN_ENV = 'SIMOPEN_STRESS_LAB_PLAN';
/** Where agents listen on the management network (it is the lab's own: no other program is there). */
export const AGENT_CONTROL_PORT = 7411;

/** stress --lab exit codes beyond stress.ts's own. */
export const LAB_RUN_EXIT = {
  /** An agent could not start, be reached, or prepare the run (named, with the reason). */
  agentStart: 4,
  /** No lab can be built here (ip, nft or conntrack missing; not root and no user namespaces). */
  noLab: 5,
} as const;

/**
 * The routers' conntrack settings a run sets in each router's namespace (per namespace on Linux;
 * nf_conntrack_max is not: it is read-only there and reported as the limit it is). TIME_WAIT entries
 * live 120 s by default: at thousands of pairs per second they would fill the table; 10 s keeps it
 * far below the limit, and no 4-tuple comes again in a run (lib/agent/sidePlan.ts).
 */
export const ROUTER_CONNTRACK_TIMEOUTS: Record<string, number> = {
  time_wait: 10,
};
/**
 * Set in the lab's namespaces that hold or may hold a bridge (the LAN of a router several hosts
 * share, the internet, the management network) for the run: with br_netfilter loaded on the machine (container runtimes load it), every
 * frame a bridge passes goes through the IP netfilter hooks at the bridge as well; the routers' rules
 * match the routed path (iifname "lan" is the bridge either way), and a lab run's pairs are all routed.
 * `-e`: without br_netfilter the keys do not exist, and there is nothing to turn off.
 */
const BRIDGE_NETFILTER_OFF = [
  'net.bridge.bridge-nf-call-iptables=0',
  'net.bridge.bridge-nf-call-ip6tables=0',
  'net.bridge.bridge-nf-call-arptables=0',
];
/** The timeouts the report shows (read back from each router). */
const REPORTED_TIMEOUTS = [
  'syn_sent',
  'syn_recv',
  'established',
  'fin_wait',
  'close_wait',
  'last_ack',
  'time_wait',
  'close',
];

function sysctlName(timeout: string): string {
  return `net.netfilter.nf_conntrack_tcp_timeout_${timeout}`;
}

/** stress.ts --lab, whole; resolves with the exit code. */
export async function labRunCommand(args: string[]): Promise<number> {
  const cores = os.availableParallelism();
  const parsed = parseLabRunOptions(args, cores);
  if (parsed.help) {
    process.stdout.write(`${STRESS_HELP}\n`);
    return EXIT.ok;
  }
  const planText = process.env[LAB_PLAN_ENV];
  if (planText) return await coordinate(parsed, JSON.parse(planText) as LabPlan);
  return await buildAndRun(parsed);
}

/** The outer process: build the lab, run the coordinator inside it, remove the lab. */
async function buildAndRun(parsed: LabRunOptions): Promise<number> {
  const probe = probeLab();
  if (!probe.ok) throw new ExitError(`--lab: cannot build a lab here: ${probe.reason}`, LAB_RUN_EXIT.noLab);
  if (spawnSync('conntrack', ['--version'], { encoding: 'utf8' }).error)
    throw new ExitError(
      '--lab: conntrack (conntrack-tools) is not installed; npm run setup as root installs it',
      LAB_RUN_EXIT.noLab,
    );
  if (process.getuid?.() !== 0 && !insideLabUserNamespace()) return await reexecInLabUserNamespace();
  // The output files are checked before the lab is built (the coordinator opens them again inside it).
  openRunOutputs(parsed.options).close();

  const plan = withManagementNetwork(planLab(String(process.pid), parsed.topology));
  const hosts = plan.hosts.filter((host) => host.role === 'host');
  process.stderr.write(
    `stress: building lab ${plan.id}: ${hosts.map((host) => `${host.name} behind ${behaviourOf(routerOf(plan, host))}`).join(', ')}\n`,
  );
  // A signal while the lab is being built: finish building, remove it, and stop there.
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted = signal;
  };
  for (const signal of INTERRUPT_SIGNALS) process.on(signal, onSignal);
  // Removes the lab if this process is killed before it can (SIGKILL): the exit handler cannot run then.
  const janitor = process.getuid?.() === 0 ? startLabJanitor(plan.id) : undefined;
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    janitor?.dismiss();
    const { problems } = teardownLab(plan);
    for (const problem of problems) process.stderr.write(`stress: removing lab ${plan.id}: ${problem}\n`);
  };
  process.once('exit', remove);
  try {
    try {
      applyLab(plan);
    } catch (error) {
      throw new ExitError(
        `--lab: building lab ${plan.id} failed: ${error instanceof Error ? error.message : error}`,
        EXIT.failure,
      );
    }
    for (const signal of INTERRUPT_SIGNALS) process.off(signal, onSignal);
    if (interrupted) {
      process.stderr.write(`stress: ${interrupted}: stopped before the first pair\n`);
      return EXIT.interrupted;
    }
    const management = plan.hosts.find((host) => host.name === MANAGEMENT_HOST) as LabHost;
    return await reexecSelf(
      ['ip', 'netns', 'exec', management.namespace],
      { [LAB_PLAN_ENV]: JSON.stringify(plan), [AGENT_TOKEN_ENV]: newToken() },
      'stress: the coordinator in the lab',
    );
  } finally {
    for (const signal of INTERRUPT_SIGNALS) process.off(signal, onSignal);
    remove();
    process.off('exit', remove);
  }
}

/** "eim:apdf:drop" of a router host. */
function behaviourOf(router: LabHost): string {
  return router.behaviour ? formatBehaviour(router.behaviour) : '?';
}

function routerOf(plan: LabPlan, host: LabHost): LabHost {
  return plan.hosts.find((entry) => entry.name === `${host.name}-nat`) as LabHost;
}

/** The coordinator, inside the management namespace of a built lab. */
async function coordinate(parsed: LabRunOptions, plan: LabPlan): Promise<number> {
  const { options, workersPerAgent } = parsed;
  const token = process.env[AGENT_TOKEN_ENV];
  if (!token) throw new Error(`${AGENT_TOKEN_ENV} is not set in the coordinator`);
  const outputs = openRunOutputs(options);
  const { json, log, report: htmlReport } = outputs;
  const signals = watchStopSignals();
  const hosts = plan.hosts.filter((host) => host.role === 'host');
  const routers = hosts.map((host) => routerOf(plan, host));
  const agentEnv: NodeJS.ProcessEnv = {
    ...process.env,
    [AGENT_TOKEN_ENV]: token,
    // A hold's agents keep fewer malloc arenas, as a local hold's process does (lib/stress/chooseMode.ts).
    ...(options.holdMs > 0 && process.env.MALLOC_ARENA_MAX === undefined
      ? { MALLOC_ARENA_MAX: HOLD_MALLOC_ARENA_MAX }
      : {}),
  };
  delete agentEnv[LAB_PLAN_ENV];
  const children: Child[] = [];
  let watches: ConntrackWatch[] = [];
  try {
    await Promise.all(
      routers.map((router) =>
        execIn(router.namespace, [
          'sysctl',
          '-qw',
          ...Object.entries(ROUTER_CONNTRACK_TIMEOUTS).map(
            ([name, seconds]) => `${sysctlName(name)}=${seconds}`,
          ),
        ]),
      ),
    );
    await Promise.all(
      plan.hosts
        .filter((host) => host.role === 'router' || host.role === 'internet' || host.role === 'management')
        // Only speed depends on it: where it cannot be set, the run goes on as the lab was built.
        .map((host) =>
          execIn(host.namespace, ['sysctl', '-qew', ...BRIDGE_NETFILTER_OFF]).catch(() => undefined),
        ),
    );
    hosts.forEach((host, index) => {
      children.push(
        startScript(
          'scripts/stress.ts',
          [
            'agent',
            '--listen',
            `${managementAddress(index)}:${AGENT_CONTROL_PORT}`,
            '--name',
            host.name,
            '--once',
            '--workers',
            String(workersPerAgent),
          ],
          { netns: host.namespace, env: agentEnv, stdin: 'ignore' },
        ),
      );
    });
    await Promise.all(
      children.map((child, index) =>
        child.waitForLine(/listening on/, 60_000).catch(async () => {
          const code = await Promise.race([
            child.exited,
            new Promise((resolve) => setTimeout(resolve, 1000)),
          ]);
          const said = child.stderr().trim().split('\n').filter(Boolean).at(-1) ?? 'no message';
          throw new AgentStartError(
            hosts[index]?.name ?? '?',
            typeof code === 'number'
              ? `could not start (exit ${code}): ${said}`
              : `did not start listening within 60 s: ${said}`,
          );
        }),
      ),
    );
    const agents: AgentSpec[] = hosts.map((host, index) => {
      const router = routers[index] as LabHost;
      return {
        name: host.name,
        control: { host: managementAddress(index), port: AGENT_CONTROL_PORT },
        bindAddress: host.addresses[0] as string,
        publicAddress: router.addresses[0] as string,
        sharedClock: true,
        where: `${host.addresses[0]} behind ${router.name} (${behaviourOf(router)}), public ${router.addresses[0]}`,
      };
    });
    let before: ConntrackStats[] = [];
    let counts: (EventCounts & { peakEntries: number })[] = [];
    const problems: string[] = [];
    const result = await runDistributed({
      options,
      agents,
      token,
      modeReason: `${hosts.length} agents in lab ${plan.id}, every pair across two NAT routers: ${routers
        .map((router) => `${router.name} ${behaviourOf(router)}`)
        .join(', ')}`,
      stop: signals.stop,
      log,
      silenceMs: 5000,
      connectTimeoutMs: 30_000,
      workersPerAgent,
      beforeFirstPair: async () => {
        before = await Promise.all(routers.map((router) => readConntrackStats(router.namespace)));
        watches = await Promise.all(
          routers.map((router) =>
            watchConntrack(router.namespace, { ports: options.ports, sampleEvery: parsed.conntrackSample }),
          ),
        );
        process.stderr.write(
          `stress: lab ${plan.id}: ${hosts.length} agents ready (${hosts.map((host) => host.name).join(', ')}); pairs start now\n`,
        );
      },
      afterLastPair: async () => {
        // The last closes' final ACKs reach the routers a moment after the sockets closed.
        await new Promise((resolve) => setTimeout(resolve, 300));
        counts = await Promise.all(watches.map((watch) => watch.stop()));
        watches = [];
      },
    });
    const lab = await labReport(plan, parsed, routers, before, counts, problems);
    result.lab = lab;
    matchLinks(result, routers);
    return await deliverResult(
      result,
      options,
      { out: process.stdout, json, report: htmlReport },
      () => printDistributed(result),
      async () => {
        for (const agent of result.agents)
          if (agent.lost)
            process.stderr.write(`stress: agent ${agent.name} was lost: ${agent.lost.reason}\n`);
      },
    );
  } catch (error) {
    if (error instanceof AgentStartError) throw new ExitError(error.message, LAB_RUN_EXIT.agentStart);
    throw error;
  } finally {
    signals.dispose();
    await Promise.all(watches.map((watch) => watch.stop().catch(() => undefined)));
    // Agents with --once end after the run; one that does not is stopped.
    await Promise.all(
      children.map((child) =>
        Promise.race([child.exited, new Promise((resolve) => setTimeout(resolve, 5000))]).then(() =>
          child.stop(),
        ),
      ),
    );
    outputs.close();
  }
}

async function labReport(
  plan: LabPlan,
  parsed: LabRunOptions,
  routers: LabHost[],
  before: ConntrackStats[],
  counts: (EventCounts & { peakEntries: number })[],
  problems: string[],
): Promise<LabReport> {
  const reports: RouterReport[] = [];
  for (const [index, router] of routers.entries()) {
    let after: ConntrackStats | undefined;
    let timeouts: Record<string, number> = {};
    let maxEntries = 0;
    try {
      after = await readConntrackStats(router.namespace);
      const names = REPORTED_TIMEOUTS.map(sysctlName);
      const values = (
        await execIn(router.namespace, ['sysctl', '-n', ...names, 'net.netfilter.nf_conntrack_max'])
      )
        .trim()
        .split('\n')
        .map(Number);
      timeouts = Object.fromEntries(REPORTED_TIMEOUTS.map((name, at) => [name, values[at] ?? Number.NaN]));
      maxEntries = values[REPORTED_TIMEOUTS.length] ?? 0;
    } catch (error) {
      problems.push(`${router.name}: ${error instanceof Error ? error.message : String(error)}`);
    }
    const seen = counts[index];
    const start = before[index];
    for (const line of seen?.warnings ?? []) problems.push(`${router.name}: conntrack -E said: ${line}`);
    if (!seen || !start || !after) {
      if (!seen)
        problems.push(`${router.name}: no conntrack events (the run stopped before its watch started)`);
      continue;
    }
    reports.push({
      name: router.name,
      behaviour: behaviourOf(router),
      before: start,
      after,
      peakEntries: seen.peakEntries,
      maxEntries,
      statesSeen: seen.statesSeen,
      newFromLan: seen.newFromLan,
      newFromWan: seen.newFromWan,
      portPreserved: seen.portPreserved,
      portChanged: seen.portChanged,
      eventsLost: seen.eventsLost,
      eventsWatched: parsed.conntrackSample > 0,
      sampleEvery: parsed.conntrackSample,
      entriesWatched: seen.entriesWatched,
      timeouts,
    });
  }
  return {
    id: plan.id,
    topology: parsed.topologyText,
    kernel: os.release(),
    mapping:
      'predicted from the routers’ mapping: each side dials its peer at the peer router’s WAN address and the peer’s own port (what an endpoint-independent, port-preserving NAT maps it to)',
    routers: reports,
    problems,
  };
}

/** Each link's outcome against what the NAT matrix predicts for its two routers (lib/lab/matrixRows.ts). */
function matchLinks(result: DistributedResult, routers: LabHost[]): void {
  for (const link of result.links) {
    const [a, b] = link.agents.map((name) => routers.find((router) => router.name === `${name}-nat`));
    if (!a?.behaviour || !b?.behaviour) continue;
    const { expect, reason } = expectationFor(a.behaviour, b.behaviour, 'sync');
    const started = link.established + link.failed;
    link.expect = expect;
    link.reason = reason;
    const lost = result.agents.filter((agent) => agent.lost && link.agents.includes(agent.name));
    if (lost.length) {
      link.notJudged = `agent ${lost.map((agent) => agent.name).join(' and ')} lost`;
      continue;
    }
    link.matches =
      expect === 'all'
        ? link.failed === 0 && link.established > 0
        : expect === 'none'
          ? link.established === 0 && started > 0
          : link.established > 0;
  }
}
