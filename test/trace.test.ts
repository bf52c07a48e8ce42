import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { probeSandbox } from '../lib/core/sandbox.ts';
import { planPairs } from '../lib/stress/planPairs.ts';
import { annotatePairLog, pairsOfPlan, traceOptionsForPlan } from '../lib/stress/traceStress.ts';
import { createLivePrinter } from '../lib/trace/connectionLiveTrace.ts';
import {
  buildConnectionPaths,
  containsSequence,
  summarizeConnections,
} from '../lib/trace/connectionPaths.ts';
import { formatTraceReport } from '../lib/trace/formatPaths.ts';
import {
  eventFilter,
  instanceExists,
  parseTraceLine,
  probeTracefs,
  removeStaleInstances,
  startKernelTrace,
  TRACEFS,
} from '../lib/trace/kernelTracepoint.ts';
import { classifyPlannedPairs, formatPairKinds, startPairTrace } from '../lib/trace/plannedPairTrace.ts';
import {
  diffSamples,
  parseProcNetTcp,
  type SocketRow,
  startProcNetTcpSampler,
} from '../lib/trace/socketTableSampler.ts';
import { stateFromKernelName, stateFromKernelNumber } from '../lib/trace/tcpStates.ts';
import { TCP_STATES, type TcpState, type TraceEvent } from '../lib/trace/types.ts';

// Host loopback ports for trace's tests: 31000-31999 (the demos run in private namespaces).

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const fixture = (name: string) => fs.readFileSync(path.join(repoRoot, 'test/fixtures/trace', name), 'utf8');

function parseText(text: string): TraceEvent[] {
  return text
    .split('\n')
    .map(parseTraceLine)
    .filter((line): line is TraceEvent => line !== null && line.type !== 'lost');
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function runTrace(
  args: string[],
  onStderr?: (text: string, child: ReturnType<typeof spawn>) => void,
): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/trace.ts', ...args], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      onStderr?.(stderr, child);
    });
    child.once('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
}

/** A node -e program: a listener, one connection to it from a fixed port, closed by the client. */
function openAndCloseCommand(serverPort: number, clientPort: number): string {
  return `const net=require('net');const s=net.createServer(c=>{c.resume();c.on('end',()=>c.end())}).listen(${serverPort},'127.0.0.1',()=>{const c=net.connect({port:${serverPort},host:'127.0.0.1',localPort:${clientPort}},()=>c.end());c.resume();c.on('close',()=>s.close())})`;
}

