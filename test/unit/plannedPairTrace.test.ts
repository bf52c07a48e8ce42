import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { planPairs } from '../../lib/stress/planPairs.ts';
import { annotatePairLog, pairsOfPlan, traceOptionsForPlan } from '../../lib/stress/traceStress.ts';
import { buildConnectionPaths } from '../../lib/trace/connectionPaths.ts';
import { classifyPlannedPairs, formatPairKinds } from '../../lib/trace/plannedPairTrace.ts';
import { fixture, parseText } from '../helpers/traceFixtures.ts';

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
});
