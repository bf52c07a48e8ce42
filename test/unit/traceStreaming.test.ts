/**
 * Streaming traces on recorded and generated events (pure, in process): connections given out as soon
 * as they are over, state bounded by what is open, the --max-open cap, the text and NDJSON outputs,
 * huge inputs that must not be spread into a call, and trace.ts's option checks.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseHost } from '../../lib/core/cli.ts';
import { UsageError } from '../../lib/core/errors.ts';
import { buildConnectionPaths, itemsOfPaths, summarizeConnections } from '../../lib/trace/connectionPaths.ts';
import { ConnectionStream } from '../../lib/trace/connectionStream.ts';
import { formatTraceReport, TextTraceReport } from '../../lib/trace/formatPaths.ts';
import { parseTraceLine, tracefsMounted } from '../../lib/trace/kernelTracepoint.ts';
import { canonicalAddress, parseTraceOptions, resolveHosts } from '../../lib/trace/options.ts';
import { readSocketTable } from '../../lib/trace/socketTableSampler.ts';
import { LineWriter, NdjsonTraceOutput, TextTraceOutput } from '../../lib/trace/traceOutput.ts';
import type {
  ConnectionPath,
  StateChange,
  TcpState,
  TracedItem,
  TraceEvent,
  TraceSummary,
} from '../../lib/trace/types.ts';

const fixtureDir = path.join(import.meta.dirname, '..', 'fixtures', 'trace');
const fixture = (name: string) => fs.readFileSync(path.join(fixtureDir, name), 'utf8');

function parseText(text: string): TraceEvent[] {
  return text
    .split('\n')
    .map(parseTraceLine)
    .filter((line): line is TraceEvent => line !== null && line.type !== 'lost');
}

/** A state change of the side local > remote (ports on 127.0.0.1, or hosts given). */
function change(
  us: number,
  local: number | [string, number],
  remote: number | [string, number],
  from: TcpState,
  to: TcpState,
): StateChange {
  const endpoint = (value: number | [string, number]) =>
    typeof value === 'number' ? { host: '127.0.0.1', port: value } : { host: value[0], port: value[1] };
  return {
    type: 'state',
    source: 'kernel',
    timestampUs: us,
    family: 4,
    local: endpoint(local),
    remote: endpoint(remote),
    from,
    to,
  };
}

/**
 * A one-sided simultaneous open of a and b at t, and an active/passive close at closeAt (five events
 * each way: the first five are the open).
 */
function connectionEvents(
  t: number,
  a: number | [string, number],
  b: number | [string, number],
  closeAt = t + 5,
) {
  return [
    change(t, a, b, 'CLOSED', 'SYN_SENT'),
    change(t + 1, b, a, 'CLOSED', 'SYN_SENT'),
    change(t + 2, a, b, 'SYN_SENT', 'SYN_RECEIVED'),
    change(t + 3, b, a, 'SYN_SENT', 'ESTABLISHED'),
    change(t + 4, a, b, 'SYN_RECEIVED', 'ESTABLISHED'),
    change(closeAt, a, b, 'ESTABLISHED', 'FIN_WAIT_1'),
    change(closeAt + 1, b, a, 'ESTABLISHED', 'CLOSE_WAIT'),
    change(closeAt + 2, b, a, 'CLOSE_WAIT', 'LAST_ACK'),
    change(closeAt + 3, a, b, 'FIN_WAIT_1', 'FIN_WAIT_2'),
    change(closeAt + 4, a, b, 'FIN_WAIT_2', 'CLOSED'),
    change(closeAt + 5, b, a, 'LAST_ACK', 'CLOSED'),
  ];
}

/** The sides an item gave out (a one-sided connection has one). */
function sidesOf(items: readonly TracedItem[]): ConnectionPath[] {
  return items.flatMap((item) =>
    item.kind === 'connection' ? item.pair.sides.filter((side) => side !== undefined) : [item.path],
  );
}

/** Endpoints of connection n: a different address pair for every 50,000 (ports stay in 10000..59999). */
function endpointsOf(n: number): [[string, number], [string, number]] {
  const round = Math.floor(n / 50_000);
  const port = 10_000 + (n % 50_000);
  return [
    [`127.1.${round}.1`, port],
    [`127.1.${round}.2`, port],
  ];
}

