/**
 * The stress.ts command, whole: the mode (sandbox re-exec, race, fallback), the sandbox's network,
 * signals, then runAndReport: the output files checked before the first pair, --trace, the run, the
 * report (always printed first), the outputs written, the exit code. scripts/stress.ts only calls
 * stressCommand; runAndReport is the same run without the process-level parts (mode choice, sandbox,
 * signals), for callers that run stress themselves and stop it with their own AbortSignal.
 */
import { randomInt } from 'node:crypto';
import os from 'node:os';
import { EXIT } from '../core/errors.ts';
import { describeFileError, type OutputFile, openOutputFiles } from '../core/outputFile.ts';
import { openFilesLimit } from '../core/processLimits.ts';
import { insideSandbox, probeSandbox, reexecInSandbox } from '../core/sandbox.ts';
import { writeStressReport } from '../report/writeReport.ts';
import { formatPairKinds, startPairTrace } from '../trace/plannedPairTrace.ts';
import { chooseMode, MODE_REASON_ENV, reexecEnv } from './chooseMode.ts';
import { compareResults, formatComparison } from './compareRuns.ts';
import { STRESS_HELP } from './options.ts';
import { prepareRun } from './prepareRun.ts';
import { printResult } from './printResult.ts';
import { runStress } from './runStress.ts';
import { runSweep } from './skewSweep.ts';
import { EXIT_THRESHOLD_FAILED, evaluateThresholds, formatThresholds } from './thresholds.ts';
import { annotatePairLog, pairsOfPlan, traceOptionsForPlan } from './traceStress.ts';
import type { AddressPlan, OutputError, StressOptions, StressResult } from './types.ts';

export interface RunAndReportInput {
  options: StressOptions;
  plan: AddressPlan;
  modeReason: string;
  /** Why net.Socket although bare handles were asked for (lib/stress/prepareRun.ts). */
  socketsReason?: string;
  /** Aborting it stops the run: no new pairs, in-flight ones cancelled, partial report. */
  stop: AbortSignal;
  /** Where the report goes (default stdout; null: nowhere, the caller uses the result). */
  out?: NodeJS.WritableStream | null;
}

export interface RunAndReportOutcome {
  result: StressResult;
  /** 0 ok, 1 below --min-success or an output failed, 99 a --threshold failed, 130 stopped. */
  exitCode: number;
}

/**
 * Runs the chosen stress run and reports it. Every output is checked and opened before the first pair
 * (an ExitError, exit 2, names the one that cannot be written and why). An output that fails later does
 * not lose the report: it is printed first, the failure is named, and the exit code is 1.
 */
export async function runAndReport(input: RunAndReportInput): Promise<RunAndReportOutcome> {
  const out = input.out === undefined ? process.stdout : input.out;
  const files = openRunOutputs(input.options);
  try {
    return await runOpened(input, out, files.json, files.log, files.report);
  } finally {
    files.close();
  }
}

/**
 * A run's output files (--json, --log, --report), checked and opened before its first pair (an
 * ExitError, exit 2, names one that cannot be written): every kind of run opens them here.
 */
export function openRunOutputs(options: Pick<StressOptions, 'json' | 'log' | 'report' | 'trace'>): {
  json: OutputFile | undefined;
  log: OutputFile | undefined;
  report: OutputFile | undefined;
  close: () => void;
} {
  const outputs = openOutputFiles([
    ...(options.json ? [{ option: '--json', path: options.json }] : []),
    ...(options.log
      ? [
          {
            option: '--log',
            path: options.log,
            append: true,
            regularBecause: options.trace ? '--trace reads the log back to add each pair’s kinds' : undefined,
          },
        ]
      : []),
    ...(options.report ? [{ option: '--report', path: options.report }] : []),
  ]);
  return {
    json: outputs.find((output) => output.option === '--json'),
    log: outputs.find((output) => output.option === '--log'),
    report: outputs.find((output) => output.option === '--report'),
    close: () => {
      for (const output of outputs) output.close();
    },
  };
}

async function runOpened(
  input: RunAndReportInput,
  out: NodeJS.WritableStream | null,
  json: OutputFile | undefined,
  log: OutputFile | undefined,
  report: OutputFile | undefined,
): Promise<RunAndReportOutcome> {
  const { options, plan, modeReason, socketsReason, stop } = input;
  const trace = options.trace ? startPairTrace(traceOptionsForPlan(plan, options.pairs)) : undefined;
  let result: StressResult;
  try {
    result = await runStress({ options, plan, mode: options.mode, modeReason, socketsReason, stop, log });
  } catch (error) {
    await trace?.abort();
    throw error;
  }
  const traced = trace && (await trace.stop(pairsOfPlan(plan, result.pairs.planned, result.notStartedIds)));
  if (traced) {
    const { openKinds, closeKinds, label, lostEvents, stateEdges } = traced;
    Object.assign(result, { openKinds, closeKinds, trace: { ...label, lostEvents }, stateEdges });
  }

  const exitCode = await deliverResult(
    result,
    options,
    { out, json, report },
    (finished) =>
      [printResult(finished), ...(traced ? [`${formatPairKinds(traced).join('\n')}\n`] : [])].join(''),
    traced && log && !result.outputErrors?.length
      ? async (fail) => {
          try {
            await annotatePairLog(log, traced.kinds);
          } catch (error) {
            fail(log, error);
          }
        }
      : undefined,
  );
  return { result, exitCode };
}

