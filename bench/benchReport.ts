/**
 * The benchmark's judgement and text: ratios against the C reference and the Node baseline, whether
 * the rate stays flat and peak memory stays put as the pair count grows 100-fold. Pure functions.
 */

export interface Verdict {
  check: string;
  pass: boolean;
  detail: string;
}

/** stress.ts should reach at least this share of the C reference's pairs/s (issue 3). */
export const TARGET_SHARE_OF_C = 0.5;
/** The rate at every pair count stays within this fraction of the fastest (issue 3: 15%). */
export const RATE_SPREAD_TOLERANCE = 0.15;
/**
 * Peak RSS at the largest count may exceed that at the smallest by this fraction (GC heuristics and
 * warm-up, not a per-pair cost: even 100 bytes kept per pair would add 100 MB at 1M pairs).
 */
export const RSS_GROWTH_TOLERANCE = 0.2;

export interface ScalePoint {
  pairs: number;
  pairsPerSec: number;
  peakRssBytes: number;
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function formatCount(value: number): string {
  return integer.format(value);
}

export function formatMb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}

function percent(fraction: number): string {
  return `${(fraction * 100).toFixed(1)}%`;
}

function signedPercent(fraction: number): string {
  return `${fraction >= 0 ? '+' : ''}${percent(fraction)}`;
}

export function shareOfCVerdict(stressRate: number, cRate: number): Verdict {
  const share = stressRate / cRate;
  return {
    check: `stress.ts >= ${TARGET_SHARE_OF_C}x the C reference`,
    pass: share >= TARGET_SHARE_OF_C,
    detail: `${share.toFixed(2)}x (${formatCount(stressRate)} vs ${formatCount(cRate)} pairs/s)`,
  };
}

/** A lab run of two EIM routers should open at least this many pairs/s (issue 10). */
export const TARGET_LAB_RATE = 10_000;

export function labRateVerdict(labRate: number): Verdict {
  return {
    check: `stress.ts --lab (two EIM routers, conntrack watched) >= ${formatCount(TARGET_LAB_RATE)} pairs/s`,
    pass: labRate >= TARGET_LAB_RATE,
    detail: `${formatCount(labRate)} pairs/s`,
  };
}

/** --hold: every pair of the hold open at once, at this memory per held pair at most (issue 9). */
export const HOLD_RSS_PER_PAIR_MAX = 2048;

export function holdVerdicts(
  pairs: number,
  hold: { peakOpenPairs: number; rssPerHeldPairBytes: number | null },
): Verdict[] {
  const perPair = hold.rssPerHeldPairBytes;
  return [
    {
      check: `--hold: ${formatCount(pairs)} pairs open at once`,
      pass: hold.peakOpenPairs >= pairs,
      detail: `${formatCount(hold.peakOpenPairs)} at the peak`,
    },
    {
      check: `--hold: resident memory per held pair < ${HOLD_RSS_PER_PAIR_MAX / 1024} KiB`,
      pass: perPair !== null && perPair < HOLD_RSS_PER_PAIR_MAX,
      detail: perPair === null ? 'n/a' : `${(perPair / 1024).toFixed(2)} KiB`,
    },
  ];
}

/** --open crossed: this share of pairs at least must be crossed by the kernel's record (issue 9). */
export const CROSSED_SHARE_MIN = 0.999;
/** ... at this share of one-sided mode's pairs/s at least, in the same bench run. */
export const CROSSED_RATE_SHARE_MIN = 0.5;

export function crossedVerdict(crossedShare: number, crossedRate: number, oneSidedRate: number): Verdict {
  const rateShare = crossedRate / oneSidedRate;
  return {
    check: `--open crossed: >= ${CROSSED_SHARE_MIN * 100}% crossed at >= ${CROSSED_RATE_SHARE_MIN}x one-sided pairs/s`,
    pass: crossedShare >= CROSSED_SHARE_MIN && rateShare >= CROSSED_RATE_SHARE_MIN,
    detail: `${(crossedShare * 100).toFixed(3)}% crossed, ${rateShare.toFixed(2)}x (${formatCount(crossedRate)} vs ${formatCount(oneSidedRate)} pairs/s)`,
  };
}

export function flatRateVerdict(points: ScalePoint[]): Verdict {
  const rates = points.map((point) => point.pairsPerSec);
  const fastest = Math.max(...rates);
  const slowest = Math.min(...rates);
  const spread = fastest > 0 ? 1 - slowest / fastest : 1;
  const pass = points.length >= 2 && spread <= RATE_SPREAD_TOLERANCE;
  const smallest = Math.min(...points.map((point) => point.pairs));
  const slowestIsSmallest = points.find((point) => point.pairsPerSec === slowest)?.pairs === smallest;
  return {
    check: `rate flat within ${percent(RATE_SPREAD_TOLERANCE)} across pair counts`,
    pass,
    detail:
      `${points.map((point) => `${formatCount(point.pairsPerSec)}@${shortCount(point.pairs)}`).join(', ')} pairs/s; slowest is ${percent(spread)} below fastest` +
      // A hint, not an excuse: start-up and JIT warm-up weigh most on the shortest run.
      (!pass && slowestIsSmallest ? ` (the slowest is the shortest run: start-up weighs most there)` : ''),
  };
}

export function flatRssVerdict(points: ScalePoint[]): Verdict {
  const sorted = [...points].sort((a, b) => a.pairs - b.pairs);
  const smallest = sorted[0];
  const largest = sorted[sorted.length - 1];
  const measured = sorted.every((point) => point.peakRssBytes > 0);
  const growth =
    smallest && largest && measured ? largest.peakRssBytes / smallest.peakRssBytes - 1 : Number.NaN;
  return {
    check: `peak RSS not growing with pair count (tolerance ${percent(RSS_GROWTH_TOLERANCE)})`,
    pass: sorted.length >= 2 && measured && growth <= RSS_GROWTH_TOLERANCE,
    // Each step's change too: a plateau after warm-up reads differently from steady growth.
    detail: measured
      ? `${sorted
          .map((point, index) => {
            const previous = sorted[index - 1];
            const step = previous
              ? ` (${signedPercent(point.peakRssBytes / previous.peakRssBytes - 1)})`
              : '';
            return `${formatMb(point.peakRssBytes)}@${shortCount(point.pairs)}${step}`;
          })
          .join(
            ', ',
          )}; ${signedPercent(growth)} from ${shortCount(smallest?.pairs ?? 0)} to ${shortCount(largest?.pairs ?? 0)}`
      : 'peak RSS not measured',
  };
}

/** 10000 -> 10k, 1000000 -> 1M. */
export function shortCount(value: number): string {
  if (value >= 1e6 && value % 1e5 === 0) return `${value / 1e6}M`;
  if (value >= 1e3 && value % 100 === 0) return `${value / 1e3}k`;
  return String(value);
}

export function formatVerdict(verdict: Verdict): string {
  return `${verdict.pass ? 'PASS' : 'FAIL'}  ${verdict.check}: ${verdict.detail}`;
}

/** One result line: name padded, pairs, rate. */
export function formatFigure(name: string, pairs: number, pairsPerSec: number, note = ''): string {
  return `  ${name.padEnd(44)} ${formatCount(pairs).padStart(9)} pairs  ${formatCount(pairsPerSec).padStart(7)} pairs/s${note ? `  ${note}` : ''}`;
}