const tracefs = probeTracefs();
const sandbox = probeSandbox();
// Privileged facilities may be missing on a developer's machine, never under CI.
const skipKernel = !tracefs.ok && !process.env.CI;
const skipDemos = (!tracefs.ok || !sandbox.ok) && !process.env.CI;
if (skipKernel) console.log(`skipping kernel trace tests: ${tracefs.reason}`);
else if (skipDemos) console.log(`skipping demo tests: ${sandbox.reason}`);

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
      ['both-syn-received', 'active', 'passive'],
      ['one-sided', 'simultaneous', 'simultaneous'],
    ]);
    expect(summary.openKinds).toMatchObject({
      'both-syn-received': 1,
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

describe('live printing (peer.ts --trace) of recorded events', () => {
  it('prints our side as it goes, counts failed connect attempts instead of printing them', () => {
    const lines: string[] = [];
    const events = parseText(fixture('simultaneous-open-then-close.trace.txt'));
    const refused: TraceEvent[] = [1, 2].flatMap((n) => [
      {
        ...(events[0] as TraceEvent),
        timestampUs: 677_000_000 + n,
        type: 'state',
        from: 'CLOSED',
        to: 'SYN_SENT',
      },
      {
        ...(events[0] as TraceEvent),
        timestampUs: 677_000_010 + n,
        type: 'state',
        from: 'SYN_SENT',
        to: 'CLOSED',
      },
    ]) as TraceEvent[];
    const print = createLivePrinter(
      (line) => lines.push(line),
      677_000_000,
      (side) => side.local.port === 31000,
    );
    for (const event of [...refused, ...events.slice(0, 12)]) print(event);
    expect(lines).toEqual([
      'trace: (2 earlier connect attempts went CLOSED → SYN_SENT → CLOSED)',
      'trace: +720167µs 127.0.0.1:31000 > 127.0.0.1:31001  CLOSED → SYN_SENT',
      'trace: +1732086µs 127.0.0.1:31000 > 127.0.0.1:31001  SYN_SENT → SYN_RECEIVED',
      'trace: +1732115µs 127.0.0.1:31000 > 127.0.0.1:31001  SYN_RECEIVED → ESTABLISHED',
      'trace: +1733394µs 127.0.0.1:31000 > 127.0.0.1:31001  ESTABLISHED → FIN_WAIT_1',
      'trace: +1734104µs 127.0.0.1:31000 > 127.0.0.1:31001  FIN_WAIT_1 → FIN_WAIT_2',
      'trace: +1734111µs 127.0.0.1:31000 > 127.0.0.1:31001  FIN_WAIT_2 → TIME_WAIT* (inferred: handed to a TIME_WAIT mini-socket)',
    ]);
  });
});

describe('pair classification for stress --trace', () => {
  const v4 = (port: number) => ({ host: '127.0.0.1', port });
  const v6 = (port: number) => ({ host: '::1', port });

  it('classifies planned pairs from recorded paths, counts kinds, annotates the NDJSON log', async () => {
    const paths = [
      ...buildConnectionPaths(parseText(fixture('simultaneous-open-then-close.trace.txt'))),
      ...buildConnectionPaths(parseText(fixture('ipv6-refused-and-reset.trace.txt'))),
    ];
    const result = classifyPlannedPairs(paths, [
      // The 4-tuple was used twice in the recording: the later connection (one-sided open, crossing FINs) counts.
      { id: 0, a: v4(31000), b: v4(31001) },
      { id: 1, a: v6(31013), b: v6(31012) },
      { id: 2, a: v6(31010), b: v6(31011) },
    ]);
    expect(result.kinds.get(0)).toEqual({ open: 'one-sided', close: ['simultaneous', 'simultaneous'] });
    expect(result.kinds.get(1)).toEqual({ open: 'not-simultaneous', close: ['reset', 'abort'] });
    expect(result.kinds.get(2)).toEqual({
      open: 'not-established',
      close: ['not-established', 'not-established'],
    });
    expect(result.openKinds).toMatchObject({ 'one-sided': 1, 'not-simultaneous': 1, 'not-established': 1 });
    expect(result.closeKinds).toMatchObject({ simultaneous: 2, reset: 1, abort: 1, 'not-established': 2 });
    const lines = formatPairKinds({ ...result, label: { source: 'kernel' }, lostEvents: 0 });
    expect(lines[0]).toBe('  open kinds     one-sided 1, not-simultaneous 1, not-established 1');

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simopen-trace-'));
    try {
      const log = path.join(dir, 'pairs.ndjson');
      fs.writeFileSync(
        log,
        '{"id":0,"outcome":"established"}\n{"id":2,"outcome":"failed"}\n{"id":7,"outcome":"cancelled"}\n',
      );
      await annotatePairLog(log, result.kinds);
      const records = fs
        .readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      expect(records).toEqual([
        {
          id: 0,
          outcome: 'established',
          openKind: 'one-sided',
          closeKinds: ['simultaneous', 'simultaneous'],
        },
        {
          id: 2,
          outcome: 'failed',
          openKind: 'not-established',
          closeKinds: ['not-established', 'not-established'],
        },
        { id: 7, outcome: 'cancelled', openKind: null, closeKinds: null },
      ]);
      expect(fs.readdirSync(dir)).toEqual(['pairs.ndjson']);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  it('derives the filter and the pairs from a stress address plan', () => {
    const plan = planPairs(5, { ports: { first: 40000, last: 40002 }, roundOffset: 1 });
    expect(traceOptionsForPlan(plan, 5)).toEqual({
      portRange: { first: 40000, last: 40002 },
      hosts: ['127.0.1.3', '127.0.1.4', '127.0.1.5', '127.0.1.6'],
    });
    expect(traceOptionsForPlan(plan, undefined)).toEqual({ portRange: { first: 40000, last: 40002 } });
    const pairs = [...pairsOfPlan(plan, 5)];
    expect(pairs).toHaveLength(5);
    expect(pairs[3]).toEqual({
      id: 3,
      a: { host: '127.0.1.5', port: 40000 },
      b: { host: '127.0.1.6', port: 40000 },
    });
  });

  it.skipIf(skipKernel)('a listener shows up as not-simultaneous (real sockets, kernel trace)', async () => {
    const trace = startPairTrace({ portRange: { first: 31130, last: 31131 }, hosts: ['127.0.0.1'] });
    expect(trace.label.source).toBe('kernel');
    const server = net.createServer((socket) => {
      socket.resume();
      socket.on('end', () => socket.end());
    });
    await new Promise<void>((resolve) => server.listen(31130, '127.0.0.1', resolve));
    const client = net.connect({ host: '127.0.0.1', port: 31130, localPort: 31131 }, () => client.end());
    client.resume();
    await new Promise((resolve) => client.once('close', resolve));
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const result = await trace.stop([{ id: 5, a: v4(31131), b: v4(31130) }]);
    expect(result.kinds.get(5)?.open).toBe('not-simultaneous');
    expect(result.kinds.get(5)?.close[0]).toBe('active');
    expect(result.lostEvents).toBe(0);
  });
});

describe('sampling fallback on recorded /proc/net/tcp text', () => {
  it('parses v4, v6 and v4-mapped rows', () => {
    const v4 = parseProcNetTcp(fixture('proc-net-tcp.txt'), 4);
    expect(v4.map((row) => `${row.local.host}:${row.local.port}>${row.remote.port} ${row.state}`)).toEqual([
      '127.0.0.1:31014>0 LISTEN',
      '127.0.0.1:31019>31018 ESTABLISHED',
      '127.0.0.1:31014>31016 ESTABLISHED',
      '127.0.0.1:31015>31014 TIME_WAIT',
      '127.0.0.1:31016>31014 ESTABLISHED',
    ]);
    const v6 = parseProcNetTcp(fixture('proc-net-tcp6.txt'), 6);
    expect(v6.map((row) => `${row.family} ${row.local.host}:${row.local.port} ${row.state}`)).toEqual([
      '6 ::1:31012 LISTEN',
      '6 :::31018 LISTEN',
      '6 ::1:31017 ESTABLISHED',
      '6 ::1:31012 ESTABLISHED',
      '4 127.0.0.1:31018 ESTABLISHED',
    ]);
  });

  it('turns sample differences into labelled paths, and the label says sampled and why', async () => {
    const previous = new Map<string, SocketRow>();
    const rows = parseProcNetTcp(fixture('proc-net-tcp.txt'), 4);
    const established = rows.filter((row) => row.state !== 'TIME_WAIT');
    const timeWait = rows.find((row) => row.state === 'TIME_WAIT');
    expect(timeWait).toBeDefined();
    const events = [
      ...diffSamples(previous, established, 1_000),
      // the next sample: 31015's connection went to TIME_WAIT (its FIN_WAIT states fell between samples)
      ...diffSamples(previous, [...established, { ...(timeWait as SocketRow) }], 2_000),
      ...diffSamples(previous, [], 3_000),
    ];
    const paths = buildConnectionPaths(events, 0);
    const path31015 = paths.find((p) => p.local.port === 31015);
    expect(path31015?.states).toEqual(['CLOSED', 'TIME_WAIT', 'CLOSED']);
    expect(path31015?.source).toBe('sampled');
    expect(path31015?.steps.some((step) => step.inferred)).toBe(false);
    // Sampled paths never claim what sampling cannot see: how a pair opened, aborts, missing pairs.
    const sampledKinds = classifyPlannedPairs(
      paths,
      [
        { id: 1, a: { host: '127.0.0.1', port: 31016 }, b: { host: '127.0.0.1', port: 31014 } },
        { id: 2, a: { host: '127.0.0.1', port: 31020 }, b: { host: '127.0.0.1', port: 31021 } },
      ],
      'sampled',
    );
    expect(sampledKinds.kinds.get(1)).toEqual({ open: 'unknown', close: ['unknown', 'unknown'] });
    expect(sampledKinds.kinds.get(2)).toEqual({ open: 'unknown', close: ['unknown', 'unknown'] });

    // The sampler itself, reading recorded files instead of /proc.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simopen-trace-'));
    try {
      const file = path.join(dir, 'tcp');
      fs.writeFileSync(file, fixture('proc-net-tcp.txt').split('\n').slice(0, 1).join('\n'));
      const sampler = startProcNetTcpSampler({ files: [{ path: file, family: 4 }], intervalMs: 60_000 });
      fs.writeFileSync(file, fixture('proc-net-tcp.txt'));
      sampler.drain();
      const sampled = await sampler.stop();
      expect(sampled).toHaveLength(5);
      expect(sampled.every((p) => p.source === 'sampled')).toBe(true);
      const report = formatTraceReport(sampled, {
        source: 'sampled',
        reason: 'tracefs needs root',
        sampleIntervalMs: 10,
      });
      expect(report[0]).toMatch(
        /^source: SAMPLED \/proc\/net\/tcp .*short-lived states are missed.*exact source unavailable: tracefs needs root/,
      );
      expect(report).toContainEqual(
        expect.stringMatching(/^127\.0\.0\.1:31015 > 127\.0\.0\.1:31014 {2}CLOSED → TIME_WAIT \+\d+µs$/),
      );
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  it('trace.ts --source sampled labels its output on a real connection', async () => {
    const holdMs = 1500;
    const command = `const net=require('net');const s=net.createServer(c=>c.resume()).listen(31090,'127.0.0.1',()=>{const c=net.connect({port:31090,host:'127.0.0.1',localPort:31091},()=>setTimeout(()=>{c.end();s.close()},${holdMs}))})`;
    const run = await runTrace([
      '--source',
      'sampled',
      '--ports',
      '31090-31091',
      '--',
      process.execPath,
      '-e',
      command,
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^source: SAMPLED \/proc\/net\/tcp and \/proc\/net\/tcp6 every 10 ms/);
    expect(run.stdout).toContain('exact source unavailable: sampling was asked for (--source sampled)');
    // A rerun within 60 s finds the last run's TIME_WAIT on this 4-tuple in the first sample.
    expect(run.stdout).toMatch(/127\.0\.0\.1:31091 > 127\.0\.0\.1:31090 {2}(CLOSED|TIME_WAIT) → ESTABLISHED/);
  });
});

describe('trace.ts usage errors', () => {
  it('rejects bad input with one line and exit 2', async () => {
    for (const args of [
      ['--ports', '9-3'],
      ['--demo', 'half-open'],
      ['--source', 'guess'],
      ['--'],
      ['stray'],
    ]) {
      const run = await runTrace(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr.split('\n')[0]).toMatch(/^trace\.ts: /);
    }
  });
});

describe.skipIf(skipKernel)('kernel trace on real sockets (host loopback)', () => {
  it('traces a normal open and close, and removes its instance on stop', async () => {
    const trace = startKernelTrace({ portRange: { first: 31100, last: 31101 }, hosts: ['127.0.0.1'] });
    expect(instanceExists(trace.instance)).toBe(true);
    const server = net.createServer((socket) => socket.resume());
    await new Promise<void>((resolve) => server.listen(31100, '127.0.0.1', resolve));
    const client = net.connect({ host: '127.0.0.1', port: 31100, localPort: 31101 });
    client.resume();
    await new Promise((resolve) => client.once('connect', resolve));
    client.end();
    await new Promise((resolve) => client.once('close', resolve));
    await new Promise<void>((resolve) => server.close(() => resolve()));
    // The server side's last step (LAST_ACK -> CLOSED) needs the client's final ACK: wait for it in the trace.
    while (!trace.events.some((e) => e.type === 'state' && e.from === 'LAST_ACK')) {
      trace.drain();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const paths = await trace.stop();
    expect(instanceExists(trace.instance)).toBe(false);
    const summary = summarizeConnections(paths);
    expect(summary.pairs).toHaveLength(1);
    const [client31101, server31100] = [31101, 31100].map((port) =>
      paths.find((p) => p.local.port === port && p.remote.port !== 0),
    );
    expect(client31101?.states).toEqual([
      'CLOSED',
      'SYN_SENT',
      'ESTABLISHED',
      'FIN_WAIT_1',
      'FIN_WAIT_2',
      'TIME_WAIT',
    ]);
    expect(server31100?.states).toEqual([
      'LISTEN',
      'SYN_RECEIVED',
      'ESTABLISHED',
      'CLOSE_WAIT',
      'LAST_ACK',
      'CLOSED',
    ]);
    expect(summary.pairs[0]?.open).toBe('not-simultaneous');
  });

  it('trace.ts -- COMMAND prints one line per connection side, JSON with raw events and paths', async () => {
    const run = await runTrace([
      '--ports',
      '31110-31111',
      '--host',
      '127.0.0.1',
      '--json',
      '--events',
      '--',
      process.execPath,
      '-e',
      openAndCloseCommand(31110, 31111),
    ]);
    expect(run.code).toBe(0);
    // NDJSON: a start record, raw events (--events), path and pair records, a summary last.
    const records = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const result = records[0];
    expect(result.type).toBe('start');
    expect(result.source).toBe('kernel');
    expect(instanceExists(result.instance)).toBe(false);
    expect(records.filter((record) => record.type === 'state').length).toBeGreaterThanOrEqual(12);
    const client = records.find((p) => p.type === 'path' && p.local.port === 31111);
    expect(client.states).toEqual([
      'CLOSED',
      'SYN_SENT',
      'ESTABLISHED',
      'FIN_WAIT_1',
      'FIN_WAIT_2',
      'TIME_WAIT',
    ]);
    expect(records.at(-1).openKinds['not-simultaneous']).toBe(1);

    const text = await runTrace([
      '--ports',
      '31112-31113',
      '--confirm-time-wait',
      '--',
      process.execPath,
      '-e',
      openAndCloseCommand(31112, 31113),
    ]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('source: kernel tracepoint sock:inet_sock_set_state');
    expect(text.stdout).toMatch(
      /127\.0\.0\.1:31113 > 127\.0\.0\.1:31112 {2}CLOSED → SYN_SENT \+\d+µs → ESTABLISHED \+\d+µs → FIN_WAIT_1 \+\d+µs → FIN_WAIT_2 \+\d+µs → TIME_WAIT\* \+\d+µs/,
    );
    expect(text.stdout).toContain('socket table: 127.0.0.1:31113 > 127.0.0.1:31112 in TIME_WAIT (confirmed)');
  });

  it("leaves SIGTERM to a script's own once-handler, which stops the trace", async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/traceWithOwnSignalHandler.ts'], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    let instance = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const match = /tracing (simopen-\d+-\d+)/.exec(stdout);
      if (match?.[1] && !instance) {
        instance = match[1];
        expect(instanceExists(instance)).toBe(true);
        child.kill('SIGTERM');
      }
    });
    const code = await new Promise((resolve) => child.once('close', (exitCode) => resolve(exitCode)));
    expect(code).toBe(0);
    expect(stdout).toContain('stopped by its own handler');
    expect(instanceExists(instance)).toBe(false);
  });

  it('removes the instance on Ctrl-C, and sweeps the instance of a killed tracer', async () => {
    let instance = '';
    const interrupted = await runTrace(['--ports', '31120-31121'], (stderr, child) => {
      const match = /trace instance (simopen-\d+-\d+)/.exec(stderr);
      if (match?.[1] && !instance) {
        instance = match[1];
        expect(instanceExists(instance)).toBe(true);
        child.kill('SIGINT');
      }
    });
    expect(interrupted.code).toBe(0);
    expect(interrupted.stdout).toContain('no TCP state changes seen');
    expect(instance).not.toBe('');
    expect(instanceExists(instance)).toBe(false);

    let killed = '';
    await runTrace(['--ports', '31122-31123'], (stderr, child) => {
      const match = /trace instance (simopen-\d+-\d+)/.exec(stderr);
      if (match?.[1] && !killed) {
        killed = match[1];
        child.kill('SIGKILL');
      }
    });
    expect(instanceExists(killed)).toBe(true);
    expect(removeStaleInstances()).toContain(killed);
    expect(instanceExists(killed)).toBe(false);
  });
});

/** input undefined: keep stdin open, so this side ends only when the peer closes. */
function runPeer(args: string[], input?: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/peer.ts', ...args], {
      cwd: repoRoot,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    // Type the lines once connected; the last one is /quit (or end of input) from one side.
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      const connectedNow = !/connected/.test(stderr) && /connected/.test(stderr + chunk);
      stderr += chunk;
      if (connectedNow && input) child.stdin.end(input.map((line) => `${line}\n`).join(''));
    });
    child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

describe.skipIf(skipKernel)('peer.ts --trace', () => {
  it("prints the chat connection's state changes, from the kernel, for both peers", async () => {
    // A quits after sending; B answers the FIN. Host loopback: the dial is a race of retries.
    const [a, b] = await Promise.all([
      runPeer(
        ['127.0.0.1', '31201', '--local-port', '31200', '--trace', '--linger', '10s'],
        ['hello', '/quit'],
      ),
      runPeer(['127.0.0.1', '31200', '--local-port', '31201', '--trace', '--linger', '10s']),
    ]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toContain('peer> hello');
    const statesOf = (run: Run, local: number, remote: number) => {
      expect(run.stderr).toContain('trace: source: kernel tracepoint sock:inet_sock_set_state');
      const changes = [...run.stderr.matchAll(/^trace: \+\d+µs (\S+) > (\S+) {2}(\w+) → (\w+)/gm)];
      expect(changes.length).toBeGreaterThan(0);
      for (const change of changes) {
        expect(change[1]).toBe(`127.0.0.1:${local}`);
        expect(change[2]).toBe(`127.0.0.1:${remote}`);
      }
      return [changes[0]?.[3], ...changes.map((change) => change[4])] as TcpState[];
    };
    const statesA = statesOf(a, 31200, 31201);
    const statesB = statesOf(b, 31201, 31200);
    for (const states of [statesA, statesB]) {
      expect(states.slice(0, 2)).toEqual(['CLOSED', 'SYN_SENT']);
      expect(states).toContain('ESTABLISHED');
    }
    // A quit first: the active close. B answered the FIN: the passive close.
    expect(containsSequence(statesA, ['ESTABLISHED', 'FIN_WAIT_1', 'FIN_WAIT_2', 'TIME_WAIT'])).toBe(true);
    expect(containsSequence(statesB, ['ESTABLISHED', 'CLOSE_WAIT', 'LAST_ACK', 'CLOSED'])).toBe(true);
  });
});

describe.skipIf(skipDemos)('stress.ts --trace', () => {
  it('classifies every pair from the kernel trace: counts in report and JSON, kinds in each log record', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simopen-trace-'));
    try {
      const json = path.join(dir, 'result.json');
      const log = path.join(dir, 'pairs.ndjson');
      const run = await new Promise<Run>((resolve) => {
        const child = spawn(
          process.execPath,
          [
            '--import',
            'tsx',
            'scripts/stress.ts',
            '--pairs',
            '50',
            '--trace',
            '--quiet',
            '--json',
            json,
            '--log',
            log,
          ],
          { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          stdout += chunk;
        });
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
          stderr += chunk;
        });
        child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
      });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/^ {2}open kinds {5}/m);
      expect(run.stdout).toMatch(/^ {2}trace {10}kernel tracepoint sock:inet_sock_set_state/m);
      const result = JSON.parse(fs.readFileSync(json, 'utf8'));
      expect(result.trace).toMatchObject({ source: 'kernel', lostEvents: 0 });
      const opened = result.openKinds['both-syn-received'] + result.openKinds['one-sided'];
      // Every pair is a simultaneous open: a listener anywhere would show as not-simultaneous.
      expect(opened).toBe(50);
      expect(result.openKinds['not-simultaneous']).toBe(0);
      expect(Object.values(result.closeKinds as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(100);
      const records = fs
        .readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      expect(records).toHaveLength(50);
      for (const record of records) {
        expect(['both-syn-received', 'one-sided']).toContain(record.openKind);
        // graceful close: A sends the first FIN.
        expect(record.closeKinds).toEqual(['active', 'passive']);
      }
      expect(fs.readdirSync(dir).sort()).toEqual(['pairs.ndjson', 'result.json']);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });
});

const DEMOS = {
  'simultaneous-open': [
    ['CLOSED', 'SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED'],
    ['CLOSED', 'SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED'],
  ],
  'simultaneous-close': [
    ['ESTABLISHED', 'FIN_WAIT_1', 'CLOSING', 'TIME_WAIT'],
    ['ESTABLISHED', 'FIN_WAIT_1', 'CLOSING', 'TIME_WAIT'],
  ],
  'normal-open': [
    ['CLOSED', 'SYN_SENT', 'ESTABLISHED'],
    ['LISTEN', 'SYN_RECEIVED', 'ESTABLISHED'],
  ],
  'normal-close': [
    ['ESTABLISHED', 'FIN_WAIT_1', 'FIN_WAIT_2', 'TIME_WAIT'],
    ['ESTABLISHED', 'CLOSE_WAIT', 'LAST_ACK', 'CLOSED'],
  ],
} as const;

function hostNftRuleset(): string {
  try {
    return execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8' });
  } catch {
    return '';
  }
}

describe.skipIf(skipDemos)(
  'trace.ts --demo: the four paths on real sockets, as the kernel traced them',
  () => {
    for (const [demo, expected] of Object.entries(DEMOS)) {
      it(`${demo}: both sides, exactly as listed; instance and nft rules gone afterwards`, async () => {
        const run = await runTrace(['--demo', demo, '--json']);
        expect(run.code, run.stderr).toBe(0);
        const result = JSON.parse(run.stdout);
        expect(result.matched).toBe(true);
        expect(result.triesNeeded).toBe(result.tries.length);
        const final = result.tries.at(-1);
        for (const [index, states] of expected.entries()) {
          const side = final.sides[index];
          expect(side.source).toBe('kernel');
          expect(
            containsSequence(side.states, states),
            `${side.states.join(' → ')} contains ${states.join(' → ')}`,
          ).toBe(true);
          // The same path, straight from the raw kernel events of that side.
          const raw = result.events.filter(
            (e: TraceEvent) =>
              e.type === 'state' && e.local.port === side.local.port && e.remote.port === side.remote.port,
          );
          expect(containsSequence(buildConnectionPaths(raw).at(-1)?.states ?? [], states)).toBe(true);
        }
        for (const instance of result.instances) expect(instanceExists(instance)).toBe(false);
        expect(result.nftAfter).not.toContain('simopen_hold');
        expect(hostNftRuleset()).not.toContain('simopen_hold');
        if (demo === 'simultaneous-open') expect(result.openKind).toBe('both-syn-received');
        if (demo === 'simultaneous-close') {
          expect(result.closeKinds).toEqual(['simultaneous', 'simultaneous']);
          expect(result.timeWaitConfirmed).toEqual([
            { side: 0, confirmed: true },
            { side: 1, confirmed: true },
          ]);
        }
        if (demo === 'normal-close' || demo === 'simultaneous-close') {
          // Opened by one thread with the early RST dropped, hole-punch style: A's first SYN met a closed
          // port (its RST dropped), B's SYN then met A in SYN_SENT. Only A passes SYN_RECEIVED.
          expect(result.openKind).toBe('one-sided');
          const opens = [
            ['CLOSED', 'SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED'],
            ['CLOSED', 'SYN_SENT', 'ESTABLISHED'],
          ] as const;
          for (const [index, states] of opens.entries())
            expect(containsSequence(final.sides[index].states, states)).toBe(true);
        }
        if (demo === 'normal-close') {
          expect(result.closeKinds).toEqual(['active', 'passive']);
        }
        if (demo === 'normal-open') expect(result.openKind).toBe('not-simultaneous');
      });
    }

    it('prints the done-means lines in text form', async () => {
      const run = await runTrace(['--demo', 'simultaneous-open']);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/path shown by the kernel trace after \d+ tr(y|ies)/);
      expect(
        run.stdout.match(/CLOSED → SYN_SENT \+\d+µs → SYN_RECEIVED \+\d+µs → ESTABLISHED/g),
      ).toHaveLength(2);
      expect(
        fs.readdirSync(path.join(TRACEFS, 'instances')).filter((name) => name.includes(`-${process.pid}-`)),
      ).toEqual([]);
    });
  },
);
