/**
 * The 11 TCP states of RFC 9293 under the names simopen prints, and their mapping from the names and
 * numbers Linux uses (tracepoint symbols like TCP_SYN_RECV, /proc/net/tcp's hex `st` column).
 */

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

/** The 'TCP_*' name Linux uses for one of our states (its main one; SYN_RECEIVED -> TCP_SYN_RECV). */
export function kernelNameOf(state: TcpState): string {
  return Object.values(KERNEL_STATES).find((entry) => entry.state === state)?.kernel ?? state;
}

export function isTcpState(text: string): text is TcpState {
  return (TCP_STATES as readonly string[]).includes(text);
}
