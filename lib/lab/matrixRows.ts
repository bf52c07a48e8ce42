/**
 * The NAT matrix as data: every combination of router behaviours, the outcome each should have and
 * why, and the summary table. Pure: running the punches is runNatMatrix.ts.
 */
import * as hdr from 'hdr-histogram-js';
import { UsageError } from '../core/errors.ts';
import { allocationOf, formatBehaviour, parseBehaviour } from './topology.ts';
import type { Expectation, MatrixRow, PunchOutcome, RouterBehaviour, RowSummary, Timing } from './types.ts';

export const SKEW_MS = 500;
/** The late start: past RFC 5382's 6 s hold, before the sender's SYN retransmission at 7 s gives up. */
export const LATE_MS = 8000;
/** Loss at each router in the matrix's lossy row. */
export const LOSS_PERCENT = 10;
/** Predicted ports a peer dials at once in the prediction rows. */
export const PREDICT_DIALS = 3;

export function skewOf(timing: Timing): number {
  return timing === 'skew' ? SKEW_MS : timing === 'late' ? LATE_MS : 0;
}

const BEHAVIOURS: RouterBehaviour[] = (['eim', 'edm'] as const).flatMap((mapping) =>
  (['apdf', 'eif'] as const).flatMap((filtering) =>
    (['drop', 'rst'] as const).map((inbound) => ({ mapping, filtering, inbound, lossPercent: 0 })),
  ),
);

/** Does an early SYN come back refused: from the router itself (rst, icmp) or from the host it forwards to (eif)? */
function refusesEarlySyn(behaviour: RouterBehaviour): boolean {
  return behaviour.inbound === 'rst' || behaviour.inbound === 'icmp' || behaviour.filtering === 'eif';
}

function how(behaviour: RouterBehaviour): string {
  return behaviour.inbound === 'rst'
    ? 'answers it with RST'
    : behaviour.inbound === 'icmp'
      ? 'answers it with ICMP administratively prohibited (the connect fails with EHOSTUNREACH)'
      : 'forwards it (EIF) to a host not yet dialing, which sends RST';
}

/** An endpoint-dependent mapping the peer cannot aim at: random ports, or sequential ones without prediction. */
function unpredictable(behaviour: RouterBehaviour, predict: number): boolean {
  return behaviour.mapping === 'edm' && !(allocationOf(behaviour) === 'sequential' && predict > 0);
}

/** What alice's side looks like from outside through a double NAT: the CGNAT's mapping in front of the home router's. */
function seenFromOutside(alice: RouterBehaviour, cgnat: RouterBehaviour | undefined): RouterBehaviour {
  if (!cgnat) return alice;
  return {
    ...cgnat,
    mapping: alice.mapping === 'edm' || cgnat.mapping === 'edm' ? 'edm' : 'eim',
    ...(cgnat.mapping === 'edm' ? {} : alice.mapping === 'edm' ? { allocation: allocationOf(alice) } : {}),
  };
}

