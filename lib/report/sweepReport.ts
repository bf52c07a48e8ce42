/**
 * stress.ts --sweep ... --report: one page for the whole sweep. Its figures are the sweep's rows (the
 * table stress.ts prints): success and how the pairs opened at each skew, and the establish time,
 * drawn against the skew; the rows as a table; the text report. Every point's whole result is in
 * the page's data block, as --json writes it.
 */
import type { SweepResult } from '../stress/types.ts';
import { escapeHtml } from './html.ts';
import { formatNumber, recordsTable } from './sections.ts';
import { plotSection } from './stressReport.ts';
import type { PlotSeries, PlotSpec, ReportPage, Section } from './types.ts';

const COLORS = {
  success: '#16a34a',
  crossed: '#7c3aed',
  oneSided: '#2563eb',
  p50: '#0d9488',
  p99: '#dc2626',
};

function share(part: number, whole: number): number {
  return whole > 0 ? Math.round((part / whole) * 10_000) / 100 : 0;
}

export function sweepReportPage(sweep: SweepResult, text: string): ReportPage {
  const { rows } = sweep;
  const opened: PlotSeries[] = [
    { label: 'success %', color: COLORS.success, points: rows.map((row) => [row.skewMs, row.successPct]) },
  ];
  if (rows.some((row) => row.openKinds)) {
    opened.push({
      label: 'crossed %',
      color: COLORS.crossed,
      points: rows.map((row) => [row.skewMs, share(row.openKinds?.crossed ?? 0, row.established)]),
    });
    opened.push({
      label: 'one-sided %',
      color: COLORS.oneSided,
      points: rows.map((row) => [row.skewMs, share(row.openKinds?.['one-sided'] ?? 0, row.established)]),
    });
  }
  const openedPlot: PlotSpec = {
    id: 'plot-sweep-open',
    xLabel: 'skew (ms)',
    yLabel: '% of pairs',
    series: opened,
  };
  const latencyPlot: PlotSpec = {
    id: 'plot-sweep-establish',
    xLabel: 'skew (ms)',
    yLabel: 'establish (ms)',
    series: [
      { label: 'p50', color: COLORS.p50, points: rows.map((row) => [row.skewMs, row.establishP50Ms ?? 0]) },
      { label: 'p99', color: COLORS.p99, points: rows.map((row) => [row.skewMs, row.establishP99Ms ?? 0]) },
    ],
  };
  const planned = rows.reduce((sum, row) => sum + row.planned, 0);
  const established = rows.reduce((sum, row) => sum + row.established, 0);
  const worst = rows.length ? Math.min(...rows.map((row) => row.successPct)) : 0;
  const sections = [
    plotSection(
      'sweep-open',
      'Success and how pairs opened, by skew',
      openedPlot,
      'One point per run of the sweep: B connected this long after A. With --trace, the share of pairs whose SYNs crossed (both sides through SYN_RECEIVED) and of those that opened one-sided, by the kernel’s record.',
    ),
    plotSection(
      'sweep-establish',
      'Establish time by skew',
      latencyPlot,
      'From each point’s merged histogram: from the pair’s start to both sides connected.',
    ),
    { id: 'sweep-rows', title: 'Points', html: recordsTable(rows), wide: true },
    {
      id: 'text-report',
      title: 'Text report',
      html: `<details><summary>as stress.ts printed it</summary><pre>${escapeHtml(text)}</pre></details>`,
      wide: true,
    },
  ].filter((section): section is Section => section !== undefined);
  return {
    kind: 'stress',
    title: `Stress sweep: ${rows.length} points, skew ${rows[0]?.skewMs ?? 0} to ${rows.at(-1)?.skewMs ?? 0} ms${sweep.interrupted ? ' (interrupted, partial)' : ''}`,
    subtitle: `early SYN ${sweep.earlySyn === 'rst' ? 'answered with RST' : 'dropped'}, the link delivers every ${sweep.delayMs} ms`,
    tiles: [
      { label: 'points', value: formatNumber(rows.length), figure: 'points' },
      {
        label: 'established',
        value: formatNumber(established),
        figure: 'established',
        note: `of ${formatNumber(planned)} planned`,
        tone: established === planned ? 'good' : 'warn',
      },
      {
        label: 'worst point',
        value: `${worst}%`,
        figure: 'worstSuccessPct',
        note: 'success at the worst skew',
        tone: worst === 100 ? 'good' : 'warn',
      },
    ],
    sections,
    data: { kind: 'stress', plots: [openedPlot, latencyPlot], result: sweep },
  };
}
