/**
 * The stress report page: headline figures, the summary (the text report's numbers), thresholds,
 * the comparison, progress over time, latency percentiles (HdrHistogram style), attempts per side,
 * with --trace the state diagram, and the breakdowns other parts add to the result (per agent, per
 * router, a sweep). A section is there when its data is in the result: a result from an older or a
 * newer simopen draws what it has.
 */
import { describeOpenReport } from '../stress/printResult.ts';
import type { HoldReport, PercentilePoint, Percentiles, StressResult } from '../stress/types.ts';
import { escapeHtml } from './html.ts';
import { countsTable, diagramSection, figure, formatNumber, kvTable, recordsTable } from './sections.ts';
import type { PlotSeries, PlotSpec, ReportPage, Section, Tile } from './types.ts';

const COLORS = { establish: '#2563eb', pair: '#0d9488', failed: '#dc2626', cancelled: '#f59e0b' };

/** x of the percentile plot: log10(1 / (1 - q)); q = 100 (the maximum) goes just past the deepest point. */
export function percentileX(percentile: number): number {
  return Math.log10(1 / (1 - percentile / 100));
}

/** A curve's points on the percentile axis, the maximum at `maxAt`. */
export function curveOnAxis(points: readonly PercentilePoint[], maxAt: number): [number, number][] {
  return points.map(([percentile, value]) => [
    percentile >= 100 ? maxAt : Math.round(percentileX(percentile) * 1e6) / 1e6,
    value,
  ]);
}

/** A result without plot data (an older JSON): its printed percentiles as a coarse curve. */
export function curveOfPercentiles(p: Percentiles | null | undefined): PercentilePoint[] {
  if (!p) return [];
  return [
    [0, p.min],
    [50, p.p50],
    [90, p.p90],
    [99, p.p99],
    [99.9, p.p999],
    [100, p.max],
  ];
}

function deepest(points: readonly PercentilePoint[]): number {
  let x = 0;
  for (const [percentile] of points) if (percentile < 100) x = Math.max(x, percentileX(percentile));
  return x;
}

function latencyPlot(result: StressResult): PlotSpec | undefined {
  const curves: { label: string; color: string; points: PercentilePoint[]; dash?: number[] }[] = [
    {
      label: 'establish',
      color: COLORS.establish,
      points: result.distributions?.establishMs ?? curveOfPercentiles(result.establishMs),
    },
    {
      label: 'whole pair',
      color: COLORS.pair,
      points: result.distributions?.pairMs ?? curveOfPercentiles(result.pairMs),
    },
  ];
  const baseline = result.comparison?.baseline;
  if (baseline) {
    curves.push(
      {
        label: 'establish (before)',
        color: COLORS.establish,
        dash: [6, 4],
        points: baseline.distributions?.establishMs ?? curveOfPercentiles(baseline.establishMs),
      },
      {
        label: 'whole pair (before)',
        color: COLORS.pair,
        dash: [6, 4],
        points: baseline.distributions?.pairMs ?? curveOfPercentiles(baseline.pairMs),
      },
    );
  }
  const drawn = curves.filter((curve) => curve.points.length > 0);
  if (!drawn.length) return undefined;
  const maxAt = Math.ceil(Math.max(1, ...drawn.map((curve) => deepest(curve.points))) * 4) / 4 + 0.5;
  return {
    id: 'plot-latency',
    xLabel: 'percentile',
    yLabel: 'latency (ms)',
    percentileAxis: { maxAt },
    series: drawn.map((curve) => ({
      label: curve.label,
      color: curve.color,
      points: curveOnAxis(curve.points, maxAt),
      ...(curve.dash ? { dash: curve.dash } : {}),
    })),
  };
}

/** Points plotted at most: more would draw the jitter of 25 ms samples, not the run. */
export const TIMELINE_PLOTTED = 150;