function summaryOf(stream: ConnectionStream): TraceSummary {
  return {
    label: { source: 'kernel' },
    lostEvents: 0,
    counts: stream.counts,
    untracked: stream.untracked,
    maxOpen: stream.maxOpen,
    peakKept: stream.peakKept,
    peakRssBytes: 1,
    exitCode: 0,
  };
}

describe('ConnectionStream: connections given out as they end', () => {
  it('gives each connection out when its last side ends, paired and classified as the batch summary does', () => {
    const events = parseText(fixture('simultaneous-open-then-close.trace.txt'));
    const items: { afterEvent: number; item: TracedItem }[] = [];
    let index = 0;
    const stream = new ConnectionStream({ onItem: (item) => items.push({ afterEvent: index, item }) });
    for (; index < events.length; index++) stream.add(events[index] as TraceEvent);
    stream.finish();
    const batch = summarizeConnections(buildConnectionPaths(events));
    const pairs = items.flatMap(({ item }) => (item.kind === 'connection' ? [item.pair] : []));
    expect(pairs.map((pair) => [pair.open, ...pair.close])).toEqual(
      batch.pairs.map((pair) => [pair.open, ...pair.close]),
    );
    expect(pairs.map((pair) => pair.sides.map((side) => side?.states))).toEqual(
      batch.pairs.map((pair) => pair.sides.map((side) => side?.states)),
    );
    // The first connection is out at the event that ended its second side, long before the trace ends.
    const firstEnd = Math.max(...(pairs[0]?.sides.map((side) => side?.endUs ?? 0) ?? []));
    const endingEvent = events.findIndex((event) => event.timestampUs === firstEnd);
    expect(items[0]?.afterEvent).toBe(endingEvent);
    expect(stream.counts).toMatchObject({ connections: 2, paths: 4 });
    expect(stream.counts.openKinds).toMatchObject({ 'both-syn-received': 1, 'one-sided': 1 });
    expect(stream.kept).toBe(0);
  });

  it('the same items from recorded refusals, listeners and resets as the batch summary', () => {
    const events = parseText(fixture('ipv6-refused-and-reset.trace.txt'));
    const streamed: TracedItem[] = [];
    const stream = new ConnectionStream({ onItem: (item) => streamed.push(item) });
    for (const event of events) stream.add(event);
    stream.finish();
    const describe = (item: TracedItem) =>
      item.kind === 'connection'
        ? `${item.pair.sides.map((side) => side && `${side.local.port}:${side.states.join(' ')}`)} ${item.pair.open} ${item.pair.close}`
        : `${item.kind} ${item.path.local.port}:${item.path.states.join(' ')}`;
    expect(streamed.map(describe).sort()).toEqual(
      itemsOfPaths(buildConnectionPaths(events)).map(describe).sort(),
    );
    expect(stream.counts).toMatchObject({ listeners: 2, failedAttempts: 1 });
  });

  it('keeps only what is open: 300,000 connections one after another never keep more than the two sides of one', () => {
    let given = 0;
    let states = 0;
    const stream = new ConnectionStream({
      onItem: (item) => {
        given += 1;
        if (item.kind === 'connection') states += item.pair.sides.length;
      },
    });
    for (let n = 0; n < 300_000; n++) {
      const [a, b] = endpointsOf(n);
      for (const event of connectionEvents(n * 20, a, b)) stream.add(event);
    }
    stream.finish();
    expect(given).toBe(300_000);
    expect(states).toBe(600_000);
    expect(stream.counts.openKinds['one-sided']).toBe(300_000);
    expect(stream.counts.closeKinds).toMatchObject({ active: 300_000, passive: 300_000 });
    expect(stream.peakKept).toBe(2);
    expect(stream.untracked).toBe(0);
  });

  it('with many open at once, keeps them until they end, then lets them go', () => {
    const stream = new ConnectionStream({ onItem: () => {} });
    // 1,000 connections open (at 10 µs intervals), then all close, one after another.
    const all = Array.from({ length: 1000 }, (_, n) =>
      connectionEvents(n * 10, 20_000 + n, 30_000 + n, 100_000 + n * 10),
    ).flat();
    all.sort((x, y) => x.timestampUs - y.timestampUs);
    for (const event of all) stream.add(event);
    expect(stream.counts.connections).toBe(1000);
    expect(stream.kept).toBe(0);
    expect(stream.peakKept).toBe(2000);
    expect(stream.untracked).toBe(0);
  });

  it('past --max-open gives out the oldest open side as it is, marked untracked, and says how many', () => {
    const items: TracedItem[] = [];
    const stream = new ConnectionStream({ maxOpen: 10, onItem: (item) => items.push(item) });
    // 50 connections that open and never close.
    for (let n = 0; n < 50; n++)
      for (const event of connectionEvents(n * 20, 40_000 + n, 41_000 + n).slice(0, 5)) stream.add(event);
    expect(stream.kept).toBeLessThanOrEqual(10);
    expect(stream.peakKept).toBeLessThanOrEqual(10);
    expect(stream.untracked).toBe(90);
    stream.finish();
    const sides = sidesOf(items);
    expect(sides).toHaveLength(100);
    expect(sides.filter((side) => side.untracked)).toHaveLength(90);
    expect(stream.counts.paths).toBe(100);
    const lines: string[] = [];
    const output = new TextTraceOutput((line) => lines.push(line));
    for (const item of items) output.item(item);
    output.end(summaryOf(stream));
    expect(lines).toContainEqual(expect.stringMatching(/untracked from here: too many open sides/));
    expect(lines).toContainEqual(
      'WARNING: 90 sides were given out before they ended: more than --max-open 10 were open at once',
    );
  });

  it('a side whose peer is not traced is given out at once; a waiting side whose peer turns out a failed attempt too', () => {
    const items: TracedItem[] = [];
    const stream = new ConnectionStream({ onItem: (item) => items.push(item) });
    // Only our side of a connection to another host.
    const remote: [string, number] = ['192.0.2.7', 443];
    for (const [us, from, to] of [
      [1, 'CLOSED', 'SYN_SENT'],
      [2, 'SYN_SENT', 'ESTABLISHED'],
      [3, 'ESTABLISHED', 'FIN_WAIT_1'],
      [4, 'FIN_WAIT_1', 'FIN_WAIT_2'],
      [5, 'FIN_WAIT_2', 'CLOSED'],
    ] as const)
      stream.add(change(us, 50_000, remote, from, to));
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({
      kind: 'connection',
      pair: { open: 'unknown', close: ['active', undefined] },
    });
    // A side ends while a path on the swapped 4-tuple is open; that path then fails: the side is let go.
    stream.add(change(10, 50_001, 50_002, 'CLOSED', 'SYN_SENT'));
    stream.add(change(11, 50_002, 50_001, 'CLOSED', 'SYN_SENT'));
    stream.add(change(12, 50_001, 50_002, 'SYN_SENT', 'ESTABLISHED'));
    stream.add(change(13, 50_001, 50_002, 'ESTABLISHED', 'CLOSED'));
    expect(items).toHaveLength(1);
    stream.add(change(14, 50_002, 50_001, 'SYN_SENT', 'CLOSED'));
    expect(items.slice(1).map((item) => item.kind)).toEqual(['failed-attempt', 'connection']);
    expect(stream.kept).toBe(0);
  });
});

