/**
 * trace.ts --report: what the HTML report needs, collected as connections end (a TraceOutput beside
 * the text or NDJSON one), in memory bounded whatever the trace's length: the edges of every path
 * on the state diagram (paths interned, lib/trace/stateEdges.ts), and the first few connections in
 * full, to draw one by one. Then the page.
 */
import { formatEndpoint } from '../core/endpoint.ts';
import { formatKindCounts, formatSourceLabel } from '../trace/formatPaths.ts';
import { PathTally } from '../trace/stateEdges.ts';
import type { TraceOutput } from '../trace/traceOutput.ts';
import type { ConnectionPath, TimeWaitCheck, TracedItem, TraceStart, TraceSummary } from '../trace/types.ts';
import { escapeHtml } from './html.ts';
import { countsTable, DIAGRAM_ID, diagramSection, figure, formatNumber, kvTable } from './sections.ts';
import type { ReportPage, Section, Tile } from './types.ts';

/** Connections kept in full to draw one by one. */
export const DETAILED_CONNECTIONS = 16;
/** Listeners and failed attempts kept in full besides them. */
export const DETAILED_OTHERS = 4;

interface DetailedSide {
  endpoints: string;
  states: ConnectionPath['states'];
  text: string;
  untracked: boolean;
}

interface DetailedItem {
  /** The item's number in the trace (1-based), as the table lists it. */
  seq: number;
  kind: TracedItem['kind'];
  sides: DetailedSide[];
  open?: string;
  close?: string[];
}

/** "CLOSED → SYN_SENT +0µs → ESTABLISHED +21µs": offsets from `originUs` (the connection's first transition). */
function relativeStates(path: ConnectionPath, originUs: number): string {
  return path.steps
    .map((step, index) =>
      index === 0
        ? step.state
        : `${step.state}${step.inferred ? '*' : ''} +${(step.timestampUs - originUs).toLocaleString('en-US')}µs`,
    )
    .join(' → ');
}

function detailOf(path: ConnectionPath, originUs: number): DetailedSide {
  return {
    endpoints: `${formatEndpoint(path.local)} > ${formatEndpoint(path.remote)}`,
    states: path.states.slice(),
    text: relativeStates(path, originUs),
    untracked: path.untracked === true,
  };
}

/** Collects as the trace goes; `page()` once it has ended. */
export class TraceReportCollector implements TraceOutput {
  readonly tally = new PathTally();
  private startRecord: TraceStart | undefined;
  private summary: TraceSummary | undefined;
  private readonly detailed: DetailedItem[] = [];
  private items = 0;

  start(start: TraceStart): void {
    this.startRecord = start;
  }

  event(): void {}

  item(item: TracedItem): void {
    this.items += 1;
    const paths =
      item.kind === 'connection'
        ? item.pair.sides.filter((side): side is ConnectionPath => !!side)
        : [item.path];
    for (const path of paths) this.tally.add(path.states);
    const slot = this.slotFor(item);
    if (slot === undefined) return;
    // The first transition's time: the first step of a path is when it left its first state.
    const originUs = Math.min(...paths.map((path) => path.steps[1]?.timestampUs ?? path.startUs));
    this.detailed[slot] = {
      seq: this.items,
      kind: item.kind,
      sides: paths.map((path) => detailOf(path, originUs)),
      ...(item.kind === 'connection'
        ? {
            open: item.pair.open,
            close: item.pair.close.filter((kind): kind is NonNullable<typeof kind> => !!kind),
          }
        : {}),
    };
  }