function timelinePlot(result: StressResult): PlotSpec | undefined {
  const sampled = result.timeline?.points ?? [];
  if (sampled.length < 2) return undefined;
  // Counts are cumulative: keeping every k-th point (and the last) widens the windows, loses nothing.
  const every = Math.ceil((sampled.length - 1) / TIMELINE_PLOTTED);
  const points = sampled.filter((_, index) => index % every === 0 || index === sampled.length - 1);
  const rate: [number, number][] = [];
  const failed: [number, number][] = [];
  const cancelled: [number, number][] = [];
  for (let index = 1; index < points.length; index += 1) {
    const [t, e, f, c] = points[index] as [number, number, number, number];
    const [pt, pe, pf, pc] = points[index - 1] as [number, number, number, number];
    const seconds = (t - pt) / 1000;
    if (seconds <= 0) continue;
    const x = Math.round(t) / 1000;
    rate.push([x, Math.round((e - pe) / seconds)]);
    failed.push([x, Math.round((f - pf) / seconds)]);
    cancelled.push([x, Math.round((c - pc) / seconds)]);
  }
  const series: PlotSeries[] = [{ label: 'established pairs/s', color: COLORS.establish, points: rate }];
  series.push({ label: 'failed/s', color: COLORS.failed, points: failed, right: true });
  if (cancelled.some(([, value]) => value > 0))
    series.push({ label: 'cancelled/s', color: COLORS.cancelled, points: cancelled, right: true });
  return {
    id: 'plot-timeline',
    xLabel: 'seconds since the clock started',
    yLabel: 'pairs/s',
    rightLabel: 'failures/s',
    series,
  };
}

function attemptsPlot(result: StressResult): PlotSpec | undefined {
  const bins = result.distributions?.attempts ?? [];
  if (!bins.length) return undefined;
  return {
    id: 'plot-attempts',
    xLabel: 'connect() attempts',
    yLabel: 'sides',
    bars: bins.map(([low, high]) => (low === high ? String(low) : `${low}-${high}`)),
    series: [{ label: 'sides', color: '#7c3aed', points: bins.map(([, , count], index) => [index, count]) }],
  };
}

function latencyCells(name: string, p: Percentiles | null): string {
  if (!p) return 'n/a (no established pair)';
  return (['p50', 'p90', 'p99', 'p999', 'max', 'mean'] as const)
    .map((stat) => `${stat === 'p999' ? 'p99.9' : stat} ${figure(`${name}.${stat}`, p[stat], ' ms')}`)
    .join(' &nbsp; ');
}

/** --hold: the peak of pairs open at once, keepalives checked, resident memory per held pair. */
function holdCell(hold: HoldReport): string {
  const mib = (name: string, value: number) => figure(name, value, ' MiB', 1, 1 / 1048576);
  return `${figure('hold.holdMs', hold.holdMs, ' s', 3, 1 / 1000)} each, keepalive every ${figure('hold.keepaliveMs', hold.keepaliveMs, ' s', 3, 1 / 1000)}: ${figure('hold.peakOpenPairs', hold.peakOpenPairs)} pairs open at once at the peak, ${figure('hold.keepalivesVerified', hold.keepalivesVerified)} keepalives checked; resident memory ${figure('hold.rssPerHeldPairBytes', hold.rssPerHeldPairBytes, ' KiB', 2, 1 / 1024)} per held pair (peak ${mib('hold.peakRssBytes', hold.peakRssBytes)}, ${mib('hold.rssAtStartBytes', hold.rssAtStartBytes)} when the first pair started)`;
}

