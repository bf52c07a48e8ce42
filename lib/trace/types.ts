/**
 * The typed events that the state tracers produce and lib/connectionPaths.ts turns into paths: one
 * state change of one socket, seen from that socket's side (local = its own address and port).
 */
import type { Endpoint } from '../peer/dialSimultaneous.ts';
import type { TcpState } from './tcpStates.ts';

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

/** "family|local|remote": one side of one connection (a 4-tuple can be reused by later sockets). */
export function sideKey(event: { family: 4 | 6; local: Endpoint; remote: Endpoint }): string {
  return `${event.family}|${event.local.host}|${event.local.port}|${event.remote.host}|${event.remote.port}`;
}

/** The key of the other side of the same connection. */
export function peerKey(event: { family: 4 | 6; local: Endpoint; remote: Endpoint }): string {
  return sideKey({ family: event.family, local: event.remote, remote: event.local });
}
