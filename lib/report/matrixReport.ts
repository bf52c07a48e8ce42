/**
 * lab.ts matrix --report: the NAT matrix as grids of router behaviours (alice's router down the
 * side, bob's across the top), one grid per way of starting (and per loss), each cell coloured by
 * what the punches did and its reason on hover; then every row as the text table has it. The
 * behaviours come from the rows themselves, so a matrix with more of them draws them all.
 */
import { LATE_MS, matrixRowCells, SKEW_MS, TABLE_HEADER } from '../lab/matrixRows.ts';
import { formatBehaviour } from '../lab/topology.ts';
import type { Expectation, MatrixRow, RouterBehaviour, RowSummary, Timing } from '../lab/types.ts';
import { escapeHtml } from './html.ts';
import { formatNumber } from './sections.ts';
import type { ReportPage, Section, Tile } from './types.ts';

export interface MatrixRunFacts {
  punches: number;
  deadlineMs: number;
  retryIntervalMs: number;
  labId: string;
  /** Rows in the whole matrix (the run may have picked some). */
  totalRows: number;
}

const EXPECT_TEXT: Record<Expectation, string> = {
  all: 'every punch connects',
  none: 'no punch connects',
  some: 'some punches connect',
};

/** all, none or some of the punches connected. */
export function outcomeOf(summary: RowSummary): 'all' | 'none' | 'some' {
  if (summary.successes === 0) return 'none';
  return summary.successes === summary.punches ? 'all' : 'some';
}

const TIMING_TEXT: Record<Timing, string> = {
  sync: 'both start together, retry after a refusal',
  skew: `bob starts ${SKEW_MS} ms late, one connect each`,
  late: `bob starts ${LATE_MS / 1000} s late, one connect each`,
};

/** Alice's side of the grid: her router, behind the CGNAT in a double NAT. */
export function aliceLabel(row: MatrixRow): string {
  return row.layout === 'double-nat'
    ? `${formatBehaviour(row.cgnat ?? row.alice)}/${formatBehaviour(row.alice)}`
    : formatBehaviour(row.alice);
}

/** Bob's side of the grid: his router, or alice's when both sit behind one. */
export function bobLabel(row: MatrixRow): string {
  return row.layout === 'one-nat' ? '(same NAT)' : formatBehaviour(row.bob);
}

/** The hover text of a row's cell: what ran, what happened, what was expected and why. */
export function cellTitle(summary: RowSummary): string {
  const { row } = summary;
  const lines = [
    `row ${row.number}: alice ${aliceLabel(row)}, bob ${bobLabel(row)}, ${TIMING_TEXT[row.timing]}`,
    `${summary.successes}/${summary.punches} direct${summary.medianMs === undefined ? '' : `, median ${summary.medianMs.toFixed(1)} ms`}, ${summary.retriesPerPunch.toFixed(1)} retries per punch`,
    `expected: ${EXPECT_TEXT[row.expect]}${summary.matches ? ' (matches)' : ' (MISMATCH)'}`,
    `why: ${row.reason}`,
  ];
  if (summary.failure) lines.push(`failure: ${summary.failure.code}: ${summary.failure.error}`);
  return lines.join('\n');
}

/** Mapping, filtering and inbound of the first matrix only (eim/edm, eif/apdf, drop/rst). */
function isClassic(behaviour: RouterBehaviour): boolean {
  return /^(eim|edm):(eif|apdf):(drop|rst)(:\d+%)?$/.test(formatBehaviour(behaviour));
}

const LAYOUT_TEXT = {
  'two-nats': '',
  'one-nat': 'both behind one router',
  'double-nat': 'alice behind a CGNAT and her router',
} as const;

/**
 * One grid per way of starting, loss, layout and the other axes of a row that the cell labels do
 * not show, in the order the rows come: two rows never share a cell.
 */
export function groupKey(summary: RowSummary): string {
  const { row } = summary;
  const loss = Math.max(row.alice.lossPercent, row.bob.lossPercent);
  const classic = [row.alice, row.bob, ...(row.cgnat ? [row.cgnat] : [])].every(isClassic);
  return [
    TIMING_TEXT[row.timing],
    // The square grid of the first behaviours stays square; routers with more to them get their own.
    ...(classic ? [] : ['more router behaviours']),
    ...(loss ? [`${loss}% loss`] : []),
    ...(row.layout && LAYOUT_TEXT[row.layout] ? [LAYOUT_TEXT[row.layout]] : []),
    ...(row.predict ? [`port prediction (${row.predict} at once)`] : []),
    ...(row.quietMs ? [`${row.quietMs / 1000} s quiet after connecting`] : []),
    ...(row.keepAliveMs ? [`keepalive every ${row.keepAliveMs / 1000} s`] : []),
  ].join(', ');
}