describe('text and NDJSON output', () => {
  it('collapses failed attempts on a 4-tuple into one line written before its connection', () => {
    const events: TraceEvent[] = [];
    for (let n = 0; n < 37; n++) {
      events.push(change(n * 10, 31000, 31001, 'CLOSED', 'SYN_SENT'));
      events.push(change(n * 10 + 5, 31000, 31001, 'SYN_SENT', 'CLOSED'));
    }
    events.push(...connectionEvents(1000, 31000, 31001));
    const lines: string[] = [];
    const report = new TextTraceReport((line) => lines.push(line));
    report.start({ source: 'kernel' });
    const stream = new ConnectionStream({ originUs: 0, onItem: (item) => report.item(item) });
    for (const event of events) stream.add(event);
    stream.finish();
    report.end();
    expect(lines).toEqual([
      'source: kernel tracepoint sock:inet_sock_set_state (every transition)',
      '127.0.0.1:31000 > 127.0.0.1:31001  CLOSED → SYN_SENT → CLOSED  x37 failed attempts, +0µs..+365µs',
      '127.0.0.1:31000 > 127.0.0.1:31001  CLOSED → SYN_SENT +1000µs → SYN_RECEIVED +1002µs → ESTABLISHED +1004µs → FIN_WAIT_1 +1005µs → FIN_WAIT_2 +1008µs → TIME_WAIT* +1009µs',
      '127.0.0.1:31001 > 127.0.0.1:31000  CLOSED → SYN_SENT +1001µs → ESTABLISHED +1003µs → CLOSE_WAIT +1006µs → LAST_ACK +1007µs → CLOSED +1010µs',
      expect.stringMatching(/^TIME_WAIT\* = inferred/),
    ]);
    // Attempts that pause for a second of trace time are written without waiting for the end.
    const later: string[] = [];
    const idle = new TextTraceReport((line) => later.push(line));
    const alone = new ConnectionStream({ originUs: 0, onItem: (item) => idle.item(item) });
    alone.add(change(0, 32000, 32001, 'CLOSED', 'SYN_SENT'));
    alone.add(change(5, 32000, 32001, 'SYN_SENT', 'CLOSED'));
    idle.tick(500_000);
    expect(later).toEqual([]);
    idle.tick(1_000_005);
    expect(later).toEqual([
      '127.0.0.1:32000 > 127.0.0.1:32001  CLOSED → SYN_SENT +0µs → CLOSED +5µs  (attempt failed)',
    ]);
  });

  it("NDJSON: a start record, the paths, then each connection's pair record, and a summary with today's document fields", () => {
    const events = parseText(fixture('simultaneous-open-then-close.trace.txt'));
    const lines: string[] = [];
    const output = new NdjsonTraceOutput((line) => lines.push(line), { events: true });
    output.start({ label: { source: 'kernel' }, instance: 'simopen-1-1', maxOpen: 100 });
    const stream = new ConnectionStream({
      originUs: events[0]?.timestampUs ?? 0,
      onItem: (item) => output.item(item),
    });
    for (const event of events) {
      output.event(event);
      stream.add(event);
    }
    stream.finish();
    output.timeWait({ endpoints: '127.0.0.1:31000 > 127.0.0.1:31001', confirmed: false });
    output.end(summaryOf(stream));
    const records = lines.map((line) => JSON.parse(line));
    expect(records[0]).toEqual({ type: 'start', source: 'kernel', instance: 'simopen-1-1', maxOpen: 100 });
    expect(records.at(-1)).toMatchObject({
      type: 'summary',
      source: 'kernel',
      lostEvents: 0,
      paths: 4,
      pairs: 2,
      listeners: 0,
      failedAttempts: 0,
      openKinds: { 'both-syn-received': 1, 'one-sided': 1 },
      closeKinds: { active: 1, passive: 1, simultaneous: 2 },
      untracked: 0,
      exitCode: 0,
    });
    // The fields of the old JSON document, record by record.
    const byType = (type: string) => records.filter((record) => record.type === type);
    const batch = summarizeConnections(buildConnectionPaths(events, events[0]?.timestampUs));
    expect(byType('state').length + byType('reset').length).toBe(events.length);
    expect(byType('path').map(({ type, ...path }) => path)).toEqual(
      JSON.parse(JSON.stringify(batch.pairs.flatMap((pair) => pair.sides))),
    );
    expect(byType('pair')).toEqual(
      batch.pairs.map((pair) => ({
        type: 'pair',
        sides: pair.sides.map((side) => (side ? { local: side.local, remote: side.remote } : null)),
        open: pair.open,
        close: [pair.close[0], pair.close[1] ?? null],
      })),
    );
    expect(byType('timeWait')).toEqual([
      { type: 'timeWait', endpoints: '127.0.0.1:31000 > 127.0.0.1:31001', confirmed: false },
    ]);
    // A connection's path records come right before its pair record.
    const types = records.map((record) => record.type).filter((type) => type === 'path' || type === 'pair');
    expect(types).toEqual(['path', 'path', 'pair', 'path', 'path', 'pair']);
  });

  it('LineWriter writes in batches and on flush', () => {
    const chunks: string[] = [];
    const writer = new LineWriter((text) => chunks.push(text));
    writer.line('a');
    writer.line('b');
    expect(chunks).toEqual([]);
    writer.flush();
    expect(chunks).toEqual(['a\nb\n']);
    for (let n = 0; n < 10_000; n++) writer.line('x'.repeat(20));
    expect(chunks.length).toBeGreaterThan(2);
    writer.flush();
    expect(chunks.join('').split('\n')).toHaveLength(10_003);
  });
});