function summarySection(result: StressResult): Section {
  const { pairs } = result;
  const rows: [string, string][] = [
    ['mode', `${escapeHtml(result.mode)} <span class="note">(${escapeHtml(result.modeReason)})</span>`],
    [
      'workers',
      `${figure('workers', result.workers)}${result.processes ? ` (in ${figure('processes', result.processes)} processes)` : ''}, ${figure('concurrency', result.concurrency)} pairs in flight at most, ${
        result.sockets === 'handle' ? 'bare TCP handles' : 'net.Socket'
      }${result.socketsReason ? ` (${escapeHtml(result.socketsReason)})` : ''}${
        result.warmupPairsPerWorker
          ? `, ${figure('warmupPairsPerWorker', result.warmupPairsPerWorker)} warm-up pairs each`
          : ''
      }${result.rate !== null ? `, open loop at ${figure('rate', result.rate)} pairs/s` : ''}`,
    ],
    ...(result.open && result.open.mode !== 'one-sided'
      ? ([['open', escapeHtml(describeOpenReport(result.open))]] as [string, string][])
      : []),
    [
      'per pair',
      `${figure('payloadBytes', result.payloadBytes)} bytes each way, close ${escapeHtml(result.close)}, timeout ${figure('timeoutMs', result.timeoutMs)} ms`,
    ],
    [
      'pairs',
      `planned ${figure('pairs.planned', pairs.planned)} &nbsp; established ${figure('pairs.established', pairs.established)} (${figure('successPct', result.successPct, '%', 2)}) &nbsp; failed ${figure('pairs.failed', pairs.failed)} &nbsp; cancelled ${figure('pairs.cancelled', pairs.cancelled)} &nbsp; not started ${figure('pairs.notStarted', pairs.notStarted)}`,
    ],
    [
      'throughput',
      `${figure('pairsPerSec', result.pairsPerSec)} pairs/s over ${figure('durationMs', result.durationMs, ' s', 2, 1 / 1000)}`,
    ],
    ['establish', latencyCells('establishMs', result.establishMs)],
    ['whole pair', latencyCells('pairMs', result.pairMs)],
    [
      'attempts/side',
      result.attempts
        ? (['p50', 'p90', 'p99', 'max', 'mean'] as const)
            .map((stat) => `${stat} ${figure(`attempts.${stat}`, result.attempts?.[stat])}`)
            .join(' &nbsp; ')
        : 'n/a',
    ],
    [
      'errors',
      Object.entries(result.errors)
        .map(([code, count]) => `<code>${escapeHtml(code)}</code> ${figure(`errors.${code}`, count)}`)
        .join(', ') || 'none',
    ],
    ...(result.hold ? ([['hold', holdCell(result.hold)]] as [string, string][]) : []),
    ['bytes verified', figure('bytesVerified', result.bytesVerified)],
    [
      'close outcomes',
      Object.entries(result.closeOutcomes)
        .map(([kind, count]) => `${escapeHtml(kind)} ${figure(`closeOutcomes.${kind}`, count)}`)
        .join(', ') || 'none',
    ],
    ['peak RSS', figure('peakRssBytes', result.peakRssBytes, ' MiB', 0, 1 / 1048576)],
  ];
  if (result.workerCrashes)
    rows.push([
      'worker crashes',
      `${figure('workerCrashes', result.workerCrashes)} (their unfinished pairs count as failed: EWORKERCRASH)`,
    ]);
  if (result.log) rows.push(['pair log', `<code>${escapeHtml(result.log)}</code>`]);
  for (const failed of result.outputErrors ?? [])
    rows.push([
      'output failed',
      `<span class="fail">${escapeHtml(`${failed.option} ${failed.path}: ${failed.error}`)}</span>`,
    ]);
  return { id: 'summary', title: 'Summary', html: kvTable(rows) };
}

function errorsSection(result: StressResult): Section | undefined {
  if (!Object.keys(result.errors).length && !Object.keys(result.retryErrors).length) return undefined;
  const retried = Object.keys(result.retryErrors).length
    ? `<h3>Retried while dialing</h3>${countsTable(result.retryErrors, 'retryErrors', ['code', 'times'])}`
    : '';
  return {
    id: 'errors',
    title: 'Failures',
    html: `${countsTable(result.errors, 'failures', ['why pairs failed', 'pairs'], result.pairs.failed)}${retried}`,
  };
}

function thresholdsSection(result: StressResult): Section | undefined {
  const thresholds = result.thresholds;
  if (!thresholds?.length) return undefined;
  const rows = thresholds
    .map(
      (threshold) =>
        `<tr data-threshold="${escapeHtml(threshold.text)}" data-pass="${threshold.pass}"><td class="${threshold.pass ? 'pass' : 'fail'}">${threshold.pass ? 'pass' : 'FAIL'}</td><td><code>${escapeHtml(threshold.text)}</code></td><td class="num">${
          threshold.actual === null
            ? 'no value'
            : `${escapeHtml(formatNumber(threshold.actual))} ${escapeHtml(threshold.unit)}`
        }</td></tr>`,
    )
    .join('');
  const failed = thresholds.filter((threshold) => !threshold.pass).length;
  return {
    id: 'thresholds',
    title: 'Thresholds',
    html: `<table><thead><tr><th></th><th>threshold</th><th class="num">this run</th></tr></thead><tbody>${rows}</tbody></table><p class="note">${
      failed ? `${failed} failed: stress.ts exits 99.` : 'All passed.'
    }</p>`,
  };
}

