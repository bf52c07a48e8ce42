/** Recorded kernel trace text: parsed, built into connection paths, summarized and formatted. */
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { buildConnectionPaths, summarizeConnections } from '../../lib/trace/connectionPaths.ts';
import { formatTraceReport } from '../../lib/trace/formatPaths.ts';
import { eventFilter, parseTraceLine } from '../../lib/trace/kernelTracepoint.ts';
import { fixture, parseText } from '../helpers/traceFixtures.ts';

describe('parsing recorded trace text', () => {
  it('parses inet_sock_set_state lines (v4 and v6), resets and lost-event notes', () => {
    const [first] = parseText(fixture('simultaneous-open-then-close.trace.txt'));
    expect(first).toEqual({
      type: 'state',
      source: 'kernel',
      timestampUs: 677_720_167,
      family: 4,
      local: { host: '127.0.0.1', port: 31000 },
      remote: { host: '127.0.0.1', port: 31001 },
      from: 'CLOSED',
      to: 'SYN_SENT',
    });
    const v6 = parseText(fixture('ipv6-refused-and-reset.trace.txt'));
    expect(v6[0]).toMatchObject({
      family: 6,
      local: { host: '::1', port: 31010 },
      remote: { host: '::1', port: 31011 },
    });
    expect(v6[1]).toMatchObject({ type: 'reset', family: 6, local: { port: 31010 } });
    expect(parseTraceLine('CPU:1 [LOST 42 EVENTS]')).toEqual({ type: 'lost', count: 42 });
    expect(parseTraceLine('# tracer: nop')).toBeNull();
    expect(eventFilter({ portRange: { first: 31000, last: 31009 } })).toBe(
      'protocol == 6 && (sport >= 31000 && sport <= 31009 || dport >= 31000 && dport <= 31009)',
    );
    if (os.endianness() === 'LE')
      expect(eventFilter({ hosts: ['127.0.0.1', '10.0.1.2'] }, false)).toBe(
        '(saddr == 0x0100007f || daddr == 0x0100007f || saddr == 0x0201000a || daddr == 0x0201000a)',
      );
    // IPv6 addresses are filtered in user space only.
    expect(eventFilter({ hosts: ['::1'] }, false)).toBeUndefined();
  });

  it('builds both sides of a crossing-SYN open and a simultaneous close, TIME_WAIT inferred', () => {
    const paths = buildConnectionPaths(parseText(fixture('simultaneous-open-then-close.trace.txt')));
    const states = paths.map((p) => `${p.local.port}: ${p.states.join(' ')}`);
    expect(states).toEqual([
      '31000: CLOSED SYN_SENT SYN_RECEIVED ESTABLISHED FIN_WAIT_1 FIN_WAIT_2 TIME_WAIT',
      '31001: CLOSED SYN_SENT SYN_RECEIVED ESTABLISHED CLOSE_WAIT LAST_ACK CLOSED',
      '31000: CLOSED SYN_SENT SYN_RECEIVED ESTABLISHED FIN_WAIT_1 CLOSING TIME_WAIT',
      '31001: CLOSED SYN_SENT ESTABLISHED FIN_WAIT_1 CLOSING TIME_WAIT',
    ]);
    expect(paths[0]?.steps.at(-1)).toMatchObject({ state: 'TIME_WAIT', inferred: true });
    expect(paths[1]?.steps.at(-1)?.inferred).toBeUndefined();
    const summary = summarizeConnections(paths);
    expect(summary.pairs.map((pair) => [pair.open, ...pair.close])).toEqual([
      ['crossed', 'active', 'passive'],
      ['one-sided', 'simultaneous', 'simultaneous'],
    ]);
    expect(summary.openKinds).toMatchObject({
      crossed: 1,
      'one-sided': 1,
      'not-simultaneous': 0,
    });
    expect(summary.closeKinds).toMatchObject({ active: 1, passive: 1, simultaneous: 2 });
    const report = formatTraceReport(paths, { source: 'kernel' });
    expect(report[1]).toMatch(
      /^127\.0\.0\.1:31000 > 127\.0\.0\.1:31001 {2}CLOSED → SYN_SENT \+0µs → SYN_RECEIVED \+1011919µs → ESTABLISHED \+1011948µs/,
    );
    expect(report[2]).toMatch(/^127\.0\.0\.1:31001 > 127\.0\.0\.1:31000 {2}CLOSED → SYN_SENT \+184µs/);
    expect(report.at(-1)).toMatch(/^TIME_WAIT\* = inferred/);
  });

  it('tells refused attempts, listeners, passive opens and resets apart', () => {
    const summary = summarizeConnections(
      buildConnectionPaths(parseText(fixture('ipv6-refused-and-reset.trace.txt'))),
    );
    expect(summary.failedAttempts.map((p) => p.states.join(' '))).toEqual(['CLOSED SYN_SENT CLOSED']);
    expect(summary.listeners.map((p) => `${p.local.host}:${p.local.port}`)).toEqual([
      '::1:31012',
      '127.0.0.1:31014',
    ]);
    const kinds = summary.pairs.map((pair) => [pair.sides[0].local.port, pair.open, ...pair.close]);
    expect(kinds).toContainEqual([31013, 'not-simultaneous', 'reset', 'abort']);
    expect(kinds).toContainEqual([31015, 'not-simultaneous', 'active', 'passive']);
    expect(summary.openKinds['not-simultaneous']).toBe(summary.pairs.length);
  });
});
