/**
 * `stress.ts --agents HOST:PORT,... ...`, whole: a run across agents already running on other
 * machines or in pods. Resolves and reaches every agent before any pair runs (one that cannot be
 * resolved, reached, or refuses the token or the plan ends the run here, named, exit 4), runs the pairs
 * with the one distributed engine (lib/coordinator/runDistributed.ts), and reports as a local run does,
 * plus each agent and link. The agents' sides dial the address this coordinator reached their peer at.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { EXIT, ExitError } from '../core/errors.ts';
import { deliverResult, openRunOutputs, watchStopSignals } from '../stress/stressCommand.ts';
import { AgentStartError } from './agentClient.ts';
import {
  AGENTS_RUN_HELP,
  type AgentAddress,
  parseAgentsRunOptions,
  TIMING_WARMUP_MS,
} from './agentsOptions.ts';
import { type ConnectTiming, ConnectTimingRecorder, formatConnectTiming } from './connectTiming.ts';
import { LAB_RUN_EXIT } from './labCommand.ts';
import { printDistributed } from './printDistributed.ts';
import { runDistributed } from './runDistributed.ts';
import type { AgentSpec, DistributedResult } from './types.ts';

/** Exit code of a run whose agent could not be reached, or refused (the same as stress --lab's). */
export const AGENT_START_EXIT = LAB_RUN_EXIT.agentStart;

/** Resolves a host name (retrying while it does not resolve yet: a pod not yet scheduled) to one address. */
async function resolveAgent(agent: AgentAddress, until: number): Promise<string> {
  if (isIP(agent.host)) return agent.host;
  let last = '';
  for (;;) {
    try {
      return (await lookup(agent.host, { family: 4 })).address;
    } catch (error) {
      last = (error as NodeJS.ErrnoException).code ?? String(error);
    }
    if (performance.now() > until)
      throw new AgentStartError(agent.name ?? agent.host, `${agent.host} does not resolve (${last})`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

export async function agentsRunCommand(args: string[], cores: number): Promise<number> {
  const parsed = parseAgentsRunOptions(args, process.env, cores);
  if (parsed.help) {
    process.stdout.write(`${AGENTS_RUN_HELP}\n`);
    return EXIT.ok;
  }
  const { options } = parsed;
  const outputs = openRunOutputs(options);
  const { json, log, report: htmlReport } = outputs;
  const signals = watchStopSignals();
  try {
    const until = performance.now() + parsed.connectTimeoutMs;
    const addresses = await Promise.all(parsed.agents.map((agent) => resolveAgent(agent, until)));
    const hostsGiven = parsed.agents.map((agent) => agent.host);
    const agents: AgentSpec[] = parsed.agents.map((agent, index) => {
      const address = addresses[index] as string;
      const shared = hostsGiven.filter((host) => host === agent.host).length > 1;
      return {
        name: agent.name ?? (shared ? `${agent.host}:${agent.port}` : agent.host),
        anyName: agent.name === undefined,
        control: { host: address, port: agent.port },
        bindAddress: address,
        publicAddress: address,
        sharedClock: false,
        where: agent.host === address ? address : `${agent.host} (${address})`,
      };
    });
    if (!options.quiet)
      process.stderr.write(
        `stress: ${agents.length} agents: ${agents.map((agent) => agent.where).join(', ')}; reaching them\n`,
      );
    const remaining = Math.max(1000, Math.round(until - performance.now()));
    const timing = parsed.timedConnects ? new ConnectTimingRecorder() : undefined;
    const result = await runDistributed({
      options,
      agents,
      token: parsed.token,
      mode: 'agents',
      modeReason: `${agents.length} agents across hosts, every pair between two of them`,
      stop: signals.stop,
      log,
      silenceMs: 5000,
      connectTimeoutMs: remaining,
      workersPerAgent: parsed.workersPerAgent,
      ...(timing ? { onPair: (a, b, index, t0) => timing.record(a, b, index, t0) } : {}),
      beforeFirstPair: async () => {
        // Pings every second from the setup on: a few round trips before t0 is moved into each clock.
        if (timing) await new Promise((resolve) => setTimeout(resolve, TIMING_WARMUP_MS));
        if (!options.quiet)
          process.stderr.write(
            `stress: ${agents.length} agents ready (${agents.map((agent) => agent.name).join(', ')}); pairs start now\n`,
          );
      },
    });
    const timed: TimedResult = timing ? { ...result, connectTiming: timing.result(result.agents) } : result;
    return await deliverResult(
      timed,
      options,
      { out: process.stdout, json, report: htmlReport },
      () =>
        printDistributed(timed) +
        (timed.connectTiming ? `${formatConnectTiming(timed.connectTiming).join('\n')}\n` : ''),
      async () => {
        for (const agent of timed.agents)
          if (agent.lost)
            process.stderr.write(`stress: agent ${agent.name} was lost: ${agent.lost.reason}\n`);
      },
    );
  } catch (error) {
    if (error instanceof AgentStartError) throw new ExitError(error.message, AGENT_START_EXIT);
    throw error;
  } finally {
    signals.dispose();
    outputs.close();
  }
}

/** A run across agents with --timed-connects: how close each pair's two connects came. */
type TimedResult = DistributedResult & { connectTiming?: ConnectTiming };