function comparisonSection(result: StressResult): Section | undefined {
  const comparison = result.comparison;
  if (!comparison) return undefined;
  const value = (number: number | null, unit: string) =>
    number === null ? '-' : `${formatNumber(number)} ${unit}`;
  const rows = comparison.figures
    .map((row) => {
      const sign = row.delta !== null && row.delta > 0 ? '+' : '';
      const delta =
        row.delta === null
          ? ''
          : `${sign}${formatNumber(row.delta)}${row.deltaPct !== null ? ` (${sign}${formatNumber(row.deltaPct, 1)}%)` : ''}`;
      return `<tr data-compared="${escapeHtml(row.figure)}"><td>${escapeHtml(row.figure)}</td><td class="num">${escapeHtml(value(row.old, row.unit))}</td><td class="num">${escapeHtml(value(row.new, row.unit))}</td><td class="num ${row.change ?? ''}">${escapeHtml(delta)}</td></tr>`;
    })
    .join('');
  return {
    id: 'comparison',
    title: 'Compared with the previous run',
    html: `<p class="note" style="margin:0 0 8px">Before: <code>${escapeHtml(comparison.against)}</code> (${escapeHtml(comparison.baseline.mode)}, ${escapeHtml(
      formatNumber(comparison.baseline.pairs.planned),
    )} pairs planned). Green: better, red: worse.</p><table><thead><tr><th>figure</th><th class="num">before</th><th class="num">this run</th><th class="num">change</th></tr></thead><tbody>${rows}</tbody></table>`,
  };
}

export function plotSection(
  id: string,
  title: string,
  spec: PlotSpec | undefined,
  note: string,
): Section | undefined {
  if (!spec) return undefined;
  return {
    id,
    title,
    html: `<div class="plot" id="${spec.id}"></div><p class="note">${escapeHtml(note)}</p>`,
    wide: true,
  };
}

function traceSection(result: StressResult): Section | undefined {
  const edges = result.stateEdges;
  if (!edges) return undefined;
  const aside = `<h3>How pairs opened</h3>${countsTable(result.openKinds ?? {}, 'openKinds', ['open kind', 'pairs'])}<h3>How sides closed</h3>${countsTable(result.closeKinds ?? {}, 'closeKinds', ['close kind', 'sides'])}`;
  return diagramSection({
    edges,
    ...(result.trace
      ? {
          label: {
            source: result.trace.source as 'kernel' | 'sampled',
            ...(result.trace.reason ? { reason: result.trace.reason } : {}),
            ...(result.trace.sampleIntervalMs ? { sampleIntervalMs: result.trace.sampleIntervalMs } : {}),
          },
        }
      : {}),
    lostEvents: result.trace?.lostEvents ?? 0,
    aside,
    unit: 'sides',
    intro: `Every transition the kernel reported for the ${formatNumber(edges.sides)} sides of the planned pairs that reached ESTABLISHED, drawn by how many sides took it. SYN_SENT → SYN_RECEIVED on both sides: the SYNs crossed (simultaneous open); on one side with SYN_SENT → ESTABLISHED on the other: one-sided. FIN_WAIT_1 → CLOSING: the FINs crossed (simultaneous close); ESTABLISHED → FIN_WAIT_1 on one side and → CLOSE_WAIT on the other: active and passive close.`,
  });
}

/** Breakdowns that other parts of simopen add to the result, drawn as tables of their records. */
export const BREAKDOWNS: { key: string; title: string; note: string }[] = [
  { key: 'agents', title: 'Per agent', note: 'Each agent’s share of the run.' },
  {
    key: 'links',
    title: 'Per link',
    note: 'The pairs between each two agents, and what the NAT matrix expects of their two routers.',
  },
  {
    key: 'lab.routers',
    title: 'Per router',
    note: 'Each NAT router’s figures (conntrack statistics and entries).',
  },
  { key: 'sweep', title: 'Sweep', note: 'One row per point of the sweep.' },
];

function breakdownSections(result: StressResult): Section[] {
  const record = result as unknown as Record<string, unknown>;
  return BREAKDOWNS.flatMap(({ key, title, note }) => {
    // A key may name a nested field (lab.routers).
    const value = key
      .split('.')
      .reduce<unknown>((inner, part) => (inner as Record<string, unknown> | undefined)?.[part], record);
    const records = Array.isArray(value)
      ? value
      : value && typeof value === 'object'
        ? Object.entries(value).map(([name, inner]) => ({ name, ...(inner as object) }))
        : undefined;
    if (!records?.length) return [];
    return [
      {
        id: `breakdown-${key.split('.').at(-1)}`,
        title,
        html: `${recordsTable(records)}<p class="note">${escapeHtml(note)}</p>`,
        wide: true,
      },
    ];
  });
}

