/**
 * --threshold: pass/fail criteria on a run's result, the k6 way. One grammar, one table of metrics
 * (docs/report.md quotes both):
 *
 *   THRESHOLD  METRIC OP VALUE          e.g. establish.p99<5ms  success>=99.9%  rate>=20000
 *   METRIC     establish.STAT | pair.STAT | attempts.STAT | success | rate | established | failed
 *              | cancelled | notStarted
 *   STAT       min | mean | p50 | p90 | p99 | p999 | max   (attempts: no p999)
 *   OP         < | <= | > | >= | ==
 *   VALUE      a number, with the metric's unit or none: latencies us, ms (the default) or s;
 *              success % (optional); rate /s (optional); counts and attempts none
 *
 * Spaces around OP are allowed. Parsing is pure (a UsageError, exit 2, before the run); evaluating
 * reads the StressResult only.
 */
import { UsageError } from '../core/errors.ts';
import {
  type Percentiles,
  type StressResult,
  THRESHOLD_OPERATORS,
  type Threshold,
  type ThresholdOperator,
  type ThresholdResult,
} from './types.ts';

/** stress.ts's exit code when a threshold failed (k6's too). */
export const EXIT_THRESHOLD_FAILED = 99;

type Unit = 'ms' | '%' | 'pairs/s' | 'pairs' | 'attempts';

interface Metric {
  unit: Unit;
  describe: string;
  value: (result: StressResult) => number | null;
}

const LATENCY_STATS = ['min', 'mean', 'p50', 'p90', 'p99', 'p999', 'max'] as const;
const ATTEMPT_STATS = ['min', 'mean', 'p50', 'p90', 'p99', 'max'] as const;

function latencyMetrics(prefix: string, what: string, pick: (result: StressResult) => Percentiles | null) {
  return Object.fromEntries(
    LATENCY_STATS.map((stat): [string, Metric] => [
      `${prefix}.${stat}`,
      { unit: 'ms', describe: `${what}, ${stat}`, value: (result) => pick(result)?.[stat] ?? null },
    ]),
  );
}

/** Every metric a threshold can name, with its unit and where it comes from in the result. */
export const THRESHOLD_METRICS: Record<string, Metric> = {
  ...latencyMetrics('establish', 'start to both sides connected (ms)', (result) => result.establishMs),
  ...latencyMetrics('pair', 'start to both sockets closed (ms)', (result) => result.pairMs),
  ...Object.fromEntries(
    ATTEMPT_STATS.map((stat): [string, Metric] => [
      `attempts.${stat}`,
      {
        unit: 'attempts',
        describe: `connect() attempts per side, ${stat}`,
        value: (r) => r.attempts?.[stat] ?? null,
      },
    ]),
  ),
  success: { unit: '%', describe: 'established / planned, in percent', value: (result) => result.successPct },
  rate: { unit: 'pairs/s', describe: 'established pairs per second', value: (result) => result.pairsPerSec },
  established: { unit: 'pairs', describe: 'pairs established', value: (result) => result.pairs.established },
  failed: { unit: 'pairs', describe: 'pairs failed', value: (result) => result.pairs.failed },
  cancelled: { unit: 'pairs', describe: 'pairs cancelled', value: (result) => result.pairs.cancelled },
  notStarted: { unit: 'pairs', describe: 'pairs never started', value: (result) => result.pairs.notStarted },
};

/** The units a VALUE may carry, per metric unit, and the factor to the metric's unit. */
const VALUE_UNITS: Record<Unit, Record<string, number>> = {
  ms: { '': 1, us: 0.001, ms: 1, s: 1000 },
  '%': { '': 1, '%': 1 },
  'pairs/s': { '': 1, '/s': 1 },
  pairs: { '': 1 },
  attempts: { '': 1 },
};

const SYNTAX = /^\s*([A-Za-z][\w.]*)\s*(<=|>=|==|<|>)\s*(\d+(?:\.\d+)?|\.\d+)\s*(\S*)\s*$/;

/** One --threshold value: a Threshold, or a UsageError naming what is wrong with it. */
export function parseThreshold(text: string): Threshold {
  const match = SYNTAX.exec(text);
  if (!match)
    throw new UsageError(
      `--threshold '${text}': not METRIC OP VALUE (e.g. 'establish.p99<5ms', 'success>=99.9%', 'rate>=20000'; OP one of ${THRESHOLD_OPERATORS.join(' ')})`,
    );
  const [, metric = '', op = '', number = '', unit = ''] = match;
  const known = THRESHOLD_METRICS[metric];
  if (!known)
    throw new UsageError(
      `--threshold '${text}': unknown metric '${metric}' (one of ${Object.keys(THRESHOLD_METRICS).join(', ')})`,
    );
  const factor = VALUE_UNITS[known.unit][unit];
  if (factor === undefined) {
    const allowed = Object.keys(VALUE_UNITS[known.unit]).filter(Boolean);
    throw new UsageError(
      `--threshold '${text}': ${metric} is in ${known.unit}; '${unit}' is not a unit it takes (${allowed.length ? `${allowed.join(', ')} or none` : 'a plain number'})`,
    );
  }
  return { text, metric, op: op as ThresholdOperator, limit: Number(number) * factor };
}

function holds(actual: number, op: ThresholdOperator, limit: number): boolean {
  switch (op) {
    case '<':
      return actual < limit;
    case '<=':
      return actual <= limit;
    case '>':
      return actual > limit;
    case '>=':
      return actual >= limit;
    case '==':
      return actual === limit;
  }
}

/** Each threshold against the result: its figure and pass or fail (a missing figure fails). */
export function evaluateThresholds(
  thresholds: readonly Threshold[],
  result: StressResult,
): ThresholdResult[] {
  return thresholds.map((threshold) => {
    const metric = THRESHOLD_METRICS[threshold.metric] as Metric;
    const actual = metric.value(result);
    return {
      ...threshold,
      unit: metric.unit,
      actual,
      pass: actual !== null && holds(actual, threshold.op, threshold.limit),
    };
  });
}

function formatValue(value: number, unit: string): string {
  const number = value.toLocaleString('en-US', { maximumFractionDigits: 3 });
  return unit === '%' ? `${number}%` : `${number} ${unit}`;
}

/** The report's lines for the thresholds (none when none were given). */
export function formatThresholds(results: readonly ThresholdResult[] | undefined): string[] {
  if (!results?.length) return [];
  const passed = results.filter((result) => result.pass).length;
  const width = Math.max(...results.map((result) => result.text.length));
  return [
    `  thresholds     ${passed} of ${results.length} passed${passed < results.length ? ' (exit 99)' : ''}`,
    ...results.map(
      (result) =>
        `    ${result.pass ? 'pass' : 'FAIL'}  ${result.text.padEnd(width)}  ${
          result.actual === null
            ? 'no value (no pair established)'
            : `was ${formatValue(result.actual, result.unit)}`
        }`,
    ),
  ];
}
