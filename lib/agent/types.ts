/**
 * The vocabulary of stress agents: the control protocol between the coordinator (stress.ts) and an
 * agent (`stress.ts agent`), what an agent is asked to run (its side of each pair of its links), and
 * the compact side records it sends back. Leaf module: types and constant tables only.
 */
import type { PortRange } from '../core/types.ts';
import type { CloseMode, EncodedStats, SocketKind } from '../stress/types.ts';

/** The control protocol's version, carried in every frame header. */
export const CONTROL_VERSION = 1;
/** The first two bytes of every frame: "SO". */
export const FRAME_MAGIC = 0x534f;
/** magic (2 bytes), version (1), reserved (1), body length (4, big-endian). */
export const FRAME_HEADER_BYTES = 8;
/** The largest body an authenticated peer may send (a batch's side records fit many times over). */
export const MAX_FRAME_BYTES = 8 * 1024 * 1024;
/** Before authentication a peer gets no more than this per frame: a stranger cannot make us buffer much. */
export const MAX_PREAUTH_FRAME_BYTES = 4096;

/** Each end sends a ping at least this often. */
export const HEARTBEAT_MS = 1000;
/** An end that sent nothing for this long is taken as gone (an agent: lost; the coordinator: gone). */
export const DEFAULT_SILENCE_MS = 5000;
/** A connection must be authenticated within this long. */
export const AUTH_TIMEOUT_MS = 5000;

/** The failure code of a pair whose side was on an agent that died or went silent. */
export const AGENT_LOST = 'agent-lost';
/** Where a local run hands the token to the agents it starts (never on the command line). */
export const AGENT_TOKEN_ENV = 'SIMOPEN_AGENT_TOKEN';

/** Side A sends first and closes; side B answers (lib/agent/agentSide.ts). */
export type Role = 'a' | 'b';

/** What an error message says went wrong; the connection is closed after it. */
export const CONTROL_ERRORS = {
  /** The token proofs did not match. */
  auth: 'EAUTH',
  /** A frame of another protocol version. */
  version: 'EVERSION',
  /** A malformed or oversized frame, or a message out of place. */
  protocol: 'EPROTO',
  /** The agent already serves a coordinator. */
  busy: 'EBUSY',
  /** The agent could not prepare the run (its pool, its sockets). */
  setup: 'ESETUP',
} as const;
export type ControlErrorCode = (typeof CONTROL_ERRORS)[keyof typeof CONTROL_ERRORS];

/** How every side of a run opens, checks and closes (the same for every agent). */
export interface SideRunConfig {
  payload: number;
  close: CloseMode;
  sockets: SocketKind;
  timeoutMs: number;
  /** Open loop: pair N is due at t0 + N / rate seconds; undefined: each side starts when its batch arrives. */
  rate: number | undefined;
  /** The local ports of the pairs (lib/agent/sidePlan.ts pairPorts). */
  ports: PortRange;
  /** --hold: each established side stays open this long, sending a checked keepalive every keepaliveMs. */
  holdMs?: number;
  keepaliveMs?: number;
}

/** Int32 slots an agent shares with its worker threads. */
export const AGENT_CONTROL = {
  /** Non-zero: the whole run stops. */
  stop: 0,
  /** --hold: A sides held now (one per pair), for the coordinator's peak of pairs open at once. */
  heldA: 1,
  /** --hold: the peer's keepalives this agent's sides checked. */
  keepalives: 2,
  length: 3,
} as const;

/**
 * One link of the plan as one of its two agents sees it: every pair of the link has its side A on
 * one agent and its side B on the other. The peer is dialled at its public address (a NAT router's
 * WAN address in the lab) and at the port it binds: the mapping a port-preserving NAT gives.
 */
export interface LinkAssignment {
  link: number;
  role: Role;
  /** Where this agent binds its sockets of the link. */
  local: string;
  /** The address this agent dials: the peer's public (mapped) address. */
  peer: string;
  peerName: string;
  /** Shifts the link's ports, so an agent's links do not all start on the same ports. */
  portOffset: number;
}

