import { describe, expect, it } from 'vitest';
import { stateFromKernelName, stateFromKernelNumber } from '../../lib/trace/tcpStates.ts';
import { TCP_STATES } from '../../lib/trace/types.ts';

describe('tcpStates', () => {
  it('names the 11 states and maps the kernel names and numbers', () => {
    expect(TCP_STATES).toHaveLength(11);
    expect(stateFromKernelName('TCP_SYN_RECV')).toBe('SYN_RECEIVED');
    expect(stateFromKernelName('TCP_FIN_WAIT1')).toBe('FIN_WAIT_1');
    expect(stateFromKernelName('TCP_FIN_WAIT2')).toBe('FIN_WAIT_2');
    expect(stateFromKernelName('TCP_CLOSE')).toBe('CLOSED');
    expect(stateFromKernelName('TCP_NEW_SYN_RECV')).toBe('SYN_RECEIVED');
    expect(stateFromKernelName('TCP_BOGUS')).toBeUndefined();
    expect(stateFromKernelNumber(0x06)).toBe('TIME_WAIT');
    expect(stateFromKernelNumber(0x0a)).toBe('LISTEN');
    expect(stateFromKernelNumber(0x0b)).toBe('CLOSING');
  });
});
