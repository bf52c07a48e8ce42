/**
 * npm run bench: how fast is stress.ts, against a C reference doing the same simultaneous opens and
 * a plain-Node connect + accept baseline, all in a private network namespace that drops the early
 * RSTs; and does its rate stay flat, and its memory put, from 10k to 1M pairs?
 *
 * Exit codes: 0 everything measured (targets missed or not: see the PASS/FAIL lines), 1 a figure could
 * not be measured (no sandbox, stress.ts missing or failing, a run with no completed pair), 2 usage,
 * 130 interrupted.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { signalRunningChildren } from '../lib/core/childProcess.ts';
import { parseCount, parseFlags, runMain } from '../lib/core/cli.ts';
import { EXIT, ExitError, UsageError } from '../lib/core/errors.ts';
import { describeFileError, type OutputFile, openOutputFiles } from '../lib/core/outputFile.ts';
import { insideSandbox, probeSandbox, reexecInSandbox, setupSandboxNetwork } from '../lib/core/sandbox.ts';
import { CLOSE_MODES, type CloseMode } from '../lib/stress/types.ts';
import { type BaselineResult, runBaseline } from './baselineListener.ts';
import {
  CROSSED_RATE_SHARE_MIN,
  CROSSED_SHARE_MIN,
  crossedVerdict,
  flatRateVerdict,
  flatRssVerdict,
  formatCount,
  formatFigure,
  formatMb,
  formatVerdict,
  holdVerdicts,
  labRateVerdict,
  RATE_SPREAD_TOLERANCE,
  RSS_GROWTH_TOLERANCE,
  type ScalePoint,
  shareOfCVerdict,
  shortCount,
  TARGET_LAB_RATE,
  TARGET_SHARE_OF_C,
  type Verdict,
} from './benchReport.ts';
import { type BuildOutcome, buildCReference, type CReferenceResult, runCReference } from './cReference.ts';
import { describeMachine } from './machine.ts';
import { runStressScript, type StressRun, stressAvailable } from './stressRunner.ts';

const USAGE =
  'npm run bench -- [--quick] [--skip-1m] [--pairs N] [--workers N] [--payload BYTES] ' +
  '[--close graceful|reset|simultaneous] [--inflight K] [--repeat N] [--only c,baseline,stress,open,hold,lab] [--json FILE]';

/** --help: every option, described once (docs/bench.md quotes it). */
const HELP = `usage: ${USAGE}

Measures, in a private network namespace whose nft rule drops the early RSTs (as stress.ts's sandbox),
pairs per second, where a pair is: open, a payload both ways checked byte by byte, close.
  C reference    bench/simopen_ref.c (built with cc), one thread per worker, epoll, both sides of
                 each pair in one thread: simultaneous open
  Node baseline  ordinary connect + accept to a listener, one Piscina worker per shard
  stress.ts      scripts/stress.ts --mode sandbox --json, run as a child process as a user runs it
The comparison runs the three at --pairs, --repeat times interleaved, and reports each median; then
stress.ts runs at 10k, 100k and 1M pairs (the scaling points). Then the open modes: stress.ts --trace
at --pairs with --open one-sided and --open crossed, interleaved (share crossed by the kernel's record,
pairs/s against one-sided); and the hold: stress.ts --open crossed --hold 60s --keepalive 10s of
100,000 pairs, all open at once over as many processes as the open-files limit needs (20,000 pairs,
--hold 10s --keepalive 2s with --quick; peak of pairs open at once, memory per held pair).
Last, stress.ts --lab eim:apdf:drop,eim:apdf:drop (two agents, every pair through two NAT routers'
conntrack, watched as by default: every new entry and mapped port counted, the states of 1 in 64
entries followed; root and conntrack needed) runs --repeat times at 50k pairs (20k with --quick);
the median is reported.

  --pairs N          pairs of each comparison run (default 100k; 20k with --quick)
  --repeat N         runs of the comparison and of scaling points up to 100k pairs; the median is
                     reported (default 3; 1 with --quick)
  --quick            scaling points 5k, 20k, 50k instead of 10k, 100k, 1M
  --skip-1m          leave out the 1M-pair scaling point
  --workers N        stress.ts workers = C threads = baseline workers (default: one per core)
  --payload BYTES    payload each way per pair (default 64)
  --close KIND       graceful, reset or simultaneous, as stress.ts --close (default graceful)
  --inflight K       pairs in flight per worker or thread (default 64; stress.ts gets --concurrency
                     K x workers)
  --only LIST        measure only these, comma-separated: c, baseline, stress, open, hold, lab (default
                     all)
  --json FILE        write every figure, run and verdict, and the machine (CPU, cores, kernel, Node,
                     load average at start and end, dates), as JSON
  -h, --help         this text

verdicts (PASS/FAIL): stress.ts >= ${TARGET_SHARE_OF_C}x the C reference; rate flat within ${RATE_SPREAD_TOLERANCE * 100}% across
the scaling points; peak RSS at the largest point within ${RSS_GROWTH_TOLERANCE * 100}% of the smallest; --open crossed:
>= ${CROSSED_SHARE_MIN * 100}% of pairs crossed at >= ${CROSSED_RATE_SHARE_MIN}x one-sided pairs/s;
the lab run >= ${formatCount(TARGET_LAB_RATE)} pairs/s.
exit codes: 0 every figure measured (targets met or not: read the verdicts), 1 a figure could not
            be measured (no sandbox, cc failed, stress.ts failing, a run with no completed pair),
            2 bad usage, 130 interrupted (SIGINT/SIGTERM)`;