export function expectationFor(
  alice: RouterBehaviour,
  bob: RouterBehaviour,
  timing: Timing,
  extra: Pick<MatrixRow, 'layout' | 'cgnat' | 'predict' | 'quietMs' | 'keepAliveMs'> = {},
): Pick<MatrixRow, 'expect' | 'reason'> {
  const predict = extra.predict ?? 0;
  if (extra.layout === 'one-nat')
    return alice.hairpin
      ? {
          expect: 'some',
          reason:
            "alice and bob behind one NAT that hairpins: each dials the other's public endpoint, the router turns it back inside (dnat to the peer, snat to the sender's public endpoint); an early SYN reaches a host not yet dialing, which sends RST, so the SYNs must cross: the retries decide",
        }
      : {
          expect: 'none',
          reason:
            "alice and bob behind one NAT that does not hairpin: a SYN to the router's own public address from inside meets the router itself, which has nothing listening there and answers RST",
        };
  const outside = seenFromOutside(alice, extra.cgnat);
  if (extra.quietMs && (alice.idleTimeoutMs || bob.idleTimeoutMs)) {
    const idle = Math.min(alice.idleTimeoutMs ?? Infinity, bob.idleTimeoutMs ?? Infinity);
    return extra.keepAliveMs && extra.keepAliveMs < idle
      ? {
          expect: 'all',
          reason: `the routers forget an idle TCP mapping after ${idle / 1000} s; TCP keepalive every ${extra.keepAliveMs / 1000} s keeps it, so the lines sent after ${extra.quietMs / 1000} s of silence arrive`,
        }
      : {
          expect: 'none',
          reason: `the routers forget an idle TCP mapping after ${idle / 1000} s; after ${extra.quietMs / 1000} s of silence the lines meet no mapping and are dropped (a router picks up no connection from its middle): keepalives are needed`,
        };
  }
  const blind = [
    unpredictable(outside, predict) ? 'alice' : '',
    unpredictable(bob, predict) ? 'bob' : '',
  ].filter(Boolean);
  if (blind.length) {
    const random = [outside, bob].some((side) => side.mapping === 'edm' && allocationOf(side) === 'random');
    const where =
      extra.cgnat && blind.includes('alice')
        ? ` (alice behind a double NAT whose CGNAT maps endpoint-dependently)`
        : '';
    return {
      expect: 'none',
      reason: random
        ? `symmetric NAT (${blind.join(', ')})${where}: a new random public port per destination, so the port the peer learned from the server is not the one the SYN comes from; the mapped port cannot be predicted${predict ? ' (prediction finds no step in random ports)' : ''}`
        : `symmetric NAT with sequential ports (${blind.join(', ')}), no port prediction: the SYN to the peer leaves from the next port, not the one the server saw`,
    };
  }
  const predicted = [outside, bob].filter((side) => side.mapping === 'edm');
  if (predicted.length)
    return {
      expect: 'all',
      reason: `port prediction: the server saw two mappings of each sequential NAT a step apart and names the next ports; the peer dials ${PREDICT_DIALS} of them at once from one port (${predicted.length === 2 ? "both sides: each side's i-th socket takes its i-th predicted port towards the other's i-th" : 'the sequential side dials once, from the next port'}), and the SYN from the predicted port passes as a reply`,
    };
  const lossy = Math.max(outside.lossPercent, bob.lossPercent);
  if (lossy > 0 && !refusesEarlySyn(outside) && !refusesEarlySyn(bob))
    return {
      expect: 'some',
      reason: `${lossy}% packet loss at the routers: a lost SYN or SYN-ACK costs a retransmission (1 s, then 3 s), so some punches may run past the deadline; the rest succeed`,
    };
  const double = extra.cgnat ? ' through the double NAT (both layers map endpoint-independently)' : '';
  if (timing === 'late')
    return bob.inbound === 'hold6s'
      ? {
          expect: 'none',
          reason: `bob dials ${LATE_MS / 1000} s late; bob's router holds alice's early SYN 6 s (RFC 5382 REQ-4) and answers her retransmission at 7 s with ICMP port unreachable: her connect fails before bob's SYN comes`,
        }
      : refusesEarlySyn(bob)
        ? { expect: 'none', reason: `bob dials ${LATE_MS / 1000} s late; bob's router ${how(bob)}` }
        : {
            expect: 'all',
            reason: `bob dials ${LATE_MS / 1000} s late; bob's router drops alice's SYNs silently, her retransmissions keep her in SYN_SENT, and bob's SYN passes her router as a reply`,
          };
  if (timing === 'skew')
    return refusesEarlySyn(bob)
      ? {
          expect: 'none',
          reason: `alice's SYN arrives ${SKEW_MS} ms before bob dials; bob's router ${how(bob)}, and with one connect each the SYNs never cross`,
        }
      : bob.inbound === 'hold6s'
        ? {
            expect: 'all',
            reason: `bob's router holds alice's early SYN (RFC 5382 REQ-4: no answer for 6 s); bob's SYN, ${SKEW_MS} ms later, passes her router as a reply, and the held SYN is forgotten`,
          }
        : {
            expect: 'all',
            reason: `bob's router drops alice's early SYN silently${bob.filtering === 'adf' ? ' (address-dependent filtering: bob has not sent to her address)' : ''}; alice stays in SYN_SENT and bob's SYN, ${SKEW_MS} ms later, passes her router as a reply`,
          };
  const refusing = [refusesEarlySyn(outside) ? 'alice' : '', refusesEarlySyn(bob) ? 'bob' : ''].filter(
    Boolean,
  );
  if (refusing.length === 0) {
    const notes = [
      [outside, bob].some((side) => side.mapping === 'eim' && allocationOf(side) !== 'preserve')
        ? 'endpoint-independent mapping reuses the public port the server saw, whatever it is'
        : '',
      [outside, bob].some((side) => side.filtering === 'adf')
        ? "address-dependent filtering drops the early SYN: its sender's address has not been contacted"
        : '',
      [outside, bob].some((side) => side.inbound === 'hold6s')
        ? 'a held SYN is not answered within the 6 s'
        : '',
    ].filter(Boolean);
    return {
      expect: 'all',
      reason: `both map endpoint-independently and drop the early SYN silently${double}: the later SYN passes the other router as a reply and meets a socket in SYN_SENT${notes.length ? ` (${notes.join('; ')})` : ''}`,
    };
  }
  if (refusing.length === 1) {
    const [side] = refusing;
    const icmp = (side === 'alice' ? outside : bob).inbound === 'icmp';
    return {
      expect: 'all',
      reason: `${side}'s side refuses the early SYN with ${icmp ? 'ICMP (EHOSTUNREACH)' : 'RST'}; the peer retries, and its next SYN passes ${side}'s router as a reply to ${side}'s SYN, still pending because the other router drops silently`,
    };
  }
  return {
    expect: 'some',
    reason:
      "both sides refuse an early SYN with RST, and each RST closes the sender's mapping: a punch succeeds only when the two SYNs cross in flight, so the retries decide",
  };
}