describe('huge inputs are never spread into a call', () => {
  it('formatTraceReport of 200,000 connection sides', () => {
    const events: TraceEvent[] = [];
    for (let n = 0; n < 100_000; n++) {
      const [a, b] = endpointsOf(n);
      for (const event of connectionEvents(n * 20, a, b)) events.push(event);
    }
    const paths: ConnectionPath[] = buildConnectionPaths(events, 0);
    expect(paths).toHaveLength(200_000);
    const report = formatTraceReport(paths, { source: 'kernel' });
    expect(report).toHaveLength(1 + 200_000 + 1);
    expect(report[1]).toMatch(/^127\.1\.0\.1:10000 > 127\.1\.0\.2:10000 {2}CLOSED → SYN_SENT/);
    expect(report[2]).toMatch(/^127\.1\.0\.2:10000 > 127\.1\.0\.1:10000 {2}CLOSED → SYN_SENT/);
  });

  it('readSocketTable of a table of 200,000 sockets', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simopen-trace-unit-'));
    try {
      const file = path.join(dir, 'tcp');
      const header =
        '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
      const rows = Array.from(
        { length: 200_000 },
        (_, n) =>
          `${n}: 0100007F:${(1024 + (n % 60_000)).toString(16).toUpperCase().padStart(4, '0')} 0100007F:1F90 06 00000000:00000000 03:00000123 00000000     0        0 0 3 0000000000000000`,
      );
      fs.writeFileSync(file, `${header}\n${rows.join('\n')}\n`);
      const table = readSocketTable([{ path: file, family: 4 }]);
      expect(table).toHaveLength(200_000);
      expect(table[0]).toMatchObject({ state: 'TIME_WAIT', local: { host: '127.0.0.1', port: 1024 } });
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });
});