/**
 * The end of every stress run, local or through agents: the --threshold and --compare verdicts, the
 * text report first (whatever fails below, it is not lost), then the JSON and the HTML report, and
 * the exit code. `beforeFiles` runs after the text, before the files (the log's trace kinds).
 */
export async function deliverResult(
  result: StressResult,
  options: StressOptions,
  files: {
    out: NodeJS.WritableStream | null;
    json?: OutputFile | undefined;
    report?: OutputFile | undefined;
  },
  print: (result: StressResult) => string,
  beforeFiles?: (fail: (output: OutputFile, error: unknown) => void) => Promise<void>,
): Promise<number> {
  const { out, json, report } = files;
  if (options.thresholds.length) result.thresholds = evaluateThresholds(options.thresholds, result);
  if (options.compare)
    result.comparison = compareResults(options.compare.result, result, options.compare.path);

  const text = [
    print(result),
    ...[formatThresholds(result.thresholds), formatComparison(result.comparison)]
      .filter((lines) => lines.length)
      .map((lines) => `${lines.join('\n')}\n`),
  ].join('');
  out?.write(text);
  const failures: OutputError[] = [...(result.outputErrors ?? [])];
  for (const failure of failures)
    process.stderr.write(`stress: ${failure.option} ${failure.path}: ${failure.error}\n`);
  const fail = (output: OutputFile, error: unknown) => {
    const failure = { option: output.option, path: output.path, error: describeFileError(error) };
    failures.push(failure);
    process.stderr.write(`stress: ${failure.option} ${failure.path}: ${failure.error}\n`);
  };
  await beforeFiles?.(fail);
  if (failures.length) result.outputErrors = failures;
  if (json) {
    try {
      json.truncate();
      json.write(`${JSON.stringify(result, null, 2)}\n`);
    } catch (error) {
      fail(json, error);
      // Half a JSON document would pass for a summary: leave the file empty instead.
      try {
        json.truncate();
      } catch {}
    }
  }
  if (report) {
    try {
      writeStressReport(report, result, text);
    } catch (error) {
      fail(report, error);
      try {
        report.truncate();
      } catch {}
    }
  }

  let exitCode: number = EXIT.ok;
  if (result.interrupted) exitCode = EXIT.interrupted;
  else if (result.thresholds?.some((threshold) => !threshold.pass)) {
    const failed = result.thresholds.filter((threshold) => !threshold.pass);
    process.stderr.write(
      `stress: ${failed.length} threshold${failed.length === 1 ? '' : 's'} failed: ${failed.map((threshold) => threshold.text).join(', ')}\n`,
    );
    exitCode = EXIT_THRESHOLD_FAILED;
  } else if (failures.length) exitCode = EXIT.failure;
  else if (result.successPct < options.minSuccess) {
    process.stderr.write(
      `stress: ${result.successPct}% of pairs established, below --min-success ${options.minSuccess}%\n`,
    );
    exitCode = EXIT.failure;
  }
  return exitCode;
}

const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * SIGINT, SIGTERM, SIGHUP: the first stops the run (in-flight pairs cancelled, partial report, outputs
 * finished); the second quits at once, without a report. The main thread never blocks for long, so the
 * second one is always heard.
 */
export function watchStopSignals(): { stop: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signal === 'SIGHUP') {
      // No terminal any more: writes to it fail (EIO); the files are what counts now.
      process.stdout.on('error', () => {});
      process.stderr.on('error', () => {});
    }
    if (signals === 1) {
      process.stderr.write(
        `\nstress: ${signal}: stopping, cancelling pairs in flight (again to quit at once)\n`,
      );
      controller.abort();
    } else {
      process.stderr.write(
        `stress: ${signal} again: quitting at once, without a report (the JSON is not written; the log holds whole records of the pairs finished so far)\n`,
      );
      process.exit(EXIT.interrupted);
    }
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  return {
    stop: controller.signal,
    dispose: () => {
      for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
    },
  };
}

/** stress.ts with these arguments, start to end; resolves with the exit code. */
export async function stressCommand(args: string[]): Promise<number> {
  const choice = chooseMode(args, {
    cores: os.availableParallelism(),
    insideSandbox: insideSandbox(),
    probe: probeSandbox,
    randomRound: () => randomInt(1 << 30),
    reasonFromParent: process.env[MODE_REASON_ENV],
    openFilesLimit: openFilesLimit(),
  });
  if (choice.action === 'help') {
    process.stdout.write(`${STRESS_HELP}\n`);
    return EXIT.ok;
  }
  if (choice.action === 'reexec') return await reexecInSandbox(reexecEnv(choice));
  const { plan, modeReason, warning } = choice;
  if (warning) process.stderr.write(`stress: ${warning}\n`);
  const { options, socketsReason } = await prepareRun(choice.options, choice.network);
  const signals = watchStopSignals();
  try {
    if (options.sweep)
      return await runSweep({
        options,
        plan,
        modeReason,
        socketsReason,
        stop: signals.stop,
        runPoint: runAndReport,
      });
    return (await runAndReport({ options, plan, modeReason, socketsReason, stop: signals.stop })).exitCode;
  } finally {
    signals.dispose();
  }
}