const router = (text: string): RouterBehaviour => parseBehaviour(text);

/** A row beyond the core product: routers by their text, the rest as given. */
function extraRow(
  alice: string,
  bob: string,
  timing: Timing,
  extra: Pick<MatrixRow, 'layout' | 'predict' | 'quietMs' | 'keepAliveMs'> & { cgnat?: string } = {},
): MatrixRow {
  const { cgnat, ...rest } = extra;
  const fields = { ...rest, ...(cgnat ? { cgnat: router(cgnat) } : {}) };
  return {
    number: 0,
    alice: router(alice),
    bob: router(bob),
    timing,
    ...fields,
    ...expectationFor(router(alice), router(bob), timing, fields),
  };
}

/**
 * The matrix. Rows 1-41: every unordered pair of the 8 behaviours of the first three axes (eim|edm,
 * apdf|eif, drop|rst), started together; then the timing rows and a lossy row. The full product
 * with the later axes (allocation, adf, icmp, hold6s, hairpin, double NAT, idle timeouts, port
 * prediction) would be thousands of rows, so from row 42 on each new value is sampled against the
 * plain router eim:apdf:drop, in the timings where it makes a difference, plus the pairs port
 * prediction needs: one axis at a time.
 */
export function matrixRows(): MatrixRow[] {
  const rows: MatrixRow[] = [];
  BEHAVIOURS.forEach((alice, i) => {
    for (const bob of BEHAVIOURS.slice(i))
      rows.push({ number: 0, alice, bob, timing: 'sync', ...expectationFor(alice, bob, 'sync') });
  });
  const plain = BEHAVIOURS.filter((b) => b.mapping === 'eim' && b.filtering === 'apdf');
  for (const alice of plain)
    for (const bob of plain)
      rows.push({ number: 0, alice, bob, timing: 'skew', ...expectationFor(alice, bob, 'skew') });
  const lossy = { mapping: 'eim', filtering: 'apdf', inbound: 'drop', lossPercent: LOSS_PERCENT } as const;
  rows.push({ number: 0, alice: lossy, bob: lossy, timing: 'sync', ...expectationFor(lossy, lossy, 'sync') });
  const base = 'eim:apdf:drop';
  const predict = { predict: PREDICT_DIALS };
  rows.push(
    // Allocation.
    extraRow(base, 'eim:sequential', 'sync'),
    extraRow(base, 'eim:random', 'sync'),
    extraRow(base, 'edm:sequential', 'sync'),
    extraRow(base, 'edm:sequential', 'sync', predict),
    extraRow('edm:sequential', 'edm:sequential', 'sync'),
    extraRow('edm:sequential', 'edm:sequential', 'sync', predict),
    extraRow(base, 'edm:random', 'sync', predict),
    // Filtering.
    extraRow(base, 'eim:adf', 'sync'),
    extraRow('eim:adf', 'eim:adf', 'sync'),
    extraRow(base, 'eim:adf', 'skew'),
    // Unsolicited SYN.
    extraRow(base, 'eim:icmp', 'sync'),
    extraRow(base, 'eim:icmp', 'skew'),
    extraRow(base, 'eim:hold6s', 'sync'),
    extraRow(base, 'eim:hold6s', 'skew'),
    extraRow('eim:rst', 'eim:hold6s', 'skew'),
    extraRow(base, base, 'late'),
    extraRow(base, 'eim:hold6s', 'late'),
    // Hosts behind one NAT, and a double NAT.
    extraRow('eim:hairpin', base, 'sync', { layout: 'one-nat' }),
    extraRow(base, base, 'sync', { layout: 'one-nat' }),
    extraRow(base, base, 'sync', { layout: 'double-nat', cgnat: base }),
    extraRow(base, base, 'sync', { layout: 'double-nat', cgnat: 'edm' }),
    extraRow(base, base, 'sync', { layout: 'double-nat', cgnat: 'edm:sequential' }),
    extraRow(base, base, 'sync', { layout: 'double-nat', cgnat: 'edm:sequential', ...predict }),
    // Idle mappings.
    extraRow('eim:idle=3s', 'eim:idle=3s', 'sync', { quietMs: 5000 }),
    extraRow('eim:idle=3s', 'eim:idle=3s', 'sync', { quietMs: 5000, keepAliveMs: 1000 }),
  );
  return rows.map((row, index) => ({ ...row, number: index + 1 }));
}