const PARTS = ['c', 'baseline', 'stress', 'open', 'hold', 'lab'] as const;
/** The hold: its pairs, all open at once (spread over processes by stress.ts), for how long, keepalives how often. */
const HOLD = {
  quick: { pairs: 20_000, seconds: 10, keepalive: '2s' },
  full: { pairs: 100_000, seconds: 60, keepalive: '10s' },
};
/** The lab run's topology and pair counts. */
const LAB_TOPOLOGY = 'eim:apdf:drop,eim:apdf:drop';
const LAB_PAIRS = { full: 50_000, quick: 20_000 };
type PartName = (typeof PARTS)[number];
const DEFAULT_SCALE = [10_000, 100_000, 1_000_000];
const QUICK_SCALE = [5_000, 20_000, 50_000];

interface BenchOptions {
  /** Pairs of the comparison runs (C, baseline, stress). */
  pairs: number;
  scale: number[];
  workers: number;
  payloadBytes: number;
  close: CloseMode;
  /** Pairs in flight per worker/thread. */
  inflight: number;
  /** Which figures to measure (all by default). */
  only: ReadonlySet<PartName>;
  /** Runs of the comparison; the median is reported. */
  repeat: number;
  /** Pairs of each lab run. */
  labPairs: number;
  /** The hold run: pairs, --hold in seconds, --keepalive. */
  hold: { pairs: number; seconds: number; keepalive: string };
  jsonFile?: string;
}

function parseOptions(args: string[]): BenchOptions | 'help' {
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
    repeat: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) return 'help';
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  let scale = values.quick ? QUICK_SCALE : DEFAULT_SCALE;
  if (values['skip-1m']) scale = scale.filter((pairs) => pairs < 1_000_000);
  const close = values.close ?? 'graceful';
  if (!(CLOSE_MODES as readonly string[]).includes(close))
    throw new UsageError(`--close: '${close}' is not one of ${CLOSE_MODES.join(', ')}`);
  if (values.json !== undefined) {
    const directory = dirname(resolve(values.json));
    if (values.json === '' || !existsSync(directory))
      throw new UsageError(`--json: cannot write '${values.json}' (directory ${directory} does not exist)`);
  }
  const only = new Set((values.only ?? PARTS.join(',')).split(',').map((part) => part.trim()));
  for (const part of only)
    if (!(PARTS as readonly string[]).includes(part))
      throw new UsageError(`--only: '${part}' is not one of ${PARTS.join(', ')}`);
  return {
    pairs: values.pairs
      ? parseCount(values.pairs, '--pairs', 100, 10_000_000)
      : values.quick
        ? 20_000
        : 100_000,
    scale,
    workers: values.workers ? parseCount(values.workers, '--workers', 1, 256) : os.availableParallelism(),
    payloadBytes: values.payload ? parseCount(values.payload, '--payload', 0, 1_000_000) : 64,
    close: close as CloseMode,
    inflight: values.inflight ? parseCount(values.inflight, '--inflight', 1, 10_000) : 64,
    only: only as Set<PartName>,
    // The machine may be shared: a median of three damps a burst of someone else's load.
    repeat: values.repeat ? parseCount(values.repeat, '--repeat', 1, 20) : values.quick ? 1 : 3,
    labPairs: values.quick ? LAB_PAIRS.quick : LAB_PAIRS.full,
    hold: values.quick ? HOLD.quick : HOLD.full,
    jsonFile: values.json,
  };
}

