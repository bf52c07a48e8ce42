/**
 * --sweep skew=A..B:N: one run per point, B's skew set to the point, each on its own part of the
 * address plan (no endpoint of an earlier point is reused), then a table of the points. The table and
 * its JSON form are pure (sweepTable, sweepRows); runSweep runs the points.
 */
import { EXIT } from '../core/errors.ts';
import { describeFileError, openOutputFiles } from '../core/outputFile.ts';
import { sweepReportPage } from '../report/sweepReport.ts';
import { writeReportPage } from '../report/writeReport.ts';
import type { AddressPlan, StressOptions, StressResult, SweepResult, SweepRow } from './types.ts';

/** The address plan of point `index`: the waves after those of the points before it. */
export function sweepPointPlan(plan: AddressPlan, pairs: number, index: number): AddressPlan {
  const slots = plan.rounds * Math.floor(plan.portCount / plan.wave);
  const wavesPerPoint = Math.ceil(pairs / plan.wave);
  return { ...plan, roundOffset: (plan.roundOffset + index * wavesPerPoint) % slots };
}

export function sweepRow(result: StressResult): SweepRow {
  const { pairs } = result;
  return {
    skewMs: result.open.skewMs ?? 0,
    planned: pairs.planned,
    established: pairs.established,
    failed: pairs.failed,
    cancelled: pairs.cancelled,
    notStarted: pairs.notStarted,
    successPct: result.successPct,
    openKinds: result.openKinds ?? null,
    attemptsA: result.attemptsBySide[0],
    attemptsB: result.attemptsBySide[1],
    establishP50Ms: result.establishMs?.p50 ?? null,
    establishP99Ms: result.establishMs?.p99 ?? null,
  };
}

function cell(value: number | null | undefined, digits = 3): string {
  return value === null || value === undefined ? '-' : String(Number(value.toFixed(digits)));
}

/** The table: one line per point (open kinds with --trace). */
export function sweepTable(rows: SweepRow[]): string {
  const traced = rows.some((row) => row.openKinds);
  const header = [
    'skew ms',
    'planned',
    'established',
    'success %',
    'failed',
    ...(traced ? ['crossed', 'one-sided', 'other'] : []),
    'attempts A max',
    'attempts B max',
    'establish p50 ms',
    'p99 ms',
  ];
  const body = rows.map((row) => {
    const kinds = row.openKinds ?? {};
    const crossed = kinds.crossed ?? 0;
    const oneSided = kinds['one-sided'] ?? 0;
    const other = Object.values(kinds).reduce((sum, count) => sum + count, 0) - crossed - oneSided;
    return [
      cell(row.skewMs),
      String(row.planned),
      String(row.established),
      cell(row.successPct, 2),
      String(row.failed + row.cancelled + row.notStarted),
      ...(traced ? [String(crossed), String(oneSided), String(other)] : []),
      cell(row.attemptsA?.max),
      cell(row.attemptsB?.max),
      cell(row.establishP50Ms),
      cell(row.establishP99Ms),
    ];
  });
  const widths = header.map((title, column) =>
    Math.max(title.length, ...body.map((line) => (line[column] ?? '').length)),
  );
  const format = (line: string[]) =>
    `  ${line.map((text, column) => text.padStart(widths[column] ?? 0)).join('  ')}`.trimEnd();
  return `${[format(header), ...body.map(format)].join('\n')}\n`;
}

export interface SweepInput {
  options: StressOptions;
  plan: AddressPlan;
  modeReason: string;
  socketsReason?: string;
  stop: AbortSignal;
  out?: NodeJS.WritableStream;
  /** One run, reported nowhere (stressCommand's runAndReport; passed in, so no import cycle). */
  runPoint: (point: {
    options: StressOptions;
    plan: AddressPlan;
    modeReason: string;
    socketsReason?: string;
    stop: AbortSignal;
    out: null;
  }) => Promise<{ result: StressResult; exitCode: number }>;
}

/**
 * Runs every point (each point's own report is not printed: a line on stderr says where the sweep
 * is), then prints the table; --json gets the SweepResult. Exit code as one run's: 130 stopped (the
 * table of the points so far is printed), 1 a point below --min-success or the JSON not written.
 */
export async function runSweep(input: SweepInput): Promise<number> {
  const { options, stop } = input;
  const sweep = options.sweep;
  if (!sweep) throw new Error('runSweep without --sweep');
  const out = input.out ?? process.stdout;
  const pairs = options.pairs ?? 0;
  const outputs = openOutputFiles([
    ...(options.json ? [{ option: '--json', path: options.json }] : []),
    ...(options.report ? [{ option: '--report', path: options.report }] : []),
  ]);
  const json = outputs.find((output) => output.option === '--json');
  const report = outputs.find((output) => output.option === '--report');
  try {
    const results: StressResult[] = [];
    let exitCode: number = EXIT.ok;
    for (const [index, skewMs] of sweep.valuesMs.entries()) {
      if (stop.aborted) break;
      if (!options.quiet)
        process.stderr.write(
          `stress: sweep point ${index + 1}/${sweep.valuesMs.length}: skew ${skewMs} ms, ${pairs.toLocaleString('en-US')} pairs\n`,
        );
      const outcome = await input.runPoint({
        options: { ...options, skewMs, json: undefined, report: undefined, quiet: true },
        plan: sweepPointPlan(input.plan, pairs, index),
        modeReason: input.modeReason,
        socketsReason: input.socketsReason,
        stop,
        out: null,
      });
      results.push(outcome.result);
      if (outcome.exitCode !== EXIT.ok && exitCode === EXIT.ok) exitCode = outcome.exitCode;
    }
    const interrupted = stop.aborted;
    const rows = results.map(sweepRow);
    const first = results[0];
    const text =
      `simopen stress sweep: ${interrupted ? 'INTERRUPTED, partial table' : 'done'}\n` +
      `  mode           ${first ? `${first.mode} (${first.modeReason})` : 'no point ran'}\n` +
      `  open           skew, early SYN ${options.earlySyn === 'rst' ? 'answered with RST (that side connects again)' : 'dropped'}, the link delivers every ${options.delayMs} ms, ${pairs.toLocaleString('en-US')} pairs per point\n` +
      sweepTable(rows);
    out.write(text);
    if (interrupted) exitCode = EXIT.interrupted;
    const result: SweepResult = {
      sweep: 'skew',
      earlySyn: options.earlySyn,
      delayMs: options.delayMs,
      interrupted,
      rows,
      results,
    };
    if (report) {
      try {
        writeReportPage(report, sweepReportPage(result, text));
      } catch (error) {
        process.stderr.write(`stress: --report ${report.path}: ${describeFileError(error)}\n`);
        try {
          report.truncate();
        } catch {}
        if (exitCode === EXIT.ok) exitCode = EXIT.failure;
      }
    }
    if (json) {
      try {
        json.truncate();
        json.write(`${JSON.stringify(result, null, 2)}\n`);
      } catch (error) {
        process.stderr.write(`stress: --json ${json.path}: ${describeFileError(error)}\n`);
        if (exitCode === EXIT.ok) exitCode = EXIT.failure;
      }
    }
    return exitCode;
  } finally {
    for (const output of outputs) output.close();
  }
}
