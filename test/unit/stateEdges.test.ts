import { describe, expect, it } from 'vitest';
import { buildConnectionPaths } from '../../lib/trace/connectionPaths.ts';
import { classifyPlannedPairs } from '../../lib/trace/plannedPairTrace.ts';
import { edgesOf, MAX_PATHS_LISTED, PathTally } from '../../lib/trace/stateEdges.ts';
import type { StateEdges, TcpState } from '../../lib/trace/types.ts';
import { fixture, parseText } from '../helpers/traceFixtures.ts';

const edgeMap = (edges: StateEdges) =>
  Object.fromEntries(edges.edges.map((edge) => [`${edge.from}>${edge.to}`, edge.sides]));

const ONE_SIDED_A: TcpState[] = ['CLOSED', 'SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED', 'FIN_WAIT_1'];
const ONE_SIDED_B: TcpState[] = ['CLOSED', 'SYN_SENT', 'ESTABLISHED', 'CLOSE_WAIT', 'LAST_ACK', 'CLOSED'];

describe('state diagram edge counts', () => {
  it('lists the transitions of a path, skipping a repeated state', () => {
    expect(edgesOf(['CLOSED', 'SYN_SENT', 'SYN_SENT', 'ESTABLISHED'])).toEqual([
      ['CLOSED', 'SYN_SENT'],
      ['SYN_SENT', 'ESTABLISHED'],
    ]);
    expect(edgesOf(['CLOSED'])).toEqual([]);
  });

  it('counts edges by the sides that took them, and the distinct paths', () => {
    const tally = new PathTally();
    for (let index = 0; index < 1000; index += 1) {
      tally.add(ONE_SIDED_A);
      tally.add(ONE_SIDED_B);
    }
    const result = tally.result();
    expect(result.sides).toBe(2000);
    expect(edgeMap(result)).toEqual({
      'CLOSED>SYN_SENT': 2000,
      'SYN_SENT>SYN_RECEIVED': 1000,
      'SYN_RECEIVED>ESTABLISHED': 1000,
      'ESTABLISHED>FIN_WAIT_1': 1000,
      'SYN_SENT>ESTABLISHED': 1000,
      'ESTABLISHED>CLOSE_WAIT': 1000,
      'CLOSE_WAIT>LAST_ACK': 1000,
      'LAST_ACK>CLOSED': 1000,
    });
    expect(result.paths).toEqual([
      { states: ONE_SIDED_A, sides: 1000 },
      { states: ONE_SIDED_B, sides: 1000 },
    ]);
    expect(result.sidesNotListed).toBe(0);
  });

  it('stays exact on edges when the paths outnumber its table, and bounds what it lists', () => {
    // Paths of different lengths: CLOSED -> SYN_SENT -> (SYN_SENT -> ...) -> CLOSED, all distinct.
    const tally = new PathTally(4);
    const paths: TcpState[][] = [];
    for (let length = 1; length <= 100; length += 1) {
      const states: TcpState[] = ['CLOSED'];
      for (let step = 0; step < length; step += 1) states.push(step % 2 ? 'CLOSED' : 'SYN_SENT');
      paths.push(states);
      tally.add(states);
    }
    const result = tally.result();
    expect(result.sides).toBe(100);
    const expected = new Map<string, number>();
    for (const states of paths)
      for (const [from, to] of edgesOf(states))
        expected.set(`${from}>${to}`, (expected.get(`${from}>${to}`) ?? 0) + 1);
    expect(edgeMap(result)).toEqual(Object.fromEntries(expected));
    expect(result.paths.length).toBeLessThanOrEqual(Math.min(4, MAX_PATHS_LISTED));
    expect(result.sidesNotListed).toBe(100 - result.paths.reduce((sum, path) => sum + path.sides, 0));
  });

  it('counts, for planned pairs, exactly the sides whose kinds are counted', () => {
    const paths = buildConnectionPaths(parseText(fixture('simultaneous-open-then-close.trace.txt')));
    const v4 = (port: number) => ({ host: '127.0.0.1', port });
    const result = classifyPlannedPairs(paths, [{ id: 0, a: v4(31000), b: v4(31001) }]);
    // One pair, one-sided open, FINs crossing: two sides, each through CLOSING.
    expect(result.openKinds['one-sided']).toBe(1);
    expect(result.closeKinds.simultaneous).toBe(2);
    const edges = edgeMap(result.stateEdges);
    expect(result.stateEdges.sides).toBe(2);
    expect(edges['SYN_SENT>SYN_RECEIVED']).toBe(1);
    expect(edges['SYN_SENT>ESTABLISHED']).toBe(1);
    expect(edges['FIN_WAIT_1>CLOSING']).toBe(2);
    // The earlier connection on the same 4-tuple is not the planned pair's: not counted.
    expect(edges['CLOSED>SYN_SENT']).toBe(2);
  });
});
