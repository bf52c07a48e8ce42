/**
 * `stress.ts --agents HOST:PORT,... ...` command line -> typed, validated options: a run across agents
 * that are already running (`stress.ts agent --listen ...` on other machines, or pods). The run's own
 * flags are stress.ts's (parsed by its parser); the flags of a local run only are refused. Pure but for
 * the environment (the token may come from SIMOPEN_AGENT_TOKEN): every problem is a UsageError.
 */

import { isIP } from 'node:net';
import { agentNameOf } from '../agent/peerList.ts';
import { AGENT_TOKEN_ENV } from '../agent/types.ts';
import { hasFlag, parseDuration, parseHostPort, takeOwnFlags } from '../core/cli.ts';
import { UsageError } from '../core/errors.ts';
import { DEFAULT_CONCURRENCY_PER_WORKER, DEFAULT_PORTS, parseStressOptions } from '../stress/options.ts';
import type { StressOptions } from '../stress/types.ts';
import { LOCAL_RUN_ONLY } from './labOptions.ts';

export const AGENTS_RUN_USAGE =
  'stress.ts --agents HOST:PORT,HOST:PORT[,...] [--token T] [--connect-timeout D] [--rate N --timed-connects] [stress.ts run flags]';

export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
/** Timed connects: how long the coordinator pings the agents before the first pair (offset samples). */
export const TIMING_WARMUP_MS = 3000;

/** `stress.ts --agents LIST --help` (docs/distributed.md quotes it). */
export const AGENTS_RUN_HELP = `usage: ${AGENTS_RUN_USAGE}

A run across agents already running elsewhere (\`stress.ts agent --listen ADDR:PORT\` on each machine,
or the pods of deploy/kubernetes/): every two agents form a link, side A of each pair on one, side B on
the other, each side dialling the address this coordinator reached its peer at. One merged report.

  --agents LIST        the agents' control addresses, in order (host names or addresses with the
                       port). An agent is named by its host's first label (an address: by the address);
                       agents started with --peers check that they are given the same list
  --token T            the shared secret (default: the ${AGENT_TOKEN_ENV} environment variable)
  --connect-timeout D  how long to keep trying to resolve and reach each agent (default ${DEFAULT_CONNECT_TIMEOUT_MS / 1000}s);
                       one that cannot be reached by then ends the run, named, before any pair runs
  --ports LO-HI        the pairs' local ports on every agent (default ${DEFAULT_PORTS.race.first}-${DEFAULT_PORTS.race.last}; not an agent's control port)
  --workers N          worker threads per agent (default: the agent's own --workers)
  --timed-connects     with --rate: both sides of each pair connect at its due time on their own
                       clocks, corrected by each agent's clock offset measured on the control channel
                       (pings for ${TIMING_WARMUP_MS / 1000} s before the first pair); the report adds how far apart the
                       two connects came (|A - B| percentiles) and how many pairs crossed (opened on both
                       sides' first connect, no early RST)

The other flags are stress.ts's (--pairs, --duration, --rate, --concurrency, --payload, --close,
--timeout, --hold, --keepalive, --json, --log, --report, --threshold, --compare, --min-success,
--quiet). Between real
hosts a SYN that arrives before its peer's own connect() meets a RST: start the agents with
--drop-early-rst (docs/distributed.md).
exit codes: as stress.ts; 4 an agent could not be reached, refused the token or the run (named)`;

/** Refused with --agents: a local run's flags, and those of a lab run. */
const REFUSED: Record<string, string> = {
  ...LOCAL_RUN_ONLY,
  'conntrack-events': 'it is about the routers of a lab run (--lab)',
};

export interface AgentAddress {
  /** As given (a DNS name or an address). */
  host: string;
  port: number;
  /** The name it must announce, or undefined: whatever it announces (an agent given by address). */
  name: string | undefined;
}

export interface AgentsRunOptions {
  options: StressOptions;
  agents: AgentAddress[];
  token: string;
  connectTimeoutMs: number;
  /** Both sides connect at the pair's due time, offsets measured; the report shows the skew. */
  timedConnects: boolean;
  /** Worker threads per agent; undefined: each agent's own --workers. */
  workersPerAgent: number | undefined;
}

/** Is this a run across agents (does --agents appear before a "--")? */
export function isAgentsRun(args: readonly string[]): boolean {
  return hasFlag(args, 'agents');
}

export type ParsedAgentsRun = { help: true } | ({ help: false } & AgentsRunOptions);

const OWN_FLAGS = ['agents', 'token', 'connect-timeout'] as const;
const OWN_SWITCHES = ['timed-connects'] as const;

export function parseAgentsRunOptions(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  cores: number,
): ParsedAgentsRun {
  const { values: own, given, rest } = takeOwnFlags(args, OWN_FLAGS, OWN_SWITCHES);
  if (given.has('help')) return { help: true };
  for (const [flag, why] of Object.entries(REFUSED))
    if (given.has(flag)) throw new UsageError(`--${flag} does not go with --agents: ${why}`);
  const list = (own.agents ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  if (list.length < 2) throw new UsageError('--agents: at least two agents, HOST:PORT,HOST:PORT');
  const agents = list.map((entry): AgentAddress => {
    const endpoint = parseHostPort(entry, '--agents');
    return { ...endpoint, name: isIP(endpoint.host) ? undefined : agentNameOf(endpoint.host) };
  });
  const seen = new Set<string>();
  for (const agent of agents) {
    const key = agent.name ?? `${agent.host}:${agent.port}`;
    if (seen.has(key)) throw new UsageError(`--agents: ${key} comes twice`);
    seen.add(key);
  }
  const token = own.token ?? env[AGENT_TOKEN_ENV];
  if (!token) throw new UsageError(`--agents needs the agents' token: --token T or ${AGENT_TOKEN_ENV}`);
  const connectTimeoutMs =
    own['connect-timeout'] === undefined
      ? DEFAULT_CONNECT_TIMEOUT_MS
      : parseDuration(own['connect-timeout'], '--connect-timeout');
  const parsed = parseStressOptions(rest, { cores, mode: 'sandbox' });
  if (parsed.help) return { help: true };
  const options = parsed.options;
  if (!given.has('ports')) options.ports = { ...DEFAULT_PORTS.race };
  for (const agent of agents)
    if (agent.port >= options.ports.first && agent.port <= options.ports.last)
      throw new UsageError(
        `--ports ${options.ports.first}-${options.ports.last} holds the control port of ${agent.host}:${agent.port}`,
      );
  const timedConnects = given.has('timed-connects');
  if (timedConnects && options.rate === undefined)
    throw new UsageError('--timed-connects needs --rate N: the schedule both sides of every pair keep');
  const workersPerAgent = given.has('workers') ? options.workers : undefined;
  const workersForPlan = workersPerAgent ?? cores;
  if (!given.has('concurrency')) {
    const concurrency = DEFAULT_CONCURRENCY_PER_WORKER * agents.length * workersForPlan;
    options.concurrency = options.pairs === undefined ? concurrency : Math.min(concurrency, options.pairs);
  }
  options.workers = workersForPlan * agents.length;
  return { help: false, options, agents, token, connectTimeoutMs, timedConnects, workersPerAgent };
}
