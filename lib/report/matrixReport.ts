/**
 * lab.ts matrix --report: the NAT matrix as grids of router behaviours (alice's router down the
 * side, bob's across the top), one grid per way of starting (and per loss), each cell coloured by
 * what the punches did and its reason on hover; then every row as the text table has it. The
 * behaviours come from the rows themselves, so a matrix with more of them draws them all.
 */
import { formatBehaviour } from '../lab/topology.ts';
import type { Expectation, RowSummary } from '../lab/types.ts';
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

/** The hover text of a row's cell: what ran, what happened, what was expected and why. */
export function cellTitle(summary: RowSummary): string {
  const { row } = summary;
  const lines = [
    `row ${row.number}: alice ${formatBehaviour(row.alice)}, bob ${formatBehaviour(row.bob)}, ${row.timing === 'skew' ? 'bob starts late' : 'both start together'}`,
    `${summary.successes}/${summary.punches} direct${summary.medianMs === undefined ? '' : `, median ${summary.medianMs.toFixed(1)} ms`}, ${summary.retriesPerPunch.toFixed(1)} retries per punch`,
    `expected: ${EXPECT_TEXT[row.expect]}${summary.matches ? ' (matches)' : ' (MISMATCH)'}`,
    `why: ${row.reason}`,
  ];
  if (summary.failure) lines.push(`failure: ${summary.failure.code}: ${summary.failure.error}`);
  return lines.join('\n');
}

/** One grid per way of starting and loss, in the order the rows come. */
function groupKey(summary: RowSummary): string {
  const { row } = summary;
  const loss = Math.max(row.alice.lossPercent, row.bob.lossPercent);
  return `${row.timing === 'skew' ? 'bob starts late, one connect each' : 'both start together, retry after a refusal'}${loss ? `, ${loss}% loss` : ''}`;
}

function grid(title: string, summaries: readonly RowSummary[]): string {
  const alices: string[] = [];
  const bobs: string[] = [];
  const cells = new Map<string, RowSummary>();
  for (const summary of summaries) {
    const alice = formatBehaviour(summary.row.alice);
    const bob = formatBehaviour(summary.row.bob);
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

function rowsTable(summaries: readonly RowSummary[]): string {
  const rows = summaries
    .map((summary) => {
      const { row } = summary;
      return `<tr data-row="${row.number}"><td class="num">${row.number}</td><td><code>${escapeHtml(formatBehaviour(row.alice))}</code></td><td><code>${escapeHtml(formatBehaviour(row.bob))}</code></td><td>${row.timing}</td><td class="num">${summary.successes}/${summary.punches}</td><td class="num">${
        summary.medianMs === undefined ? '-' : summary.medianMs.toFixed(1)
      }</td><td class="num">${summary.retriesPerPunch.toFixed(1)}</td><td>${escapeHtml(EXPECT_TEXT[row.expect])}</td><td>${
        summary.matches ? '<span class="pass">ok</span>' : '<span class="fail">MISMATCH</span>'
      }</td><td class="note">${escapeHtml(row.reason)}${summary.failure ? `<br><code>${escapeHtml(`${summary.failure.code}: ${summary.failure.error}`)}</code>` : ''}</td></tr>`;
    })
    .join('');
  return `<div style="overflow-x:auto"><table><thead><tr><th class="num">#</th><th>alice router</th><th>bob router</th><th>start</th><th class="num">direct</th><th class="num">median ms</th><th class="num">retries</th><th>expected</th><th>match</th><th>why</th></tr></thead><tbody>${rows}</tbody></table></div>`;
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
  const legend = `<p class="note"><span class="badge good">all connected</span> <span class="badge warn">some</span> <span class="badge bad">none</span> &nbsp; a framed cell with “!” did not match its expected outcome. Hover a cell for its reason. A behaviour is MAPPING:FILTERING:INBOUND[:LOSS]: eim/edm endpoint-independent or -dependent mapping, eif/apdf filtering, what the router does with an unsolicited SYN (drop, rst).</p>`;
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
