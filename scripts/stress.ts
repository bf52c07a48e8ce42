/**
 * stress.ts: load-test TCP simultaneous open. Plans N pairs, opens each by simultaneous open (both
 * sides connect, nobody listens), exchanges and checks a payload, closes, and reports.
 * docs/stress.md explains the run; STRESS_HELP (lib/stress/options.ts) its options.
 */
import { randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { runMain } from '../lib/core/cli.ts';
import { EXIT } from '../lib/core/errors.ts';
import { insideSandbox, probeSandbox, reexecInSandbox } from '../lib/core/sandbox.ts';
import { chooseMode, MODE_REASON_ENV } from '../lib/stress/chooseMode.ts';
import { STRESS_HELP, STRESS_USAGE } from '../lib/stress/options.ts';
import { prepareRun } from '../lib/stress/prepareRun.ts';
import { printResult } from '../lib/stress/printResult.ts';
import { runStress } from '../lib/stress/runStress.ts';
import { annotatePairLog, pairsOfPlan, traceOptionsForPlan } from '../lib/stress/traceStress.ts';
import { formatPairKinds, startPairTrace } from '../lib/trace/plannedPairTrace.ts';

runMain('stress', STRESS_USAGE, async () => {
  const choice = chooseMode(process.argv.slice(2), {
    cores: os.availableParallelism(),
    insideSandbox: insideSandbox(),
    probe: probeSandbox,
    randomRound: () => randomInt(1 << 30),
    reasonFromParent: process.env[MODE_REASON_ENV],
  });
  if (choice.action === 'help') {
    process.stdout.write(`${STRESS_HELP}\n`);
    return EXIT.ok;
  }
  if (choice.action === 'reexec') return await reexecInSandbox({ [MODE_REASON_ENV]: choice.reason });
  const { plan, modeReason, warning } = choice;
  if (warning) process.stderr.write(`stress: ${warning}\n`);
  const { options, socketsReason } = await prepareRun(choice.options, choice.network);
  const trace = options.trace ? startPairTrace(traceOptionsForPlan(plan, options.pairs)) : undefined;

  const stop = new AbortController();
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
      stop.abort();
    } else {
      process.stderr.write(`stress: ${signal} again: quitting without a report\n`);
      process.exit(EXIT.interrupted);
    }
  };
  // SIGHUP too (the terminal went away): the JSON and the log still get finished.
  const stopSignals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of stopSignals) process.on(signal, onSignal);

  const result = await runStress({
    options,
    plan,
    mode: options.mode,
    modeReason,
    socketsReason,
    stop: stop.signal,
  });
  for (const signal of stopSignals) process.off(signal, onSignal);
  const traced = trace && (await trace.stop(pairsOfPlan(plan, result.pairs.planned)));
  if (traced) {
    const { openKinds, closeKinds, label, lostEvents } = traced;
    Object.assign(result, { openKinds, closeKinds, trace: { ...label, lostEvents } });
    if (options.log) await annotatePairLog(options.log, traced.kinds);
  }

  if (options.json) writeFileSync(options.json, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(printResult(result));
  if (traced) process.stdout.write(`${formatPairKinds(traced).join('\n')}\n`);
  if (result.interrupted) return EXIT.interrupted;
  if (result.successPct < options.minSuccess) {
    process.stderr.write(
      `stress: ${result.successPct}% of pairs established, below --min-success ${options.minSuccess}%\n`,
    );
    return EXIT.failure;
  }
  return EXIT.ok;
});