/** CPU time a process used (its threads included), in milliseconds. */
export interface CpuTime {
  userMs: number;
  systemMs: number;
}

/** What an agent tells the coordinator once its pool is ready. */
export interface AgentInfo {
  name: string;
  pid: number;
  workers: number;
  sockets: SocketKind;
  /** Why net.Socket although bare handles were asked for. */
  socketsReason?: string;
  node: string;
  kernel: string;
  hostname: string;
}

/** Coordinator to agent. */
export type CoordinatorMessage =
  | { type: 'auth'; nonce: string; proof: string }
  | {
      type: 'setup';
      run: SideRunConfig;
      links: LinkAssignment[];
      /** Batches the coordinator may have in flight with this agent at once. */
      maxBatches: number;
      /** Worker threads (the agent's own --workers when absent). */
      workers?: number;
    }
  /** The run's epoch in this agent's clock (ms): due times and the records' times count from it. */
  | { type: 'start'; t0: number }
  /** Run this agent's side of pairs firstId.. (count of them), the link's pair indexes firstIndex.. */
  | { type: 'batch'; batch: number; link: number; firstId: number; firstIndex: number; count: number }
  /** Cancel the sides of these batches (their other side's agent is lost). */
  | { type: 'abandon'; batches: number[] }
  /** Start nothing more; cancel what is in flight; every batch still reports. */
  | { type: 'stop' }
  /** The run is over: send the side statistics, then the connection closes. */
  | { type: 'finish' }
  | { type: 'ping'; seq: number }
  | { type: 'error'; code: ControlErrorCode; message: string };

/** Agent to coordinator. */
export type AgentMessage =
  | { type: 'hello'; name: string; nonce: string }
  | { type: 'welcome'; proof: string }
  | { type: 'ready'; info: AgentInfo }
  /** A batch's side records (RECORD_FIELDS numbers per pair, in id order) and its error codes. */
  | { type: 'result'; batch: number; records: number[]; errors: string[] }
  /** The agent's side statistics over the run (exactly mergeable: lib/stress/pairStats.ts), and its peak RSS. */
  | { type: 'stats'; stats: EncodedStats; peakRssBytes: number; cpu: CpuTime; keepalivesVerified?: number }
  /**
   * With its clock, and with --hold the A sides it holds now, its resident set now, and the highest it
   * was since the previous pong (sampled every RSS_SAMPLE_MS).
   */
  | { type: 'pong'; seq: number; time: number; heldA?: number; rssBytes?: number; rssPeakBytes?: number }
  | { type: 'error'; code: ControlErrorCode; message: string };

export type ControlMessage = CoordinatorMessage | AgentMessage;

/**
 * A side record, flat: outcome, error (index into the batch's error table, -1 for none), connect()
 * attempts, establishUs (from the side's start, -1 never), startUs (from t0; a side may start a
 * moment before it), durationUs (-1: the side never started), bytes verified, close outcome.
 */
export const RECORD_FIELDS = 8;
export const SIDE_OUTCOMES = ['established', 'failed', 'cancelled', 'notStarted'] as const;
export type SideOutcome = (typeof SIDE_OUTCOMES)[number];
export const CLOSE_CODES = [null, 'fin', 'rst'] as const;

/** A Piscina task of an agent: its side of a batch of pairs (workers/agentWorker.ts). */
export interface SideTask {
  batch: number;
  firstId: number;
  firstIndex: number;
  count: number;
  role: Role;
  local: string;
  peer: string;
  portOffset: number;
  config: SideRunConfig;
  /** The run's epoch (ms, this process's clock). */
  t0: number;
  /** Int32 AGENT_CONTROL: the run's stop, and what the sides count for it. */
  control: SharedArrayBuffer;
  /** Int32 [cancelled]: this batch is abandoned. */
  cancel: SharedArrayBuffer;
}

export interface SideTaskResult {
  records: number[];
  errors: string[];
}