  /**
   * Where this item goes in the detailed list, if anywhere: the first connections, and the first
   * few listeners and failed attempts besides. Once the connections are full, a connection that
   * opened in a way none listed did takes the place of the latest one of a way listed twice, so
   * every kind of open seen has an example to draw.
   */
  private slotFor(item: TracedItem): number | undefined {
    if (item.kind !== 'connection') {
      const others = this.detailed.filter((entry) => entry.kind !== 'connection').length;
      return others < DETAILED_OTHERS ? this.detailed.length : undefined;
    }
    const connections = this.detailed.filter((entry) => entry.kind === 'connection');
    if (connections.length < DETAILED_CONNECTIONS) return this.detailed.length;
    if (connections.some((entry) => entry.open === item.pair.open)) return undefined;
    const byOpen = new Map<string | undefined, number>();
    for (const entry of connections) byOpen.set(entry.open, (byOpen.get(entry.open) ?? 0) + 1);
    for (let index = this.detailed.length - 1; index >= 0; index -= 1) {
      const entry = this.detailed[index] as DetailedItem;
      if (entry.kind === 'connection' && (byOpen.get(entry.open) ?? 0) > 1) return index;
    }
    return undefined;
  }

  timeWait(_check: TimeWaitCheck): void {}

  tick(): void {}

  end(summary: TraceSummary): void {
    this.summary = summary;
  }

  page(): ReportPage {
    const detailed = this.detailed.slice().sort((x, y) => x.seq - y.seq);
    return traceReportPage(this.startRecord, this.summary, this.tally, detailed, this.items);
  }
}

function connectionsTable(detailed: readonly DetailedItem[], items: number): string {
  if (!detailed.length) return '<p class="note">No connection was traced.</p>';
  const rows = detailed
    .map((item) => {
      const what =
        item.kind === 'connection'
          ? `${escapeHtml(item.open ?? '')}<br><span class="note">close ${escapeHtml((item.close ?? []).join(', '))}</span>`
          : escapeHtml(item.kind);
      const sides = item.sides
        .map(
          (side, sideIndex) =>
            `<div><span class="legend-swatch" style="background:${sideIndex === 0 ? '#7c3aed' : '#db2777'}"></span><code>${escapeHtml(side.endpoints)}</code>${side.untracked ? ' <span class="badge warn">untracked</span>' : ''}<div class="states">${escapeHtml(side.text)}</div></div>`,
        )
        .join('');
      return `<tr class="pick" data-paths="${escapeHtml(JSON.stringify(item.sides.map((side) => side.states)))}"><td class="num">${formatNumber(item.seq)}</td><td>${what}</td><td>${sides}</td></tr>`;
    })
    .join('');
  const more =
    items > detailed.length
      ? `<p class="note">${detailed.length} of ${formatNumber(items)} listed (numbered in the order they ended): the first connections, at least one of each way they opened, and the first listeners and failed attempts; all of them are counted on the diagram.</p>`
      : '';
  return `<div data-diagram="${DIAGRAM_ID}" style="max-height:760px;overflow-y:auto"><table><thead><tr><th class="num">#</th><th>open / close</th><th>sides, each state with its time from the connection’s first transition (click a row to draw it on the diagram)</th></tr></thead><tbody>${rows}</tbody></table></div>${more}`;
}

