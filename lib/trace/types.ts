/**
 * The vocabulary of tracing: the 11 TCP states, one state change of one socket as the tracers report
 * it (seen from that socket's side: local = its own address and port), the paths built from them, and
 * the kinds of open and close read off those paths. Leaf module: types and constant tables only.
 */
import type { Endpoint } from '../core/types.ts';

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
}

/** How a side opened: through SYN_RECEIVED after its own SYN, straight to ESTABLISHED, or from LISTEN. */
export type SideOpen = 'syn-received' | 'direct' | 'passive' | 'listener' | 'failed' | 'unknown';

/**
 * How a connection opened: crossed (the two SYNs crossed in flight: both sides went SYN_SENT →
 * SYN_RECEIVED → ESTABLISHED), one-sided (one side only passed SYN_RECEIVED, hole-punch style), or by
 * a listener (not-simultaneous). The names users see in reports, JSON and logs.
 */
export const OPEN_KINDS = ['crossed', 'one-sided', 'not-simultaneous', 'unknown'] as const;
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
