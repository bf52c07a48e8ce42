/**
 * npm run bench: how fast is stress.ts, against a C reference doing the same simultaneous opens and
 * a plain-Node connect + accept baseline, all in a private network namespace that drops the early
 * RSTs; and does its rate stay flat, and its memory put, from 10k to 1M pairs?
 *
 * Exit codes: 0 everything measured (targets missed or not: see the PASS/FAIL lines), 1 a figure could
 * not be measured (no sandbox, stress.ts missing or failing, a run with no completed pair), 2 usage,
 * 130 interrupted.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { EXIT, ExitError, parseCount, parseFlags, runMain, UsageError } from '../lib/cli.ts';
import { insideSandbox, probeSandbox, reexecInSandbox, setupSandboxNetwork } from '../lib/sandbox.ts';
import { type BaselineResult, type CloseKind, runBaseline } from './baselineListener.ts';
import {
  flatRateVerdict,
  flatRssVerdict,
  formatCount,
  formatFigure,
  formatMb,
  formatVerdict,
  type ScalePoint,
  shareOfCVerdict,
  shortCount,
  type Verdict,
} from './benchReport.ts';
import { signalChildren } from './childProcess.ts';
import { buildCReference, type CReferenceResult, runCReference } from './cReference.ts';
import { runStress, type StressRun, stressAvailable } from './stressRunner.ts';

const USAGE =
  'npm run bench -- [--quick] [--skip-1m] [--pairs N] [--workers N] [--payload BYTES] ' +
  '[--close graceful|reset|simultaneous] [--inflight K] [--only c,baseline,stress] [--json FILE]';

const CLOSE_KINDS: readonly CloseKind[] = ['graceful', 'reset', 'simultaneous'];
const PARTS = ['c', 'baseline', 'stress'] as const;
type Part = (typeof PARTS)[number];
const DEFAULT_SCALE = [10_000, 100_000, 1_000_000];
const QUICK_SCALE = [2_000, 10_000, 50_000];

interface BenchOptions {
  /** Pairs of the comparison runs (C, baseline, stress). */
  pairs: number;
  scale: number[];
  workers: number;
  payloadBytes: number;
  close: CloseKind;
  /** Pairs in flight per worker/thread. */
  inflight: number;
  /** Which figures to measure (all by default). */
  only: ReadonlySet<Part>;
  jsonFile?: string;
}

