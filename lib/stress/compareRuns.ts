/**
 * --compare OLD.json: a previous run's result beside this one. The file is read and checked before
 * the run (not a stress.ts --json file: a UsageError, exit 2); after the run each figure is given
 * with its delta, and the report draws both latency curves in one plot.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../core/errors.ts';
import type { Comparison, FigureDelta, Percentiles, StressResult } from './types.ts';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What makes a document a stress result, with the first thing missing named. */
function whatIsMissing(document: unknown): string | undefined {
  if (!isObject(document)) return 'it is not a JSON object';
  const pairs = document.pairs;
  if (!isObject(pairs)) return 'it has no "pairs" object';
  for (const key of ['planned', 'established', 'failed'])
    if (typeof pairs[key] !== 'number') return `"pairs.${key}" is not a number`;
  for (const key of ['successPct', 'pairsPerSec', 'durationMs'])
    if (typeof document[key] !== 'number') return `"${key}" is not a number`;
  if (typeof document.mode !== 'string') return 'it has no "mode"';
  for (const key of ['establishMs', 'pairMs'])
    if (document[key] !== null && !isObject(document[key])) return `"${key}" is neither null nor an object`;
  return undefined;
}

/** Reads OLD.json; a UsageError names the file and what is wrong with it. */
export function readStressResult(path: string, option = '--compare'): StressResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new UsageError(`${option}: cannot read ${path} (${code})`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw new UsageError(`${option}: ${path} is not JSON (give the file a stress.ts --json run wrote)`);
  }
  const missing = whatIsMissing(document);
  if (missing) throw new UsageError(`${option}: ${path} is not a stress.ts --json result: ${missing}`);
  return document as StressResult;
}

/** Which way is better; neutral: neither (how many pairs were planned, say). */
type Better = 'higher' | 'lower' | 'neutral';

interface FigureSpec {
  figure: string;
  unit: string;
  better: Better;
  value: (result: StressResult) => number | null | undefined;
}

const latency = (name: string, pick: (result: StressResult) => Percentiles | null): FigureSpec[] =>
  (['p50', 'p90', 'p99', 'p999', 'max', 'mean'] as const).map((stat) => ({
    figure: `${name} ${stat === 'p999' ? 'p99.9' : stat}`,
    unit: 'ms',
    better: 'lower',
    value: (result) => pick(result)?.[stat],
  }));

/** The figures compared, in the order printed. */
export const COMPARED_FIGURES: FigureSpec[] = [
  { figure: 'throughput', unit: 'pairs/s', better: 'higher', value: (result) => result.pairsPerSec },
  { figure: 'success', unit: '%', better: 'higher', value: (result) => result.successPct },
  { figure: 'planned', unit: 'pairs', better: 'neutral', value: (result) => result.pairs.planned },
  { figure: 'failed', unit: 'pairs', better: 'lower', value: (result) => result.pairs.failed },
  ...latency('establish', (result) => result.establishMs),
  ...latency('whole pair', (result) => result.pairMs),
  { figure: 'attempts mean', unit: 'attempts', better: 'lower', value: (result) => result.attempts?.mean },
  { figure: 'attempts max', unit: 'attempts', better: 'lower', value: (result) => result.attempts?.max },
  {
    figure: 'peak RSS',
    unit: 'MiB',
    better: 'lower',
    value: (result) =>
      typeof result.peakRssBytes === 'number' ? Math.round((result.peakRssBytes / 1048576) * 10) / 10 : null,
  },
];

function round(value: number, digits = 3): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

export function compareResults(old: StressResult, current: StressResult, against: string): Comparison {
  const figures: FigureDelta[] = COMPARED_FIGURES.map((spec) => {
    const before = spec.value(old);
    const after = spec.value(current);
    const oldValue = typeof before === 'number' ? before : null;
    const newValue = typeof after === 'number' ? after : null;
    const delta = oldValue !== null && newValue !== null ? round(newValue - oldValue) : null;
    const deltaPct = delta !== null && oldValue ? round((delta / Math.abs(oldValue)) * 100, 1) : null;
    let change: FigureDelta['change'] = null;
    if (delta !== null && spec.better !== 'neutral')
      change = delta === 0 ? 'same' : delta > 0 === (spec.better === 'higher') ? 'better' : 'worse';
    return { figure: spec.figure, unit: spec.unit, old: oldValue, new: newValue, delta, deltaPct, change };
  });
  return {
    against,
    figures,
    baseline: {
      mode: old.mode,
      pairs: old.pairs,
      pairsPerSec: old.pairsPerSec,
      establishMs: old.establishMs,
      pairMs: old.pairMs,
      ...(old.distributions ? { distributions: old.distributions } : {}),
    },
  };
}

function format(value: number | null, unit: string): string {
  if (value === null) return '-';
  const number = value.toLocaleString('en-US', { maximumFractionDigits: 3 });
  return unit === '%' ? `${number}%` : `${number} ${unit}`;
}

/** The report's lines: each figure, old → new, and the delta. */
export function formatComparison(comparison: Comparison | undefined): string[] {
  if (!comparison) return [];
  const rows = comparison.figures.map((figure) => {
    const sign = figure.delta !== null && figure.delta > 0 ? '+' : '';
    const delta =
      figure.delta === null
        ? ''
        : figure.delta === 0
          ? 'same'
          : `${sign}${format(figure.delta, figure.unit)}${figure.deltaPct !== null ? ` (${sign}${figure.deltaPct}%)` : ''}${
              figure.change === 'worse' ? '  worse' : figure.change === 'better' ? '  better' : ''
            }`;
    return [figure.figure, format(figure.old, figure.unit), format(figure.new, figure.unit), delta];
  });
  const width = (column: number) => Math.max(...rows.map((row) => (row[column] ?? '').length));
  return [
    `  compared with  ${comparison.against} (${comparison.baseline.mode}, ${comparison.baseline.pairs.planned.toLocaleString('en-US')} pairs planned)`,
    ...rows.map(([figure = '', old = '', now = '', delta = '']) =>
      `    ${figure.padEnd(width(0))}  ${old.padStart(width(1))} -> ${now.padStart(width(2))}  ${delta}`.trimEnd(),
    ),
  ];
}
