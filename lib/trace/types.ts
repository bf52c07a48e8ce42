/**
 * The vocabulary of tracing: the 11 TCP states, one state change of one socket as the tracers report
 * it (seen from that socket's side: local = its own address and port), the paths built from them, and
 * the kinds of open and close read off those paths. Leaf module: types and constant tables only.
 */
import type { Endpoint, PortRange } from '../core/types.ts';

/** The 11 TCP states of RFC 9293 under the names simopen prints. */
export const TCP_STATES = [
  'CLOSED',
  'LISTEN',
  'SYN_SENT',
  'SYN_RECEIVED',
  'ESTABLISHED',
  'FIN_WAIT_1',
  'FIN_WAIT_2',
  'CLOSE_WAIT',
  'CLOSING',
  'LAST_ACK',
  'TIME_WAIT',
] as const;

export type TcpState = (typeof TCP_STATES)[number];

/** 'kernel': the tracepoint saw every transition. 'sampled': /proc/net/tcp polled; short states missed. */
export type TraceSource = 'kernel' | 'sampled';

export interface StateChange {
  type: 'state';
  source: TraceSource;
  /** Microseconds on the tracer's clock (CLOCK_MONOTONIC for both tracers). */
  timestampUs: number;
  family: 4 | 6;
  local: Endpoint;
  remote: Endpoint;
  from: TcpState;
  to: TcpState;
}

/** The kernel's tcp:tcp_receive_reset: this socket got a RST (so a following CLOSE is not a TIME_WAIT hand-off). */
export interface ResetReceived {
  type: 'reset';
  source: 'kernel';
  timestampUs: number;
  family: 4 | 6;
  local: Endpoint;
  remote: Endpoint;
}

export type TraceEvent = StateChange | ResetReceived;

/** Where a record came from, for the first line of every report. */
export interface SourceLabel {
  source: TraceSource;
  /** For 'sampled': why the exact source was unavailable. */
  reason?: string;
  sampleIntervalMs?: number;
}

export interface PathStep {
  state: TcpState;
  /** When the socket entered the state (for the first step: when it left it, its time of entry is unknown). */
  timestampUs: number;
  /** timestampUs minus the origin of the offsets. */
  offsetUs: number;
  /**
   * Set on a TIME_WAIT that the tracepoint reports as FIN_WAIT_2/CLOSING -> CLOSE: Linux moves the
   * connection to a TIME_WAIT mini-socket there and does not report that state itself.
   */
  inferred?: true;
}

/** One side of one connection (a 4-tuple seen from one socket), from its first traced state to its last. */
export interface ConnectionPath {
  source: TraceSource;
  family: 4 | 6;
  local: Endpoint;
  remote: Endpoint;
  /** The state names in order, e.g. ['CLOSED', 'SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED']. */
  states: TcpState[];
  steps: PathStep[];
  startUs: number;
  endUs: number;
  /** The kernel reported a RST received by this socket. */
  resetReceived: boolean;
  /**
   * Given out before it ended because more sides were open than a streaming trace keeps
   * (trace.ts --max-open): a later transition of this socket starts a new path.
   */
  untracked?: true;
}

/** How a side opened: through SYN_RECEIVED after its own SYN, straight to ESTABLISHED, or from LISTEN. */
export type SideOpen = 'syn-received' | 'direct' | 'passive' | 'listener' | 'failed' | 'unknown';

/** How a connection opened: both sides through SYN_RECEIVED (crossing SYNs), one side only (hole-punch style), or by a listener. */
export const OPEN_KINDS = ['both-syn-received', 'one-sided', 'not-simultaneous', 'unknown'] as const;
export type OpenKind = (typeof OPEN_KINDS)[number];

/**
 * How a side closed, as the kernel showed it: FIN first, FIN second, both FINs crossing, a RST
 * received, a RST sent (abort), or not (yet). (The close a stress run asks for is stress's CloseMode.)
 */
export const CLOSE_KINDS = [
  'active',
  'passive',
  'simultaneous',
  'reset',
  'abort',
  'open',
  'unknown',
] as const;
export type CloseKind = (typeof CLOSE_KINDS)[number];

/** The two sides of one connection, paired, and their kinds. */
export interface ConnectionPair {
  /** sides[1] is missing when only one side was traced (the peer is on another host). */
  sides: [ConnectionPath, ConnectionPath?];
  open: OpenKind;
  close: [CloseKind, CloseKind?];
}

/**
 * What a streaming trace gives out once it is over: a connection (both sides, or the one side seen)
 * when its sides have ended, a listener, or a connect() attempt that never reached ESTABLISHED.
 */
export type TracedItem =
  | { kind: 'connection'; pair: ConnectionPair }
  | { kind: 'listener'; path: ConnectionPath }
  | { kind: 'failed-attempt'; path: ConnectionPath };

/** Running totals of a trace: items given out and the kinds of the connections among them. */
export interface TraceCounts {
  /** Connection sides, listeners and failed attempts (one path each). */
  paths: number;
  /** Connections (one or two sides each). */
  connections: number;
  listeners: number;
  failedAttempts: number;
  openKinds: Record<OpenKind, number>;
  /** Per side. */
  closeKinds: Record<CloseKind, number>;
}

/** What a streaming trace says when it starts. */
export interface TraceStart {
  label: SourceLabel;
  /** The kernel trace instance (kernel source only). */
  instance?: string;
  portRange?: PortRange;
  /** Addresses filtered on (names resolved). */
  hosts?: string[];
  /** The command traced (trace.ts -- COMMAND). */
  command?: string[];
  /** The most sides kept at once (open, or ended and waiting for their peer). */
  maxOpen: number;
}

/** An inferred TIME_WAIT looked up in the socket table (/proc/net/tcp state 06). */
export interface TimeWaitCheck {
  endpoints: string;
  confirmed: boolean;
}

/** What a streaming trace says when it ends. */
export interface TraceSummary {
  label: SourceLabel;
  instance?: string;
  /** Events the kernel dropped (ring buffer full); 0 means the record is complete. */
  lostEvents: number;
  counts: TraceCounts;
  /** Sides given out before they ended because more than maxOpen were kept. */
  untracked: number;
  maxOpen: number;
  /** The most sides kept at once. */
  peakKept: number;
  /** With --confirm-time-wait: how the checks came out. */
  timeWait?: { confirmed: number; notConfirmed: number };
  /** The tracer's own peak resident set size. */
  peakRssBytes: number;
  /** The exit code the tracer ends with (the command's, with -- COMMAND). */
  exitCode?: number;
}

/** A pair a program planned: its id and both sides' local endpoints (each side dials the other). */
export interface PlannedPair {
  id: number;
  a: Endpoint;
  b: Endpoint;
}

/** A planned pair's open kind: 'not-established' when no side reached ESTABLISHED. */
export const PAIR_OPEN_KINDS = [...OPEN_KINDS, 'not-established'] as const;
export type PairOpenKind = (typeof PAIR_OPEN_KINDS)[number];
export const SIDE_CLOSE_KINDS = [...CLOSE_KINDS, 'not-established'] as const;
export type SideCloseKind = (typeof SIDE_CLOSE_KINDS)[number];

export interface PairKinds {
  open: PairOpenKind;
  close: [SideCloseKind, SideCloseKind];
}