describe('trace.ts options', () => {
  it('refuses numbers that are not IPv4 addresses as host names, everywhere parseHost is used', () => {
    expect(() => parseHost('999.1.1.1', '--host')).toThrow(UsageError);
    expect(() => parseHost('999.1.1.1', '--host')).toThrow(/'999\.1\.1\.1' is not an IPv4 address/);
    expect(() => parseHost('1.2.3', '--host')).toThrow(UsageError);
    expect(parseHost('1.2.3.4', '--host')).toBe('1.2.3.4');
    expect(parseHost('host-1.example', '--host')).toBe('host-1.example');
    expect(parseHost('1e100.net', '--host')).toBe('1e100.net');
  });

  it('resolves --host names to addresses, refuses names that do not resolve', async () => {
    expect(await resolveHosts(['localhost', '127.0.0.1'])).toContain('127.0.0.1');
    expect(await resolveHosts(['0:0:0:0:0:0:0:1', '::ffff:10.0.0.1'])).toEqual(['::1', '10.0.0.1']);
    await expect(resolveHosts(['nosuch.invalid'])).rejects.toThrow(
      /--host: cannot resolve 'nosuch\.invalid'/,
    );
    await expect(resolveHosts(['nosuch.invalid'])).rejects.toBeInstanceOf(UsageError);
    expect(canonicalAddress('FE80:0:0:0:1:0:0:1')).toBe('fe80::1:0:0:1');
  });

  it('checks the flags before anything is traced', () => {
    expect(
      parseTraceOptions(['--json', '--events', '--max-open', '5k', '--buffer-kb', '65536', '--', 'x']),
    ).toMatchObject({
      action: 'trace',
      json: true,
      events: true,
      maxOpen: 5000,
      bufferKb: 65536,
      command: ['x'],
    });
    expect(parseTraceOptions([])).toMatchObject({
      action: 'trace',
      maxOpen: 100_000,
      bufferKb: 4096,
      command: [],
    });
    for (const args of [
      ['--events'],
      ['--max-open', '0'],
      ['--buffer-kb', '1'],
      ['--demo', 'normal-open', '--max-open', '5'],
      ['--host', '999.1.1.1'],
    ])
      expect(() => parseTraceOptions(args), args.join(' ')).toThrow(UsageError);
  });

  it('tells a mounted tracefs from a missing one in mountinfo', () => {
    const mounted = '42 23 0:13 / /sys/kernel/tracing rw,relatime shared:17 - tracefs nodev rw\n';
    expect(tracefsMounted(mounted)).toBe(true);
    expect(tracefsMounted('36 25 0:12 / /sys rw - sysfs sysfs rw\n')).toBe(false);
    expect(tracefsMounted('36 25 0:12 / /sys/kernel/tracing rw - debugfs none rw\n')).toBe(false);
  });
});
