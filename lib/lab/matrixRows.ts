/**
 * The NAT matrix as data: every combination of router behaviours, the outcome each should have and
 * why, and the summary table. Pure: running the punches is runNatMatrix.ts.
 */
import * as hdr from 'hdr-histogram-js';
import { formatBehaviour } from './topology.ts';
import type { Expectation, MatrixRow, PunchOutcome, RouterBehaviour, RowSummary, Timing } from './types.ts';

export const SKEW_MS = 500;
/** Loss at each router in the matrix's lossy row. */
export const LOSS_PERCENT = 10;

const BEHAVIOURS: RouterBehaviour[] = (['eim', 'edm'] as const).flatMap((mapping) =>
  (['apdf', 'eif'] as const).flatMap((filtering) =>
    (['drop', 'rst'] as const).map((inbound) => ({ mapping, filtering, inbound, lossPercent: 0 })),
  ),
);

/** Does an early SYN come back as a RST, from the router itself (rst) or from the host it forwards to (eif)? */
function refusesEarlySyn(behaviour: RouterBehaviour): boolean {
  return behaviour.inbound === 'rst' || behaviour.filtering === 'eif';
}

function how(behaviour: RouterBehaviour): string {
  return behaviour.inbound === 'rst'
    ? 'answers it with RST'
    : 'forwards it (EIF) to a host not yet dialing, which sends RST';
}

export function expectationFor(
  alice: RouterBehaviour,
  bob: RouterBehaviour,
  timing: Timing,
): Pick<MatrixRow, 'expect' | 'reason'> {
  const symmetric = [alice.mapping === 'edm' ? 'alice' : '', bob.mapping === 'edm' ? 'bob' : ''].filter(
    Boolean,
  );
  if (symmetric.length)
    return {
      expect: 'none',
      reason: `symmetric NAT (${symmetric.join(', ')}): a new random public port per destination, so the port the peer learned from the server is not the one the SYN comes from; the mapped port cannot be predicted`,
    };
  const lossy = Math.max(alice.lossPercent, bob.lossPercent);
  if (
    lossy > 0 &&
    alice.mapping === 'eim' &&
    bob.mapping === 'eim' &&
    !refusesEarlySyn(alice) &&
    !refusesEarlySyn(bob)
  )
    return {
      expect: 'some',
      reason: `${lossy}% packet loss at the routers: a lost SYN or SYN-ACK costs a retransmission (1 s, then 3 s), so some punches may run past the deadline; the rest succeed`,
    };
  if (timing === 'skew')
    return refusesEarlySyn(bob)
      ? {
          expect: 'none',
          reason: `alice's SYN arrives ${SKEW_MS} ms before bob dials; bob's router ${how(bob)}, and with one connect each the SYNs never cross`,
        }
      : {
          expect: 'all',
          reason: `bob's router drops alice's early SYN silently; alice stays in SYN_SENT and bob's SYN, ${SKEW_MS} ms later, passes her router as a reply`,
        };
  const refusing = [refusesEarlySyn(alice) ? 'alice' : '', refusesEarlySyn(bob) ? 'bob' : ''].filter(Boolean);
  if (refusing.length === 0)
    return {
      expect: 'all',
      reason:
        'both map endpoint-independently and drop the early SYN silently: the later SYN passes the other router as a reply and meets a socket in SYN_SENT',
    };
  if (refusing.length === 1) {
    const [side] = refusing;
    return {
      expect: 'all',
      reason: `${side}'s side refuses the early SYN with RST; the peer retries, and its next SYN passes ${side}'s router as a reply to ${side}'s SYN, still pending because the other router drops silently`,
    };
  }
  return {
    expect: 'some',
    reason:
      "both sides refuse an early SYN with RST, and each RST closes the sender's mapping: a punch succeeds only when the two SYNs cross in flight, so the retries decide",
  };
}

/** Every unordered pair of the 8 router behaviours, started together; then the timing rows and a lossy row. */
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
  return rows.map((row, index) => ({ ...row, number: index + 1 }));
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
    ...(top ? { failure: { code: top.code ?? '?', error: top.error ?? '' } } : {}),
    matches,
  };
}

const EXPECT_TEXT: Record<Expectation, string> = { all: 'succeeds', none: 'fails', some: 'some succeed' };

function cells(summary: RowSummary): string[] {
  const { row } = summary;
  return [
    String(row.number),
    formatBehaviour(row.alice),
    formatBehaviour(row.bob),
    row.timing,
    `${summary.successes}/${summary.punches}`,
    summary.medianMs === undefined ? '-' : summary.medianMs.toFixed(1),
    summary.retriesPerPunch.toFixed(1),
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
