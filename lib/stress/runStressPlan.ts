/**
 * A stress run from a script (the `simopen/stress` API): the same mode decision, sandbox, sockets
 * self-test and pool as stress.ts, with the options as an object and the result returned.
 *
 * The sandbox is a private network namespace, and a running process cannot move its worker threads
 * into one: like stress.ts, the calling script is executed again inside it (same node flags, so tsx
 * comes along) and the copy runs the plan. In the calling process the call therefore never returns:
 * it ends the process with the copy's exit code. The run itself is stress.ts's (runAndReport): outputs
 * checked before the first pair, --trace, the same result, without printing the report. Validation goes through stress.ts's own parser (the
 * plan is turned into its flags), so a bad value is a UsageError naming the flag.
 */
import { randomInt } from 'node:crypto';
import os from 'node:os';
import { openFilesLimit } from '../core/processLimits.ts';
import { insideSandbox, probeSandbox, reexecInSandbox } from '../core/sandbox.ts';
import { chooseMode, MODE_REASON_ENV, reexecEnv } from './chooseMode.ts';
import { prepareRun } from './prepareRun.ts';
import { runAndReport } from './stressCommand.ts';
import type { StressPlan, StressResult } from './types.ts';

/** The stress.ts arguments that ask for this plan. */
export function stressArgs(plan: StressPlan): string[] {
  const args: string[] = [];
  // --name=value: a value that starts with '-' (a negative number, a file name) stays a value.
  const flag = (name: string, value: string | number | undefined) => {
    if (value !== undefined) args.push(`--${name}=${value}`);
  };
  const ms = (value: number | undefined) => (value === undefined ? undefined : `${value}ms`);
  flag('pairs', plan.pairs);
  flag('duration', ms(plan.durationMs));
  flag('concurrency', plan.concurrency);
  flag('rate', plan.rate);
  flag('workers', plan.workers);
  flag('payload', plan.payload);
  flag('close', plan.close);
  flag('timeout', ms(plan.timeoutMs));
  flag('mode', plan.mode);
  flag('log', plan.log);
  flag('ports', plan.ports && `${plan.ports.first}-${plan.ports.last}`);
  flag('addresses', plan.addresses);
  flag('warmup', plan.warmup);
  flag('sockets', plan.sockets);
  flag('json', plan.json);
  flag('report', plan.report);
  for (const threshold of plan.thresholds ?? []) flag('threshold', threshold);
  flag('compare', plan.compare);
  flag('open', plan.open === 'skew' ? `skew:${plan.skewMs ?? 0}ms` : plan.open);
  flag('early-syn', plan.earlySyn);
  flag('delay', ms(plan.delayMs));
  flag('hold', ms(plan.holdMs));
  flag('keepalive', ms(plan.keepaliveMs));
  flag('processes', plan.processes);
  if (plan.trace) args.push('--trace');
  if (!plan.progress) args.push('--quiet');
  return args;
}

/**
 * Runs the plan and resolves with its result. Throws UsageError on a bad plan (before anything
 * starts), and ExitError (exitCode 3) when mode 'sandbox' was asked for where none can be made.
 */
export async function runStressPlan(plan: StressPlan = {}): Promise<StressResult> {
  const choice = chooseMode(stressArgs(plan), {
    cores: os.availableParallelism(),
    insideSandbox: insideSandbox(),
    probe: probeSandbox,
    randomRound: () => randomInt(1 << 30),
    reasonFromParent: process.env[MODE_REASON_ENV],
    openFilesLimit: openFilesLimit(),
  });
  if (choice.action === 'help') throw new Error('unreachable: the plan asks for no help');
  if (choice.action === 'reexec') {
    const code = await reexecInSandbox(reexecEnv(choice));
    process.exit(code);
  }
  if (choice.warning) process.stderr.write(`stress: ${choice.warning}\n`);
  const { options, socketsReason } = await prepareRun(choice.options, choice.network);
  const { result } = await runAndReport({
    options,
    plan: choice.plan,
    modeReason: choice.modeReason,
    socketsReason,
    stop: plan.signal ?? new AbortController().signal,
    out: null,
  });
  return result;
}