/** Scaling runs up to this many pairs are repeated --repeat times (median); longer ones run once. */
const SCALE_REPEAT_MAX_PAIRS = 100_000;

/** Second octets of 127.0.0.0/8 for the runs in the bench's own namespace, so none shares a 4-tuple. */
const netForC = (repeat: number) => 1 + 2 * repeat;
const netForBaseline = (repeat: number) => 2 + 2 * repeat;

/** What every part reports, whatever its own output looks like. */
interface Figure {
  pairs: number;
  completed: number;
  /** Failed or cancelled. */
  failed: number;
  pairsPerSec: number;
}

interface Sample<T> {
  figure?: Figure;
  raw?: T;
  error?: string;
}

async function measure<T>(
  label: string,
  run: () => Promise<T>,
  toFigure: (raw: T) => Figure,
): Promise<Sample<T>> {
  process.stderr.write(`bench: ${label}...\n`);
  try {
    const raw = await run();
    const figure = toFigure(raw);
    // A run in which nothing completed measured nothing.
    if (figure.completed === 0) return { raw, error: `no pair completed (${figure.failed} failed)` };
    return { raw, figure };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

/** The median sample by pairs/s (the lower middle one for an even count), or undefined if none worked. */
function median<T>(samples: Sample<T>[]): Sample<T> | undefined {
  const good = samples
    .filter((sample) => sample.figure)
    .sort((a, b) => (a.figure?.pairsPerSec ?? 0) - (b.figure?.pairsPerSec ?? 0));
  return good[Math.floor((good.length - 1) / 2)];
}

const cFigure = (raw: CReferenceResult): Figure => ({
  pairs: raw.pairs,
  completed: raw.completed,
  failed: raw.failed,
  pairsPerSec: raw.pairsPerSec,
});
const baselineFigure = (raw: BaselineResult): Figure => ({
  pairs: raw.pairs,
  completed: raw.completed,
  failed: raw.failed,
  pairsPerSec: raw.pairsPerSec,
});
const stressFigure = (raw: StressRun): Figure => ({
  pairs: raw.summary.pairs.planned,
  completed: raw.summary.pairs.established,
  failed: raw.summary.pairs.failed + raw.summary.pairs.cancelled,
  pairsPerSec: raw.summary.pairsPerSec,
});

let interrupted = false;
const abortBaseline = new AbortController();

function checkInterrupted(): void {
  if (interrupted) throw new ExitError('interrupted', EXIT.interrupted);
}

interface Part<T> {
  name: string;
  /** Why it was not run, if it was not. */
  skipped?: string;
  samples: Sample<T>[];
}

async function benchInSandbox(options: BenchOptions): Promise<number> {
  // Checked before minutes of measuring, not after (exit 2 with the reason).
  const [jsonOut] = options.jsonFile ? openOutputFiles([{ option: '--json', path: options.jsonFile }]) : [];
  try {
    return await benchAll(options, jsonOut);
  } finally {
    jsonOut?.close();
  }
}

async function benchAll(options: BenchOptions, jsonOut: OutputFile | undefined): Promise<number> {
  setupSandboxNetwork();
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted = true;
    abortBaseline.abort();
    signalRunningChildren(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const { workers, payloadBytes, close, inflight, pairs } = options;
  const machine = describeMachine();
  const { cores } = machine;
  const startedAt = new Date().toISOString();
  const loadBefore = os.loadavg()[0] ?? 0;
  process.stdout.write(
    `simopen bench: ${workers} workers/threads on ${cores} cores, payload ${payloadBytes} B each way, ` +
      `close ${close}, ${inflight} pairs in flight per worker${options.repeat > 1 ? `, comparison: median of ${options.repeat} runs` : ''}\n` +
      `  ${machine.cpuModel}, ${machine.kernel}${machine.distribution ? `, ${machine.distribution}` : ''}, Node ${machine.node}\n` +
      `  ${startedAt}, load average ${loadBefore.toFixed(2)}${loadBefore > cores * 0.5 ? ' (others are using this machine: figures will be noisy)' : ''}\n`,
  );

  let build: BuildOutcome = { ok: false, reason: 'not selected (--only)' };
  let buildError: string | undefined;
  try {
    if (options.only.has('c')) build = buildCReference();
  } catch (error) {
    // A compile error is a figure we could not measure (not a missing compiler): the rest still runs.
    buildError = error instanceof Error ? error.message : String(error);
  }
  const c: Part<CReferenceResult> = {
    name: `C reference (${workers} threads, epoll)`,
    skipped: build.ok || buildError ? undefined : build.reason,
    samples: buildError ? [{ error: buildError }] : [],
  };
  const baseline: Part<BaselineResult> = {
    name: `Node baseline (connect+accept, ${workers} workers)`,
    skipped: options.only.has('baseline') ? undefined : 'not selected (--only)',
    samples: [],
  };
  const stress: Part<StressRun> = {
    name: `stress.ts (sandbox, ${workers} workers)`,
    skipped: options.only.has('stress') ? undefined : 'not selected (--only)',
    samples: [],
  };
  const lab: Part<StressRun> = {
    name: `stress.ts --lab (2 agents, 2 EIM routers)`,
    skipped: options.only.has('lab') ? undefined : 'not selected (--only)',
    samples: [],
  };
  const runStressAt = (count: number, round = '') =>
    measure(
      `stress.ts, ${formatCount(count)} pairs${round}`,
      () => {
        if (!stressAvailable()) throw new Error('scripts/stress.ts does not exist');
        return runStressScript({
          pairs: count,
          workers,
          payloadBytes,
          close,
          concurrency: inflight * workers,
        });
      },
      stressFigure,
    );

  // The comparison: C, baseline and stress.ts at the same pair count, one after the other, --repeat times.
  for (let repeat = 0; repeat < options.repeat; repeat++) {
    const round = options.repeat > 1 ? ` (run ${repeat + 1}/${options.repeat})` : '';
    if (build.ok && !c.skipped)
      c.samples.push(
        await measure(
          `C reference, ${formatCount(pairs)} pairs${round}`,
          () =>
            runCReference(build.binary, {
              pairs,
              threads: workers,
              inflightPerThread: inflight,
              payloadBytes,
              close,
              net: netForC(repeat),
            }),
          cFigure,
        ),
      );
    checkInterrupted();
    if (!baseline.skipped)
      baseline.samples.push(
        await measure(
          `Node baseline, ${formatCount(pairs)} pairs${round}`,
          () =>
            runBaseline({
              workers,
              pairs,
              concurrencyPerWorker: inflight,
              payloadBytes,
              close,
              net: netForBaseline(repeat),
              signal: abortBaseline.signal,
            }),
          baselineFigure,
        ),
      );
    checkInterrupted();
    if (!stress.skipped) stress.samples.push(await runStressAt(pairs, round));
    checkInterrupted();
  }

  // The scaling runs of stress.ts: the comparison's median run stands for its own pair count; shorter
  // runs are repeated too (a burst of load weighs more on them), the long ones average it out alone.
  const scaleRuns = new Map<number, Sample<StressRun>>();
  const scaleSpread = new Map<number, { rates: number[]; peakRssBytes: number }>();
  if (!stress.skipped)
    for (const count of options.scale) {
      const samples = count === pairs ? stress.samples : [];
      if (samples.length === 0) {
        const runs = count <= SCALE_REPEAT_MAX_PAIRS ? options.repeat : 1;
        for (let repeat = 0; repeat < runs; repeat++) {
          samples.push(await runStressAt(count, runs > 1 ? ` (run ${repeat + 1}/${runs})` : ''));
          checkInterrupted();
        }
      }
      scaleRuns.set(count, median(samples) ?? samples[0] ?? { error: 'not run' });
      const good = samples.flatMap((sample) => (sample.figure && sample.raw ? [sample.raw] : []));
      scaleSpread.set(count, {
        rates: good.map((run) => run.summary.pairsPerSec),
        // The largest of the runs: memory is judged on the worst case.
        peakRssBytes: Math.max(0, ...good.map((run) => run.peakRssBytes)),
      });
    }

  // The open modes: one-sided against crossed, both traced, interleaved, at the comparison's count.
  const openRuns = { oneSided: [] as Sample<StressRun>[], crossed: [] as Sample<StressRun>[] };
  const openAt = (open: 'one-sided' | 'crossed', round: string) =>
    measure(
      `stress.ts --open ${open} --trace, ${formatCount(pairs)} pairs${round}`,
      () =>
        runStressScript({
          pairs,
          workers,
          payloadBytes,
          close,
          concurrency: inflight * workers,
          extraArgs: ['--open', open, '--trace', '--min-success', '0'],
        }),
      stressFigure,
    );
  if (options.only.has('open'))
    for (let repeat = 0; repeat < options.repeat; repeat++) {
      const round = options.repeat > 1 ? ` (run ${repeat + 1}/${options.repeat})` : '';
      openRuns.oneSided.push(await openAt('one-sided', round));
      checkInterrupted();
      openRuns.crossed.push(await openAt('crossed', round));
      checkInterrupted();
    }

  // The hold: every pair open at once, over as many processes as their descriptors need.
  const holdPairs = options.hold.pairs;
  const holdArgs = [
    '--open',
    'crossed',
    '--hold',
    `${options.hold.seconds}s`,
    '--keepalive',
    options.hold.keepalive,
  ];
  let holdRun: Sample<StressRun> | undefined;
  if (options.only.has('hold')) {
    holdRun = await measure(
      `stress.ts ${holdArgs.join(' ')}, ${formatCount(holdPairs)} pairs`,
      () =>
        runStressScript({
          pairs: holdPairs,
          workers,
          payloadBytes,
          close,
          // Opening (and closing) them all at once queues each pair behind the others on 2 cores.
          extraArgs: [...holdArgs, '--timeout', '60s', '--min-success', '0'],
        }),
      stressFigure,
    );
    checkInterrupted();
  }

  // The lab run: every pair through two NAT routers' conntrack, through agents.
  if (!lab.skipped)
    for (let repeat = 0; repeat < options.repeat; repeat++) {
      const round = options.repeat > 1 ? ` (run ${repeat + 1}/${options.repeat})` : '';
      lab.samples.push(
        await measure(
          `stress.ts --lab ${LAB_TOPOLOGY}, ${formatCount(options.labPairs)} pairs${round}`,
          () =>
            runStressScript({
              pairs: options.labPairs,
              workers,
              payloadBytes,
              close,
              lab: LAB_TOPOLOGY,
            }),
          stressFigure,
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
  const rates = new Map<string, number>();
  for (const part of [c, baseline, stress, lab] as Part<unknown>[]) {
    if (part.skipped) {
      lines.push(`  ${part.name.padEnd(44)} skipped: ${part.skipped}`);
      continue;
    }
    const chosen = median(part.samples);
    const errors = part.samples.filter((sample) => !sample.figure);
    if (!chosen?.figure) {
      lines.push(`  ${part.name.padEnd(44)} NOT MEASURED: ${errors[0]?.error ?? 'not run'}`);
      notMeasured.push(part.name);
      continue;
    }
    rates.set(part.name, chosen.figure.pairsPerSec);
    const spread = part.samples.flatMap((sample) => (sample.figure ? [sample.figure.pairsPerSec] : []));
    const notes = [
      chosen.figure.failed > 0 ? `${formatCount(chosen.figure.failed)} FAILED pairs` : '',
      spread.length > 1
        ? `median of ${spread.length}: ${formatCount(Math.min(...spread))}..${formatCount(Math.max(...spread))}`
        : '',
      errors.length > 0 ? `${errors.length} run(s) failed: ${errors[0]?.error}` : '',
    ].filter(Boolean);
    lines.push(
      formatFigure(
        part.name,
        chosen.figure.pairs,
        chosen.figure.pairsPerSec,
        notes.length ? `(${notes.join('; ')})` : '',
      ),
    );
  }

  const cRate = rates.get(c.name);
  const baselineRate = rates.get(baseline.name);
  const stressRate = rates.get(stress.name);
  const labRate = rates.get(lab.name);
  const verdicts: Verdict[] = [];
  lines.push('', 'ratios:');
  const ratioLine = (label: string, numerator: number | undefined, denominator: number | undefined) =>
    lines.push(
      `  ${label.padEnd(16)} ${numerator !== undefined && denominator !== undefined ? (numerator / denominator).toFixed(2) : 'n/a (a figure is missing)'}`,
    );
  ratioLine('stress/C', stressRate, cRate);
  ratioLine('stress/baseline', stressRate, baselineRate);
  ratioLine('baseline/C', baselineRate, cRate);
  if (stressRate !== undefined && cRate !== undefined) verdicts.push(shareOfCVerdict(stressRate, cRate));
  if (labRate !== undefined) verdicts.push(labRateVerdict(labRate));

  const points: ScalePoint[] = [];
  if (scaleRuns.size > 0) lines.push('', 'stress.ts by pair count:');
  for (const [count, sample] of scaleRuns) {
    if (sample.figure && sample.raw) {
      const { wallMs, summary } = sample.raw;
      const spread = scaleSpread.get(count) ?? { rates: [], peakRssBytes: sample.raw.peakRssBytes };
      const peakRssBytes = spread.peakRssBytes;
      points.push({ pairs: count, pairsPerSec: sample.figure.pairsPerSec, peakRssBytes });
      const establish = summary.establishMs
        ? `  establish p50 ${summary.establishMs.p50?.toFixed(2)} ms p99 ${summary.establishMs.p99?.toFixed(2)} ms`
        : '';
      const notes = [
        `${(wallMs / 1000).toFixed(1)} s wall`,
        spread.rates.length > 1
          ? `median of ${spread.rates.length}: ${formatCount(Math.min(...spread.rates))}..${formatCount(Math.max(...spread.rates))}`
          : '',
        sample.figure.failed > 0 ? `${formatCount(sample.figure.failed)} FAILED/cancelled` : '',
      ].filter(Boolean);
      lines.push(
        `  ${shortCount(count).padStart(5)} pairs  ${formatCount(sample.figure.pairsPerSec).padStart(7)} pairs/s  peak RSS ${formatMb(peakRssBytes).padStart(7)}` +
          `${establish}  (${notes.join('; ')})`,
      );
    } else {
      lines.push(`  ${shortCount(count).padStart(5)} pairs  NOT MEASURED: ${sample.error}`);
      notMeasured.push(`stress.ts at ${shortCount(count)} pairs`);
    }
  }
  if (points.length > 0)
    lines.push('  (peak RSS: stress.ts --json peakRssBytes; the largest of the runs at that count)');
  if (points.length >= 2) verdicts.push(flatRateVerdict(points), flatRssVerdict(points));

  const crossedShare = (run: StressRun | undefined) => {
    const kinds = run?.summary.openKinds;
    const planned = run?.summary.pairs.planned ?? 0;
    return kinds && planned > 0 ? (kinds.crossed ?? 0) / planned : undefined;
  };
  const openMedian = { oneSided: median(openRuns.oneSided), crossed: median(openRuns.crossed) };
  if (options.only.has('open')) {
    lines.push('', `open modes (stress.ts --trace, ${formatCount(pairs)} pairs, interleaved in this run):`);
    for (const [label, sample] of [
      ['one-sided', openMedian.oneSided],
      ['crossed', openMedian.crossed],
    ] as const) {
      const runs = label === 'one-sided' ? openRuns.oneSided : openRuns.crossed;
      if (!sample?.figure || !sample.raw) {
        lines.push(
          `  ${label.padEnd(10)} NOT MEASURED: ${runs.find((run) => run.error)?.error ?? 'not run'}`,
        );
        notMeasured.push(`stress.ts --open ${label}`);
        continue;
      }
      const share = crossedShare(sample.raw);
      const spread = runs.flatMap((run) => (run.figure ? [run.figure.pairsPerSec] : []));
      lines.push(
        `  ${label.padEnd(10)} ${formatCount(sample.figure.pairsPerSec).padStart(7)} pairs/s  crossed by the kernel's record ${share === undefined ? 'n/a' : `${(share * 100).toFixed(3)}%`}` +
          `  (${sample.raw.summary.trace?.lostEvents ? `${sample.raw.summary.trace.lostEvents} trace events LOST; ` : ''}open kinds ${JSON.stringify(sample.raw.summary.openKinds ?? {})}${spread.length > 1 ? `; median of ${spread.length}: ${formatCount(Math.min(...spread))}..${formatCount(Math.max(...spread))}` : ''})`,
      );
    }
    const share = crossedShare(openMedian.crossed?.raw);
    const crossedRate = openMedian.crossed?.figure?.pairsPerSec;
    const oneSidedRate = openMedian.oneSided?.figure?.pairsPerSec;
    if (share !== undefined && crossedRate !== undefined && oneSidedRate !== undefined) {
      lines.push(`  crossed/one-sided ${(crossedRate / oneSidedRate).toFixed(2)}`);
      verdicts.push(crossedVerdict(share, crossedRate, oneSidedRate));
    }
  }
  const hold = holdRun?.raw?.summary.hold;
  if (options.only.has('hold')) {
    lines.push('', `hold (stress.ts ${holdArgs.join(' ')}):`);
    if (!holdRun?.figure || !hold) {
      lines.push(`  NOT MEASURED: ${holdRun?.error ?? 'no hold in the summary'}`);
      notMeasured.push('stress.ts --hold');
    } else {
      const perPair = hold.rssPerHeldPairBytes;
      verdicts.push(...holdVerdicts(holdPairs, hold));
      const processes = holdRun.raw?.summary.processes ?? 1;
      lines.push(
        `  ${formatCount(hold.peakOpenPairs)} pairs open at once at the peak (of ${formatCount(holdPairs)}, in ${processes} process${processes === 1 ? '' : 'es'}; ${formatCount(holdRun.figure.failed)} failed/cancelled), ` +
          `${formatCount(hold.keepalivesVerified)} keepalives checked, resident memory ${perPair === null ? 'n/a' : `${(perPair / 1024).toFixed(2)} KiB`} per held pair ` +
          `(peak ${formatMb(hold.peakRssBytes)}, ${formatMb(hold.rssAtStartBytes)} at the start)`,
      );
    }
  }

  const loadAfter = os.loadavg()[0] ?? 0;
  lines.push('', `load average at the end: ${loadAfter.toFixed(2)} on ${cores} cores`);
  lines.push('', 'verdicts:');
  for (const verdict of verdicts) lines.push(`  ${formatVerdict(verdict)}`);
  if (verdicts.length === 0) lines.push('  none (figures missing)');
  if (notMeasured.length > 0) lines.push('', `could not measure: ${notMeasured.join('; ')}`);
  process.stdout.write(`${lines.join('\n')}\n`);

  if (jsonOut) {
    const samplesJson = <T>(part: Part<T>, pick: (raw: T) => unknown) =>
      part.skipped
        ? { skipped: part.skipped }
        : {
            median: (() => {
              const chosen = median(part.samples);
              return chosen?.raw === undefined ? null : pick(chosen.raw);
            })(),
            runs: part.samples.map((sample) => sample.figure ?? { error: sample.error }),
          };
    const stressJson = (run: StressRun) => ({
      pairsPerSec: run.summary.pairsPerSec,
      pairs: run.summary.pairs,
      establishMs: run.summary.establishMs,
      peakRssBytes: run.peakRssBytes,
      wallMs: Math.round(run.wallMs),
    });
    const summary = {
      // Where and when: the figures are only comparable with runs on the same kind of machine.
      machine,
      startedAt,
      endedAt: new Date().toISOString(),
      args: process.argv.slice(2),
      workers,
      cores,
      loadAverage: { before: loadBefore, after: loadAfter },
      payloadBytes,
      close,
      inflightPerWorker: inflight,
      pairs,
      repeat: options.repeat,
      c: samplesJson(c, (raw) => raw),
      baseline: samplesJson(baseline, (raw) => raw),
      stress: samplesJson(stress, stressJson),
      lab: samplesJson(lab, (run) => ({
        ...stressJson(run),
        topology: LAB_TOPOLOGY,
        target: TARGET_LAB_RATE,
      })),
      scale: Object.fromEntries(
        [...scaleRuns].map(([count, sample]) => [
          count,
          sample.raw
            ? {
                ...stressJson(sample.raw),
                runsPairsPerSec: scaleSpread.get(count)?.rates,
                peakRssBytesLargest: scaleSpread.get(count)?.peakRssBytes,
              }
            : { error: sample.error },
        ]),
      ),
      ratios: {
        stressToC: stressRate !== undefined && cRate !== undefined ? stressRate / cRate : null,
        stressToBaseline:
          stressRate !== undefined && baselineRate !== undefined ? stressRate / baselineRate : null,
        baselineToC: baselineRate !== undefined && cRate !== undefined ? baselineRate / cRate : null,
      },
      open: options.only.has('open')
        ? {
            pairs,
            oneSided: samplesJson({ name: 'one-sided', samples: openRuns.oneSided }, stressJson),
            crossed: samplesJson({ name: 'crossed', samples: openRuns.crossed }, stressJson),
            crossedShare: crossedShare(openMedian.crossed?.raw) ?? null,
            openKinds: {
              oneSided: openMedian.oneSided?.raw?.summary.openKinds ?? null,
              crossed: openMedian.crossed?.raw?.summary.openKinds ?? null,
            },
          }
        : { skipped: 'not selected (--only)' },
      hold: options.only.has('hold')
        ? {
            pairs: holdPairs,
            holdSeconds: options.hold.seconds,
            keepalive: options.hold.keepalive,
            processes: holdRun?.raw?.summary.processes ?? 1,
            ...(hold ?? { error: holdRun?.error ?? null }),
          }
        : { skipped: 'not selected (--only)' },
      verdicts,
      notMeasured,
    };
    try {
      jsonOut.write(`${JSON.stringify(summary, null, 2)}\n`);
    } catch (error) {
      // The report is out already; say what failed and leave no half document behind.
      process.stderr.write(`bench: --json ${jsonOut.path}: ${describeFileError(error)}\n`);
      jsonOut.truncate();
      return EXIT.failure;
    }
  }
  return notMeasured.length > 0 ? EXIT.failure : EXIT.ok;
}

runMain('bench', USAGE, async () => {
  const options = parseOptions(process.argv.slice(2));
  if (options === 'help') {
    process.stdout.write(`${HELP}\n`);
    return EXIT.ok;
  }
  if (insideSandbox()) return benchInSandbox(options);
  const probe = probeSandbox();
  if (!probe.ok)
    throw new ExitError(`cannot measure: no private network namespace (${probe.reason})`, EXIT.failure);
  return reexecInSandbox();
});
