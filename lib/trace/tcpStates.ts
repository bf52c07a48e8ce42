/**
 * The names and numbers Linux uses for TCP states (tracepoint symbols like TCP_SYN_RECV, /proc/net/tcp's
 * hex `st` column), mapped to the 11 states of RFC 9293 under the names simopen prints.
 */
import type { TcpState } from './types.ts';

/**
 * Linux's enum tcp_state (include/net/tcp_states.h), number -> our name. TCP_NEW_SYN_RECV (12) is
 * a request mini-socket of a listener, i.e. a half-open connection in SYN_RECEIVED.
 */
const KERNEL_STATES: Record<number, { kernel: string; state: TcpState }> = {
  1: { kernel: 'TCP_ESTABLISHED', state: 'ESTABLISHED' },
  2: { kernel: 'TCP_SYN_SENT', state: 'SYN_SENT' },
  3: { kernel: 'TCP_SYN_RECV', state: 'SYN_RECEIVED' },
  4: { kernel: 'TCP_FIN_WAIT1', state: 'FIN_WAIT_1' },
  5: { kernel: 'TCP_FIN_WAIT2', state: 'FIN_WAIT_2' },
  6: { kernel: 'TCP_TIME_WAIT', state: 'TIME_WAIT' },
  7: { kernel: 'TCP_CLOSE', state: 'CLOSED' },
  8: { kernel: 'TCP_CLOSE_WAIT', state: 'CLOSE_WAIT' },
  9: { kernel: 'TCP_LAST_ACK', state: 'LAST_ACK' },
  10: { kernel: 'TCP_LISTEN', state: 'LISTEN' },
  11: { kernel: 'TCP_CLOSING', state: 'CLOSING' },
  12: { kernel: 'TCP_NEW_SYN_RECV', state: 'SYN_RECEIVED' },
};

const BY_KERNEL_NAME = new Map(Object.values(KERNEL_STATES).map((entry) => [entry.kernel, entry.state]));

/** 'TCP_SYN_RECV' -> 'SYN_RECEIVED'; undefined for a name Linux does not use. */
export function stateFromKernelName(name: string): TcpState | undefined {
  return BY_KERNEL_NAME.get(name);
}

/** Linux's state number (as in /proc/net/tcp's `st`, hex there) -> our name. */
export function stateFromKernelNumber(value: number): TcpState | undefined {
  return KERNEL_STATES[value]?.state;
}