export function traceReportPage(
  start: TraceStart | undefined,
  summary: TraceSummary | undefined,
  tally: PathTally,
  detailed: readonly DetailedItem[],
  items: number,
): ReportPage {
  const edges = tally.result();
  const counts = summary?.counts;
  const label = summary?.label ?? start?.label;
  const sections: Section[] = [];
  const rows: [string, string][] = [];
  if (label) rows.push(['source', escapeHtml(formatSourceLabel(label).replace(/^source: /, ''))]);
  if (start?.instance) rows.push(['trace instance', `<code>${escapeHtml(start.instance)}</code>`]);
  rows.push([
    'ports',
    start?.portRange ? `${start.portRange.first}-${start.portRange.last}` : 'all TCP ports',
  ]);
  if (start?.hosts?.length) rows.push(['addresses', escapeHtml(start.hosts.join(', '))]);
  if (start?.command?.length)
    rows.push([
      'command',
      `<code>${escapeHtml(start.command.join(' '))}</code>${summary?.exitCode !== undefined ? ` (exit ${figure('exitCode', summary.exitCode)})` : ''}`,
    ]);
  if (counts) {
    rows.push(
      ['connections', figure('connections', counts.connections)],
      ['paths', `${figure('paths', counts.paths)} (connection sides, listeners, failed attempts)`],
      ['listeners', figure('listeners', counts.listeners)],
      ['failed attempts', figure('failedAttempts', counts.failedAttempts)],
      ['open kinds', escapeHtml(formatKindCounts(counts.openKinds))],
      ['close kinds', `${escapeHtml(formatKindCounts(counts.closeKinds))} (per side)`],
    );
  }
  if (summary) {
    rows.push(
      [
        'lost events',
        summary.lostEvents
          ? `<span class="fail">${figure('lostEvents', summary.lostEvents)} (ring buffer full: raise --buffer-kb)</span>`
          : figure('lostEvents', 0),
      ],
      [
        'kept at once',
        `${figure('peakKept', summary.peakKept)} sides at most (--max-open ${formatNumber(summary.maxOpen)})${summary.untracked ? `; ${figure('untracked', summary.untracked)} given out untracked` : ''}`,
      ],
      ['peak RSS', figure('peakRssBytes', summary.peakRssBytes, ' MiB', 0, 1 / 1048576)],
    );
    if (summary.timeWait)
      rows.push([
        'TIME_WAIT checks',
        `${figure('timeWait.confirmed', summary.timeWait.confirmed)} confirmed, ${figure('timeWait.notConfirmed', summary.timeWait.notConfirmed)} not`,
      ]);
  }
  sections.push({ id: 'summary', title: 'Summary', html: kvTable(rows) });
  if (counts)
    sections.push({
      id: 'kinds',
      title: 'How connections opened and closed',
      html: `${countsTable(counts.openKinds, 'openKinds', ['open kind', 'connections'])}<h3>How sides closed</h3>${countsTable(counts.closeKinds, 'closeKinds', ['close kind', 'sides'])}<p class="note">crossed: both SYNs crossed, each side went through SYN_RECEIVED; one-sided: one side did, the other went straight to ESTABLISHED (a hole punch’s usual path); not-simultaneous: a listener took part.</p>`,
    });
  const aside = '';
  sections.push(
    diagramSection({
      edges,
      ...(label ? { label } : {}),
      lostEvents: summary?.lostEvents ?? 0,
      aside,
      unit: 'paths',
      intro: `Every transition the kernel reported, over all ${formatNumber(edges.sides)} paths (a connection side, a listener, a failed connect() attempt), drawn by how many paths took it. Pick a connection below to draw its two sides.`,
    }),
  );
  sections.push({
    id: 'connections',
    title: 'Connections, one by one',
    html: connectionsTable(detailed, items),
    wide: true,
  });
  const tiles: Tile[] = [
    {
      label: 'connections',
      value: formatNumber(counts?.connections ?? 0),
      figure: 'connections',
      note: `${formatNumber(counts?.paths ?? 0)} paths`,
    },
    {
      label: 'opened mostly',
      value: counts ? (Object.entries(counts.openKinds).sort((x, y) => y[1] - x[1])[0]?.[0] ?? '-') : '-',
      note: counts ? formatKindCounts(counts.openKinds) : '',
    },
    {
      label: 'failed attempts',
      value: formatNumber(counts?.failedAttempts ?? 0),
      figure: 'failedAttempts',
      tone: counts?.failedAttempts ? 'warn' : 'plain',
    },
    {
      label: 'lost events',
      value: formatNumber(summary?.lostEvents ?? 0),
      figure: 'lostEvents',
      tone: summary?.lostEvents ? 'bad' : 'good',
    },
  ];
  return {
    kind: 'trace',
    title: `Trace: ${formatNumber(counts?.connections ?? 0)} connection${counts?.connections === 1 ? '' : 's'}`,
    subtitle: `${label?.source === 'kernel' ? 'kernel tracepoint' : 'sampled socket table'}${start?.command?.length ? `, while running ${start.command.join(' ')}` : ''}`,
    tiles,
    sections,
    data: { kind: 'trace', plots: [] },
  };
}