function tiles(result: StressResult): Tile[] {
  const { pairs } = result;
  const list: Tile[] = [
    {
      label: 'established',
      value: formatNumber(pairs.established),
      figure: 'pairs.established',
      note: `of ${formatNumber(pairs.planned)} planned (${formatNumber(result.successPct, 2)}%)`,
      tone: pairs.established === pairs.planned && pairs.planned > 0 ? 'good' : 'bad',
    },
    {
      label: 'throughput',
      value: `${formatNumber(result.pairsPerSec, 0)} /s`,
      figure: 'pairsPerSec',
      note: `pairs over ${formatNumber(result.durationMs / 1000, 2)} s`,
    },
    {
      label: 'establish p99',
      value: result.establishMs ? `${formatNumber(result.establishMs.p99)} ms` : 'n/a',
      figure: 'establishMs.p99',
      note: result.establishMs ? `p50 ${formatNumber(result.establishMs.p50)} ms` : 'no pair established',
    },
    {
      label: 'failed',
      value: formatNumber(pairs.failed),
      figure: 'pairs.failed',
      note:
        pairs.cancelled || pairs.notStarted
          ? `${formatNumber(pairs.cancelled)} cancelled, ${formatNumber(pairs.notStarted)} not started`
          : 'none cancelled',
      tone: pairs.failed ? 'bad' : 'good',
    },
  ];
  if (result.openKinds) {
    const established = Object.entries(result.openKinds).filter(([kind]) => kind !== 'not-established');
    const [kind, count] = established.sort((x, y) => y[1] - x[1])[0] ?? ['none', 0];
    list.push({
      label: 'opened mostly',
      value: kind,
      figure: `openKinds.${kind}`,
      note: `${formatNumber(count)} pairs (kernel trace)`,
    });
  }
  if (result.hold) {
    const perPair = result.hold.rssPerHeldPairBytes;
    list.push({
      label: 'held at once',
      value: formatNumber(result.hold.peakOpenPairs),
      figure: 'hold.peakOpenPairs',
      note: `${perPair === null ? 'n/a' : `${formatNumber(perPair / 1024, 2)} KiB`} resident memory per held pair`,
    });
  }
  if (result.thresholds?.length) {
    const passed = result.thresholds.filter((threshold) => threshold.pass).length;
    list.push({
      label: 'thresholds',
      value: `${passed} / ${result.thresholds.length}`,
      note: passed === result.thresholds.length ? 'all passed' : 'failed: exit 99',
      tone: passed === result.thresholds.length ? 'good' : 'bad',
    });
  }
  return list;
}

/** The stress report page of a result; `text` is the text report as printed (kept in the page). */
export function stressReportPage(result: StressResult, text: string): ReportPage {
  const timeline = timelinePlot(result);
  const latency = latencyPlot(result);
  const attempts = attemptsPlot(result);
  const sections = [
    summarySection(result),
    errorsSection(result),
    thresholdsSection(result),
    comparisonSection(result),
    plotSection(
      'timeline',
      'Pairs per second and failures over time',
      timeline,
      'From the counters sampled over the run: pairs established (and failed, cancelled) per second in each window.',
    ),
    plotSection(
      'latency',
      'Latency by percentile',
      latency,
      'HdrHistogram style: the percentile axis is logarithmic in 1/(1 − percentile), so the tail gets the room. Establish: from the pair’s start (its scheduled start with --rate) to both sides connected; whole pair: to both sockets closed. From the merged histograms of all pairs.',
    ),
    plotSection(
      'attempts',
      'connect() attempts per side',
      attempts,
      'Sides by the number of connect() calls they needed (always 1 in sandbox mode).',
    ),
    traceSection(result),
    ...breakdownSections(result),
    {
      id: 'text-report',
      title: 'Text report',
      html: `<details><summary>as stress.ts printed it</summary><pre>${escapeHtml(text)}</pre></details>`,
      wide: true,
    },
  ].filter((section): section is Section => section !== undefined);
  const plots = [timeline, latency, attempts].filter((plot): plot is PlotSpec => plot !== undefined);
  return {
    kind: 'stress',
    title: `Stress: ${formatNumber(result.pairs.planned)} simultaneous opens${result.interrupted ? ' (interrupted, partial)' : ''}`,
    subtitle: `${result.mode} mode, ${result.workers} worker${result.workers === 1 ? '' : 's'}, close ${result.close}${result.trace ? ', kernel-traced' : ''}`,
    tiles: tiles(result),
    sections,
    // The result as --json writes it: the page is also the run's machine-readable record (bounded in size).
    data: { kind: 'stress', plots, result },
  };
}
