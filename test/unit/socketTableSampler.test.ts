import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildConnectionPaths } from '../../lib/trace/connectionPaths.ts';
import { formatTraceReport } from '../../lib/trace/formatPaths.ts';
import { classifyPlannedPairs } from '../../lib/trace/plannedPairTrace.ts';
import {
  diffSamples,
  parseProcNetTcp,
  type SocketRow,
  startProcNetTcpSampler,
} from '../../lib/trace/socketTableSampler.ts';
import { fixture } from '../helpers/traceFixtures.ts';

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
});
