/** The NAT matrix as data: its rows, what each should do and why, and how a row's punches are judged. */
import { describe, expect, it } from 'vitest';
import { expectationFor, formatMatrix, matrixRows, summarizeRow } from '../../lib/lab/matrixRows.ts';
import { formatBehaviour } from '../../lib/lab/topology.ts';
import type { PunchOutcome, RouterBehaviour } from '../../lib/lab/types.ts';

const router = (text: string): RouterBehaviour => {
  const [mapping, filtering, inbound] = text.split(':') as [
    RouterBehaviour['mapping'],
    RouterBehaviour['filtering'],
    RouterBehaviour['inbound'],
  ];
  return { mapping, filtering, inbound, lossPercent: 0 };
};

const outcome = (id: number, ok: boolean): PunchOutcome => ({
  id,
  ok,
  elapsedMs: 10 * (id + 1),
  attempts: 2,
  errors: {},
  ...(ok ? {} : { code: 'EREFUSED', error: 'refused' }),
});

describe('NAT matrix rows', () => {
  it('every pair of the 8 behaviours started together, 4 skewed rows and a lossy one, numbered from 1', () => {
    const all = matrixRows();
    expect(all.map((row) => row.number)).toEqual(all.map((_, index) => index + 1));
    // Rows 1-41 keep their numbers; the sampled axes follow.
    const rows = all.slice(0, 41);
    expect(rows.filter((row) => row.timing === 'skew')).toHaveLength(4);
    const [first] = rows;
    expect([
      formatBehaviour(first?.alice as RouterBehaviour),
      formatBehaviour(first?.bob as RouterBehaviour),
    ]).toEqual(['eim:apdf:drop', 'eim:apdf:drop']);
    expect(first?.expect).toBe('all');
    const row38 = rows[37];
    expect([row38?.timing, formatBehaviour(row38?.bob as RouterBehaviour), row38?.expect]).toEqual([
      'skew',
      'eim:apdf:rst',
      'none',
    ]);
    expect(rows.at(-1)?.alice.lossPercent).toBeGreaterThan(0);
    expect(rows.at(-1)?.expect).toBe('some');
  });

  it('expects what each behaviour allows, and says why', () => {
    expect(expectationFor(router('edm:apdf:drop'), router('eim:apdf:drop'), 'sync')).toMatchObject({
      expect: 'none',
      reason: expect.stringMatching(/^symmetric NAT \(alice\)/),
    });
    expect(expectationFor(router('eim:apdf:drop'), router('eim:apdf:drop'), 'sync').expect).toBe('all');
    expect(expectationFor(router('eim:apdf:drop'), router('eim:apdf:rst'), 'sync')).toMatchObject({
      expect: 'all',
      reason: expect.stringMatching(/^bob's side refuses the early SYN/),
    });
    expect(expectationFor(router('eim:apdf:rst'), router('eim:eif:drop'), 'sync').expect).toBe('some');
    expect(expectationFor(router('eim:apdf:drop'), router('eim:apdf:drop'), 'skew').expect).toBe('all');
    expect(expectationFor(router('eim:apdf:drop'), router('eim:eif:drop'), 'skew').expect).toBe('none');
  });

  it('judges a row by its expectation and keeps the most frequent failure', () => {
    const [all] = matrixRows();
    if (!all) throw new Error('no rows');
    const none = { ...all, expect: 'none' as const };
    const some = { ...all, expect: 'some' as const };
    const mixed = [outcome(0, true), outcome(1, false), outcome(2, true)];
    expect(summarizeRow(all, [outcome(0, true), outcome(1, true)]).matches).toBe(true);
    expect(summarizeRow(all, mixed)).toMatchObject({
      punches: 3,
      successes: 2,
      matches: false,
      failure: { code: 'EREFUSED', error: 'refused' },
      retriesPerPunch: 1,
    });
    expect(summarizeRow(none, [outcome(0, false)]).matches).toBe(true);
    expect(summarizeRow(none, mixed).matches).toBe(false);
    expect(summarizeRow(some, mixed).matches).toBe(true);
    expect(summarizeRow(some, [outcome(0, false)]).matches).toBe(false);
    expect(summarizeRow(all, [outcome(0, true), outcome(2, true)]).medianMs).toBeCloseTo(10, 0);
    const table = formatMatrix([summarizeRow(all, mixed)]);
    expect(table).toMatch(/^\| # +\| alice router/);
    expect(table).toMatch(/\| 1 +\| eim:apdf:drop \| eim:apdf:drop \| sync +\| 2\/3 /);
    expect(table).toMatch(/- row 1 MISMATCH: expected succeeds, got 2\/3 \(EREFUSED: refused\)/);
  });
});