/** What a row is, in words the filter matches: routers, timing, layout, prediction, quiet. */
export function rowText(row: MatrixRow): string {
  return [
    row.layout === 'double-nat'
      ? `${formatBehaviour(row.cgnat ?? row.alice)}/${formatBehaviour(row.alice)}`
      : formatBehaviour(row.alice),
    row.layout === 'one-nat' ? '(same NAT)' : formatBehaviour(row.bob),
    row.timing,
    row.layout ?? 'two-nats',
    ...(row.predict ? [`predict=${row.predict}`] : []),
    ...(row.quietMs ? [`quiet=${row.quietMs / 1000}s`] : []),
    ...(row.keepAliveMs ? [`keepalive=${row.keepAliveMs / 1000}s`] : []),
  ].join(' ');
}

/**
 * Picks rows: `numbers` like "1-4,9,42-" (a range open at the end runs to the last row), and/or a
 * filter: every word of it must occur in the row's text (rowText) or its reason.
 */
export function selectRows(rows: MatrixRow[], numbers?: string, filter?: string): MatrixRow[] {
  let picked = rows;
  if (numbers !== undefined) {
    const wanted = new Set<number>();
    for (const part of numbers.split(',')) {
      const match = /^(\d+)(?:-(\d*))?$/.exec(part.trim());
      if (!match) throw new UsageError(`--rows: '${part}' is not a row number or range (e.g. 1-4,9,42-)`);
      const first = Number(match[1]);
      const last = match[2] === undefined ? first : match[2] === '' ? rows.length : Number(match[2]);
      if (first < 1 || last > rows.length || first > last)
        throw new UsageError(`--rows: '${part}' is outside 1..${rows.length}`);
      for (let n = first; n <= last; n++) wanted.add(n);
    }
    picked = picked.filter((row) => wanted.has(row.number));
  }
  if (filter !== undefined) {
    const words = filter.toLowerCase().split(/\s+/).filter(Boolean);
    picked = picked.filter((row) => {
      const text = `${rowText(row)} ${row.reason}`.toLowerCase();
      return words.every((word) => text.includes(word));
    });
    if (!picked.length) throw new UsageError(`--filter '${filter}': no row matches`);
  }
  return picked;
}

