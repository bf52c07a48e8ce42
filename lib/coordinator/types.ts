/**
 * The vocabulary of the coordinator: the agents it drives, the links it plans between them, and what
 * a distributed run reports beyond a local one (a breakdown per agent and per link, and in the lab the
 * routers' conntrack figures). Leaf module: types only.
 */
import type { AgentInfo, CpuTime } from '../agent/types.ts';
import type { Endpoint } from '../core/types.ts';
import type { RouterBehaviour } from '../lab/types.ts';
import type { Percentiles, StressResult } from '../stress/types.ts';

/** An agent as the coordinator plans with it. */
export interface AgentSpec {
  name: string;
  /** Given by address: named by its address, whatever name it announces (hosts may share one). */
  anyName?: boolean;
  /** Where its control channel listens. */
  control: Endpoint;
  /** Where its sockets bind (a lab host's private address). */
  bindAddress: string;
  /** What its peers dial: its public address (its router's WAN address in the lab). */
  publicAddress: string;
  /**
   * On this machine, so on this clock: the records' times need no offset. Agents on other machines
   * get the offset measured on the control channel (AgentClient.clockOffsetMs).
   */
  sharedClock: boolean;
  /** One phrase saying where it runs ("10.0.1.2 behind alice-nat, public 203.0.113.1"). */
  where: string;
}

/** Two agents whose pairs the run opens: side A on agent `a`, side B on agent `b` (indexes into the agents). */
export interface Link {
  link: number;
  a: number;
  b: number;
  /** Shifts the link's ports (lib/agent/sidePlan.ts) so one agent's links start apart. */
  portOffset: number;
}

/** Side statistics of one agent, from its encoded histograms and counters (exactly merged). */
export interface AgentBreakdown {
  name: string;
  where: string;
  /** Side A of this many pairs, side B of that many. */
  sidesA: number;
  sidesB: number;
  workers: number | null;
  sockets: string | null;
  /** Its sides, from its own statistics (null if it was lost before it sent them). */
  sides: { established: number; failed: number; cancelled: number; notStarted: number } | null;
  errors: Record<string, number>;
  /** From the side's start to its connect(), its established sides only. */
  connectMs: Percentiles | null;
  /** From the side's start to its socket's close. */
  sideMs: Percentiles | null;
  attempts: { p50: number; p99: number; max: number; mean: number } | null;
  bytesVerified: number;
  /** CPU time the agent process used during the run (its worker threads included), and its peak RSS. */
  cpu: CpuTime | null;
  peakRssBytes: number | null;
  /** Round trip on the control channel (median of the pings), and the clock offset it implies. */
  controlRttMs: number | null;
  clockOffsetMs: number | null;
  /** Set when the agent died or went silent during the run: why, and when (ms into the run). */
  lost?: { reason: string; atMs: number };
}

/** The pairs of one link, and in the lab what the NAT matrix predicts for its two routers. */
export interface LinkSummary {
  agents: [string, string];
  planned: number;
  established: number;
  failed: number;
  cancelled: number;
  notStarted: number;
  errors: Record<string, number>;
  /** The matrix's expectation for these two routers started together: all, none, some. */
  expect?: string;
  reason?: string;
  /** The outcome agrees with the expectation. */
  matches?: boolean;
  /** Why the outcome was not judged against the expectation (an agent of the link was lost). */
  notJudged?: string;
}

/** conntrack -S, summed over the CPUs. */
export interface ConntrackStats {
  found: number;
  invalid: number;
  insert: number;
  insert_failed: number;
  drop: number;
  early_drop: number;
  error: number;
  search_restart: number;
  clash_resolve: number;
  chaintoolong: number;
}

/** One NAT router's conntrack over the run. */
export interface RouterReport {
  name: string;
  behaviour: string;
  before: ConntrackStats;
  after: ConntrackStats;
  /** The table's entries: the most at once during the run, and the limit (global: nf_conntrack_max is per machine). */
  peakEntries: number;
  maxEntries: number;
  /** Watched entries (entriesWatched) that entered each TCP state during the run, from the event stream. */
  statesSeen: Record<string, number>;
  /** The events of 1 in this many new entries were watched (1: every entry; 0: none, --conntrack-events off). */
  sampleEvery: number;
  /** New entries whose events were watched (every sampleEvery-th, chosen in the kernel). */
  entriesWatched: number;
  /** New entries made by the router's host's own connections, and by connections from the WAN (EIF); every entry, counted in the kernel. */
  newFromLan: number;
  newFromWan: number;
  /** Of newFromLan: mapped to the host's own port, and mapped to another (a port clash, or random by design). */
  portPreserved: number;
  portChanged: number;
  /** Events the kernel could not deliver (socket buffer full): the states are then lower bounds. */
  eventsLost: boolean;
  /** The event stream was watched (states, directions, ports); false with --conntrack-events off. */
  eventsWatched: boolean;
  /** The per-namespace conntrack timeouts the run set and used, in seconds. */
  timeouts: Record<string, number>;
}

export interface LabReport {
  id: string;
  topology: string;
  kernel: string;
  /** How the peers' public endpoints were learned. */
  mapping: string;
  routers: RouterReport[];
  /** Problems with the conntrack figures (a monitor that failed): the run itself stands. */
  problems: string[];
}

/** A distributed run's summary: a local run's, plus the agents, the links and (in the lab) the routers. */
export interface DistributedResult extends StressResult {
  /** CPU time the coordinator used from the first pair to the last. */
  coordinatorCpu: CpuTime;
  agents: AgentBreakdown[];
  links: LinkSummary[];
  lab?: LabReport;
}

/** Which agent runs where, for the report: an agent's info as it announced it. */
export interface AgentReady {
  spec: AgentSpec;
  info: AgentInfo;
}

export type { RouterBehaviour };