function grid(title: string, summaries: readonly RowSummary[]): string {
  const alices: string[] = [];
  const bobs: string[] = [];
  const cells = new Map<string, RowSummary>();
  for (const summary of summaries) {
    const alice = aliceLabel(summary.row);
    const bob = bobLabel(summary.row);
    if (!alices.includes(alice)) alices.push(alice);
    if (!bobs.includes(bob)) bobs.push(bob);
    // Two rows on one cell (a matrix with more axes than the label shows): the first one stays.
    if (!cells.has(`${alice}|${bob}`)) cells.set(`${alice}|${bob}`, summary);
  }
  const head = `<tr><th class="axis">alice ↓ &nbsp; bob →</th>${bobs.map((bob) => `<th class="col-head">${escapeHtml(bob)}</th>`).join('')}</tr>`;
  const body = alices
    .map((alice) => {
      const row = bobs
        .map((bob) => {
          const summary = cells.get(`${alice}|${bob}`);
          if (!summary) return '<td class="cell empty"></td>';
          const outcome = outcomeOf(summary);
          return `<td class="cell ${outcome}${summary.matches ? '' : ' mismatch'}" data-row="${summary.row.number}" data-outcome="${outcome}" data-matches="${summary.matches}" title="${escapeHtml(cellTitle(summary))}">${summary.successes}/${summary.punches}${summary.matches ? '' : ' !'}</td>`;
        })
        .join('');
      return `<tr><th class="row-head">${escapeHtml(alice)}</th>${row}</tr>`;
    })
    .join('');
  return `<h3>${escapeHtml(title)}</h3><div style="overflow-x:auto"><table class="matrix-grid">${head}${body}</table></div>`;
}

/** Every row as lab.ts matrix prints it (the same cells), with its reason. */
function rowsTable(summaries: readonly RowSummary[]): string {
  const numeric = new Set(['#', 'direct', 'median ms', 'retries', 'sockets']);
  const head = [...TABLE_HEADER, 'why']
    .map((name) => `<th${numeric.has(name) ? ' class="num"' : ''}>${escapeHtml(name)}</th>`)
    .join('');
  const rows = summaries
    .map((summary) => {
      const cells = matrixRowCells(summary)
        .map((cell, column) => {
          const name = TABLE_HEADER[column] ?? '';
          if (name === 'match')
            return `<td>${summary.matches ? '<span class="pass">ok</span>' : '<span class="fail">MISMATCH</span>'}</td>`;
          if (name.endsWith('router')) return `<td><code>${escapeHtml(cell)}</code></td>`;
          return `<td${numeric.has(name) ? ' class="num"' : ''}>${escapeHtml(cell)}</td>`;
        })
        .join('');
      const why = `<td class="note">${escapeHtml(summary.row.reason)}${summary.failure ? `<br><code>${escapeHtml(`${summary.failure.code}: ${summary.failure.error}`)}</code>` : ''}</td>`;
      return `<tr data-row="${summary.row.number}">${cells}${why}</tr>`;
    })
    .join('');
  return `<div style="overflow-x:auto"><table><thead><tr>${head}</tr></thead><tbody>${rows}</tbody></table></div>`;
}

export function matrixReportPage(summaries: readonly RowSummary[], facts: MatrixRunFacts): ReportPage {
  const groups = new Map<string, RowSummary[]>();
  for (const summary of summaries) {
    const key = groupKey(summary);
    groups.set(key, [...(groups.get(key) ?? []), summary]);
  }
  const matched = summaries.filter((summary) => summary.matches).length;
  const punches = summaries.reduce((sum, summary) => sum + summary.punches, 0);
  const direct = summaries.reduce((sum, summary) => sum + summary.successes, 0);
  const legend = `<p class="note"><span class="badge good">all connected</span> <span class="badge warn">some</span> <span class="badge bad">none</span> &nbsp; a framed cell with “!” did not match its expected outcome. Hover a cell for its reason. A behaviour is MAPPING[:ALLOCATION]:FILTERING:INBOUND[:hairpin][:idle=D][:LOSS%] as lab.ts up takes it: eim/edm endpoint-independent or -dependent mapping; preserve/sequential/random port allocation (shown when not the mapping’s default); eif/adf/apdf endpoint-independent, address-dependent or address-and-port-dependent filtering; what the router does with an unsolicited SYN (drop, rst, icmp, hold6s). A double NAT shows CGNAT/ROUTER.</p>`;
  const sections: Section[] = [
    {
      id: 'grid',
      title: 'Router behaviours against each other',
      html: `${legend}${Array.from(groups, ([title, rows]) => grid(title, rows)).join('')}<pre id="cell-detail" class="cell-detail">Hover or click a cell: its row, what the punches did, what was expected and why.</pre>`,
      wide: true,
    },
    {
      id: 'rows',
      title: 'Every row',
      html: `<details><summary>${summaries.length} rows as lab.ts matrix prints them, each with its reason</summary>${rowsTable(summaries)}</details>`,
      wide: true,
    },
  ];
  const tiles: Tile[] = [
    {
      label: 'rows matched',
      value: `${matched} / ${summaries.length}`,
      figure: 'matched',
      tone: matched === summaries.length ? 'good' : 'bad',
      note:
        matched === summaries.length
          ? 'every row as expected'
          : `${summaries.length - matched} did not match`,
    },
    { label: 'punches', value: formatNumber(punches), figure: 'punches', note: `${facts.punches} per row` },
    {
      label: 'direct',
      value: formatNumber(direct),
      figure: 'direct',
      note: punches ? `${formatNumber((direct / punches) * 100, 1)}% of punches` : '',
    },
    {
      label: 'deadline',
      value: `${formatNumber(facts.deadlineMs / 1000, 1)} s`,
      note: `per punch; retry after ${formatNumber(facts.retryIntervalMs)} ms`,
    },
  ];
  return {
    kind: 'matrix',
    title: `NAT matrix: ${summaries.length} row${summaries.length === 1 ? '' : 's'}`,
    subtitle: `TCP hole punching between alice and bob through each pair of emulated NAT routers, ${facts.punches} punch${facts.punches === 1 ? '' : 'es'} per row (${summaries.length} of ${facts.totalRows} rows, lab ${facts.labId})`,
    tiles,
    sections,
    // The rows as data too: the page is also a machine-readable record of the run.
    data: { kind: 'matrix', plots: [], rows: summaries, run: facts },
  };
}