export function summarizeRow(row: MatrixRow, outcomes: PunchOutcome[]): RowSummary {
  const successes = outcomes.filter((outcome) => outcome.ok);
  let medianMs: number | undefined;
  if (successes.length) {
    const histogram = hdr.build({
      lowestDiscernibleValue: 1,
      highestTrackableValue: 3_600_000_000,
      numberOfSignificantValueDigits: 3,
    });
    // Microseconds: the histogram takes integers.
    for (const outcome of successes) histogram.recordValue(Math.max(1, Math.round(outcome.elapsedMs * 1000)));
    medianMs = histogram.getValueAtPercentile(50) / 1000;
    histogram.destroy();
  }
  const retries = outcomes.reduce((sum, outcome) => sum + Math.max(0, outcome.attempts - 1), 0);
  const sockets = outcomes.reduce((sum, outcome) => sum + (outcome.sockets ?? 2), 0);
  const failures = outcomes.filter((outcome) => !outcome.ok);
  const counts = new Map<string, number>();
  for (const failure of failures) counts.set(failure.code ?? '?', (counts.get(failure.code ?? '?') ?? 0) + 1);
  const topCode = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  const top = failures.find((failure) => (failure.code ?? '?') === topCode);
  const matches =
    row.expect === 'all'
      ? successes.length === outcomes.length
      : row.expect === 'none'
        ? successes.length === 0
        : successes.length > 0;
  return {
    row,
    punches: outcomes.length,
    successes: successes.length,
    medianMs,
    retriesPerPunch: outcomes.length ? retries / outcomes.length : 0,
    socketsPerPunch: outcomes.length ? sockets / outcomes.length : 0,
    ...(top ? { failure: { code: top.code ?? '?', error: top.error ?? '' } } : {}),
    matches,
  };
}

const EXPECT_TEXT: Record<Expectation, string> = { all: 'succeeds', none: 'fails', some: 'some succeed' };

function cells(summary: RowSummary): string[] {
  const { row } = summary;
  return [
    String(row.number),
    row.layout === 'double-nat'
      ? `${formatBehaviour(row.cgnat ?? row.alice)}/${formatBehaviour(row.alice)}`
      : formatBehaviour(row.alice),
    row.layout === 'one-nat' ? '(same NAT)' : formatBehaviour(row.bob),
    [
      row.timing,
      ...(row.predict ? [`predict ${row.predict}`] : []),
      ...(row.quietMs ? [`quiet ${row.quietMs / 1000}s`] : []),
      ...(row.keepAliveMs ? [`keepalive ${row.keepAliveMs / 1000}s`] : []),
    ].join(', '),
    `${summary.successes}/${summary.punches}`,
    summary.medianMs === undefined ? '-' : summary.medianMs.toFixed(1),
    summary.retriesPerPunch.toFixed(1),
    (summary.socketsPerPunch ?? 2).toFixed(1),
    EXPECT_TEXT[row.expect],
    summary.matches ? 'ok' : 'MISMATCH',
  ];
}

export const TABLE_HEADER = [
  '#',
  'alice router',
  'bob router',
  'start',
  'direct',
  'median ms',
  'retries',
  'sockets',
  'expected',
  'match',
];

/** A Markdown table (readable in a terminal too), then the reasons, numbered like the rows. */
export function formatMatrix(summaries: RowSummary[]): string {
  const rows = [TABLE_HEADER, ...summaries.map(cells)];
  const widths = TABLE_HEADER.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length)));
  const line = (row: string[]) =>
    `| ${row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(' | ')} |`;
  const table = [
    line(TABLE_HEADER),
    `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`,
    ...rows.slice(1).map(line),
  ];
  const reasons = new Map<string, number[]>();
  summaries.forEach((summary) => {
    const list = reasons.get(summary.row.reason) ?? [];
    list.push(summary.row.number);
    reasons.set(summary.row.reason, list);
  });
  const notes = [...reasons.entries()].map(
    ([reason, indexes]) => `- ${indexes.length > 1 ? 'rows' : 'row'} ${compactRanges(indexes)}: ${reason}`,
  );
  const mismatches = summaries
    .filter((summary) => !summary.matches)
    .map(
      (summary) =>
        `- row ${summary.row.number} MISMATCH: expected ${EXPECT_TEXT[summary.row.expect]}, got ${summary.successes}/${summary.punches}${summary.failure ? ` (${summary.failure.code}: ${summary.failure.error})` : ''}`,
    );
  return [...table, '', 'Why:', ...notes, ...(mismatches.length ? ['', ...mismatches] : [])].join('\n');
}

function compactRanges(numbers: number[]): string {
  const parts: string[] = [];
  let start = numbers[0];
  let previous = start;
  for (const number of [...numbers.slice(1), Number.NaN]) {
    if (number === (previous ?? 0) + 1) {
      previous = number;
      continue;
    }
    parts.push(start === previous ? `${start}` : `${start}-${previous}`);
    start = number;
    previous = number;
  }
  return parts.join(', ');
}
