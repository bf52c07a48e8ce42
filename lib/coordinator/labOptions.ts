/**
 * `stress.ts --lab TOPOLOGY ...` command line -> typed, validated options. The run's own flags are
 * stress.ts's (parsed by its parser, so they mean and check the same); --lab takes lab.ts's topology
 * syntax; the flags that belong to a local run only are refused. Pure: every problem is a UsageError
 * before the lab is built.
 */
import { hasFlag, takeOwnFlags } from '../core/cli.ts';
import { EXIT, ExitError, UsageError } from '../core/errors.ts';
import { openFilesLimit } from '../core/processLimits.ts';
import { parseTopology } from '../lab/topology.ts';
import type { Topology } from '../lab/types.ts';
import { DEFAULT_CONCURRENCY_PER_WORKER, DESCRIPTOR_RESERVE, parseStressOptions } from '../stress/options.ts';
import type { StressOptions } from '../stress/types.ts';

/** Lab hosts a run takes: two at least (a pair needs two sides), six at most (lab.ts's limit). */
export const LAB_HOSTS = { min: 2, max: 6 } as const;

/**
 * stress.ts flags that describe a local run only: refused by --lab and --agents, one line each, before
 * anything is built or reached.
 */
export const LOCAL_RUN_ONLY: Record<string, string> = {
  mode: 'a run through agents is its own mode',
  addresses: 'an agent has one address; the ports make every 4-tuple unique',
  warmup: 'agents load their code before the clock starts, without throwaway pairs',
  trace: 'not available through agents yet',
  open: 'through agents both sides connect when their batch arrives; how the SYNs meet is up to what stands between them',
  'early-syn':
    'what meets an early SYN is up to what stands between the agents (a router, a host, --drop-early-rst)',
  delay: 'the held link is the local sandbox’s',
  sweep: 'not available through agents yet',
  processes: 'each agent is one process in its own network location',
};

/**
 * --hold through a lab: each agent is one process, holding one side of each pair of its links, so a
 * hold one agent cannot open (its share of the sides, under the open-files limit) is refused before
 * the lab is built.
 */
export function checkAgentHold(options: StressOptions, hosts: number, limit: number | undefined): void {
  if (limit === undefined) return;
  const atOnce =
    options.pairs === undefined ? options.concurrency : Math.min(options.concurrency, options.pairs);
  // Every host is on hosts - 1 of the hosts * (hosts - 1) / 2 links: 2 / hosts of the pairs.
  const sides = Math.ceil((2 * atOnce) / hosts);
  const most = limit - DESCRIPTOR_RESERVE;
  if (sides <= most) return;
  const n = (value: number) => value.toLocaleString('en-US');
  throw new ExitError(
    `--hold: ${n(atOnce)} pairs open at once put ${n(sides)} sides on each of the ${hosts} agents, and an agent (one process) may open ${n(limit)} descriptors (RLIMIT_NOFILE): at most ${n(Math.floor((most * hosts) / 2))} pairs at once through this lab. Lower --pairs or --concurrency, or add hosts`,
    EXIT.usage,
  );
}

export interface LabRunOptions {
  options: StressOptions;
  topology: Topology;
  /** The topology as given (for the report). */
  topologyText: string;
  workersPerAgent: number;
  /**
   * Each router's conntrack event stream (the TCP states entries entered): of 1 in how many new
   * entries (chosen in the kernel); 1 every entry, 0 none (--conntrack-events on, all, off).
   */
  conntrackSample: number;
}

/** --conntrack-events on: the events of 1 in this many new entries per router are watched. */
export const CONNTRACK_SAMPLE_EVERY = 64;
const CONNTRACK_EVENTS: Record<string, number> = { on: CONNTRACK_SAMPLE_EVERY, all: 1, off: 0 };
const MISSING_TOPOLOGY = '--lab: missing TOPOLOGY (for example eim:apdf:drop,eim:apdf:drop)';

/**
 * Worker threads per agent when --workers is not given: twice the cores shared among the hosts (at
 * least 1, at most the cores). The lab's agents share this machine, and a pair's two sides take turns
 * (A sends, B answers): with one thread per core, the threads of all agents often wait on each other
 * at once while the cores idle (docs/distributed.md).
 */
export function defaultWorkersPerAgent(cores: number, hosts: number): number {
  return Math.min(cores, Math.max(1, Math.ceil((2 * cores) / hosts)));
}

/** Is this a lab run (does --lab appear before a "--")? */
export function isLabRun(args: readonly string[]): boolean {
  return hasFlag(args, 'lab');
}

export type ParsedLabRun = { help: true } | ({ help: false } & LabRunOptions);

export function parseLabRunOptions(args: readonly string[], cores: number): ParsedLabRun {
  const { values, given, rest } = takeOwnFlags(args, ['lab', 'conntrack-events'], [], (flag) =>
    flag === 'lab' ? MISSING_TOPOLOGY : `--${flag}: missing value`,
  );
  const topologyText = values.lab;
  const conntrackEvents = values['conntrack-events'];
  if (conntrackEvents !== undefined && !(conntrackEvents in CONNTRACK_EVENTS))
    throw new UsageError(`--conntrack-events: '${conntrackEvents}' is not on, all or off`);
  if (given.has('help')) return { help: true };
  for (const [flag, why] of Object.entries(LOCAL_RUN_ONLY))
    if (given.has(flag)) throw new UsageError(`--${flag} does not go with --lab: ${why}`);
  if (!topologyText) throw new UsageError(MISSING_TOPOLOGY);
  const topology = parseTopology(topologyText);
  const hosts = topology.hosts.length;
  if (hosts < LAB_HOSTS.min || hosts > LAB_HOSTS.max)
    throw new UsageError(
      `--lab: ${LAB_HOSTS.min} to ${LAB_HOSTS.max} routers (one per host, each host runs an agent), got ${hosts}`,
    );
  const parsed = parseStressOptions(rest, { cores, mode: 'sandbox' });
  if (parsed.help) return { help: true };
  const options = parsed.options;
  // --workers is per agent here: one agent per host, each with its pool.
  const workersPerAgent = given.has('workers') ? options.workers : defaultWorkersPerAgent(cores, hosts);
  // Held pairs stay in flight for the whole hold: all of them at once, as in a local run.
  if (!given.has('concurrency') && !(options.holdMs > 0 && options.pairs !== undefined)) {
    const concurrency = DEFAULT_CONCURRENCY_PER_WORKER * hosts * workersPerAgent;
    options.concurrency = options.pairs === undefined ? concurrency : Math.min(concurrency, options.pairs);
  }
  if (options.holdMs > 0) checkAgentHold(options, hosts, openFilesLimit());
  options.workers = workersPerAgent * hosts;
  return {
    help: false,
    options,
    topology,
    topologyText,
    workersPerAgent,
    conntrackSample: CONNTRACK_EVENTS[conntrackEvents ?? 'on'] as number,
  };
}