function parseOptions(args: string[]): BenchOptions {
  const { values, positionals } = parseFlags(args, {
    quick: { type: 'boolean' },
    'skip-1m': { type: 'boolean' },
    pairs: { type: 'string' },
    workers: { type: 'string' },
    payload: { type: 'string' },
    close: { type: 'string' },
    inflight: { type: 'string' },
    json: { type: 'string' },
    only: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) throw new ExitError(`usage: ${USAGE}`, EXIT.ok);
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  let scale = values.quick ? QUICK_SCALE : DEFAULT_SCALE;
  if (values['skip-1m']) scale = scale.filter((pairs) => pairs < 1_000_000);
  const close = values.close ?? 'graceful';
  if (!CLOSE_KINDS.includes(close as CloseKind))
    throw new UsageError(`--close: '${close}' is not one of ${CLOSE_KINDS.join(', ')}`);
  if (values.json === '') throw new UsageError('--json: needs a file name');
  const only = new Set((values.only ?? PARTS.join(',')).split(',').map((part) => part.trim()));
  for (const part of only)
    if (!(PARTS as readonly string[]).includes(part))
      throw new UsageError(`--only: '${part}' is not one of ${PARTS.join(', ')}`);
  return {
    pairs: values.pairs
      ? parseCount(values.pairs, '--pairs', 100, 10_000_000)
      : values.quick
        ? 10_000
        : 100_000,
    scale,
    workers: values.workers ? parseCount(values.workers, '--workers', 1, 256) : os.availableParallelism(),
    payloadBytes: values.payload ? parseCount(values.payload, '--payload', 0, 1_000_000) : 64,
    close: close as CloseKind,
    inflight: values.inflight ? parseCount(values.inflight, '--inflight', 1, 10_000) : 64,
    only: only as Set<Part>,
    jsonFile: values.json,
  };
}

/** Second octets of 127.0.0.0/8 for the runs in the bench's own namespace, so none shares a 4-tuple. */
const NET_C = 1;
const NET_BASELINE = 2;

interface Measured<T> {
  result?: T;
  error?: string;
  skipped?: string;
}

async function measure<T>(label: string, run: () => Promise<T>): Promise<Measured<T>> {
  process.stderr.write(`bench: ${label}...\n`);
  try {
    return { result: await run() };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

let interrupted = false;
const abortBaseline = new AbortController();

function checkInterrupted(): void {
  if (interrupted) throw new ExitError('interrupted', EXIT.interrupted);
}

async function benchInSandbox(options: BenchOptions): Promise<number> {
  setupSandboxNetwork();
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted = true;
    abortBaseline.abort();
    signalChildren(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const { workers, payloadBytes, close, inflight } = options;
  process.stdout.write(
    `simopen bench: ${workers} workers/threads on ${os.availableParallelism()} cores, payload ${payloadBytes} B each way, ` +
      `close ${close}, ${inflight} pairs in flight per worker; ${new Date().toISOString()}\n`,
  );

  // 1. The C reference.
  let c: Measured<CReferenceResult>;
  const build = options.only.has('c')
    ? buildCReference()
    : { ok: false as const, reason: 'not selected (--only)' };
  if (!build.ok) c = { skipped: build.reason };
  else
    c = await measure(`C reference, ${formatCount(options.pairs)} pairs`, () =>
      runCReference(build.binary, {
        pairs: options.pairs,
        threads: workers,
        inflightPerThread: inflight,
        payloadBytes,
        close,
        net: NET_C,
      }),
    );
  checkInterrupted();

  // 2. The plain-Node baseline.
  const baseline: Measured<BaselineResult> = !options.only.has('baseline')
    ? { skipped: 'not selected (--only)' }
    : await measure(`Node baseline, ${formatCount(options.pairs)} pairs`, () =>
        runBaseline({
          workers,
          pairs: options.pairs,
          concurrencyPerWorker: inflight,
          payloadBytes,
          close,
          net: NET_BASELINE,
          signal: abortBaseline.signal,
        }),
      );
  checkInterrupted();

  // 3. stress.ts at each pair count (and at the comparison count, if that is not one of them).
  const stressRuns = new Map<number, Measured<StressRun>>();
  const counts = options.only.has('stress')
    ? [...new Set([...options.scale, options.pairs])].sort((a, b) => a - b)
    : [];
  for (const pairs of counts) {
    if (!stressAvailable()) {
      stressRuns.set(pairs, { error: 'scripts/stress.ts does not exist yet' });
      continue;
    }
    stressRuns.set(
      pairs,
      await measure(`stress.ts, ${formatCount(pairs)} pairs`, () =>
        runStress({ pairs, workers, payloadBytes, close, concurrency: inflight * workers }),
      ),
    );
    checkInterrupted();
  }

  // Report.
  const notMeasured: string[] = [];
  const lines: string[] = [
    '',
    'pairs/s (each pair: simultaneous open or connect+accept, payload both ways checked, close):',
  ];
  const figureLine = <T>(name: string, measured: Measured<T>, line: (result: T) => string) => {
    if (measured.result !== undefined) lines.push(line(measured.result));
    else if (measured.skipped) lines.push(`  ${name.padEnd(44)} skipped: ${measured.skipped}`);
    else {
      lines.push(`  ${name.padEnd(44)} NOT MEASURED: ${measured.error}`);
      notMeasured.push(name);
    }
  };
  const failedNote = (failed: number) => (failed > 0 ? `(${formatCount(failed)} FAILED pairs)` : '');
  figureLine(`C reference (${workers} threads, epoll)`, c, (result) =>
    formatFigure(
      `C reference (${workers} threads, epoll)`,
      result.pairs,
      result.pairsPerSec,
      failedNote(result.failed),
    ),
  );
  figureLine(`Node baseline (connect+accept, ${workers} workers)`, baseline, (result) =>
    formatFigure(
      `Node baseline (connect+accept, ${workers} workers)`,
      result.pairs,
      result.pairsPerSec,
      failedNote(result.failed),
    ),
  );
  const stressMain = stressRuns.get(options.pairs) ?? { skipped: 'not selected (--only)' };
  const stressName = `stress.ts (sandbox, ${workers} workers)`;
  figureLine(stressName, stressMain, (run) =>
    formatFigure(
      stressName,
      run.summary.pairs.planned,
      run.summary.pairsPerSec,
      failedNote(run.summary.pairs.failed + run.summary.pairs.cancelled),
    ),
  );

  // A run in which nothing completed measured nothing.
  const cRate = c.result && c.result.completed > 0 ? c.result.pairsPerSec : undefined;
  const baselineRate =
    baseline.result && baseline.result.completed > 0 ? baseline.result.pairsPerSec : undefined;
  const stressRate =
    stressMain.result && stressMain.result.summary.pairs.established > 0
      ? stressMain.result.summary.pairsPerSec
      : undefined;
  for (const [name, measured, rate] of [
    ['C reference', c, cRate],
    ['Node baseline', baseline, baselineRate],
    ['stress.ts', stressMain, stressRate],
  ] as const)
    if (measured.result !== undefined && rate === undefined) notMeasured.push(`${name} (no pair completed)`);

  const verdicts: Verdict[] = [];
  lines.push('', 'ratios:');
  if (stressRate !== undefined && cRate !== undefined) {
    const verdict = shareOfCVerdict(stressRate, cRate);
    verdicts.push(verdict);
    lines.push(`  stress/C         ${(stressRate / cRate).toFixed(2)}`);
  } else lines.push('  stress/C         n/a (a figure is missing)');
  if (stressRate !== undefined && baselineRate !== undefined)
    lines.push(`  stress/baseline  ${(stressRate / baselineRate).toFixed(2)}`);
  else lines.push('  stress/baseline  n/a (a figure is missing)');
  if (cRate !== undefined && baselineRate !== undefined)
    lines.push(`  baseline/C       ${(baselineRate / cRate).toFixed(2)}`);

  const points: ScalePoint[] = [];
  if (counts.length > 0) lines.push('', 'stress.ts by pair count:');
  for (const pairs of counts.length > 0 ? options.scale : []) {
    const run = stressRuns.get(pairs);
    if (run?.result && run.result.summary.pairs.established > 0) {
      const { summary, peakRssBytes } = run.result;
      points.push({ pairs, pairsPerSec: summary.pairsPerSec, peakRssBytes });
      const lost = summary.pairs.failed + summary.pairs.cancelled;
      lines.push(
        `  ${shortCount(pairs).padStart(5)} pairs  ${formatCount(summary.pairsPerSec).padStart(7)} pairs/s  peak RSS ${formatMb(peakRssBytes).padStart(7)}` +
          `  (${(run.result.wallMs / 1000).toFixed(1)} s wall${lost > 0 ? `, ${formatCount(lost)} FAILED/cancelled` : ''})`,
      );
    } else {
      lines.push(
        `  ${shortCount(pairs).padStart(5)} pairs  NOT MEASURED: ${run?.error ?? 'no pair established'}`,
      );
      if (!notMeasured.includes(`stress.ts ${pairs}`)) notMeasured.push(`stress.ts ${pairs}`);
    }
  }
  const rssSource = [...stressRuns.values()].find((run) => run.result)?.result?.peakRssSource;
  if (rssSource) lines.push(`  (peak RSS: ${rssSource})`);
  if (points.length >= 2) verdicts.push(flatRateVerdict(points), flatRssVerdict(points));

  lines.push('', 'verdicts:');
  for (const verdict of verdicts) lines.push(`  ${formatVerdict(verdict)}`);
  if (verdicts.length === 0) lines.push('  none (figures missing)');
  if (notMeasured.length > 0) lines.push('', `could not measure: ${notMeasured.join('; ')}`);
  process.stdout.write(`${lines.join('\n')}\n`);

  if (options.jsonFile) {
    const summary = {
      workers,
      cores: os.availableParallelism(),
      payloadBytes,
      close,
      inflightPerWorker: inflight,
      pairs: options.pairs,
      c: c.result ?? { skipped: c.skipped, error: c.error },
      baseline: baseline.result ?? { error: baseline.error },
      stress: Object.fromEntries(
        [...stressRuns].map(([pairs, run]) => [
          pairs,
          run.result
            ? {
                pairsPerSec: run.result.summary.pairsPerSec,
                pairs: run.result.summary.pairs,
                peakRssBytes: run.result.peakRssBytes,
                wallMs: run.result.wallMs,
              }
            : { error: run.error },
        ]),
      ),
      ratios: {
        stressToC: stressRate && cRate ? stressRate / cRate : null,
        stressToBaseline: stressRate && baselineRate ? stressRate / baselineRate : null,
      },
      verdicts,
      notMeasured,
    };
    writeFileSync(options.jsonFile, `${JSON.stringify(summary, null, 2)}\n`);
  }
  return notMeasured.length > 0 ? EXIT.failure : EXIT.ok;
}

runMain('bench', USAGE, async () => {
  const options = parseOptions(process.argv.slice(2));
  if (insideSandbox()) return benchInSandbox(options);
  const probe = probeSandbox();
  if (!probe.ok)
    throw new ExitError(`cannot measure: no private network namespace (${probe.reason})`, EXIT.failure);
  return reexecInSandbox();
});
