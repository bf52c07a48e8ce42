/**
 * trace.ts: the kernel's record of TCP state transitions, one line (or NDJSON record) per connection
 * side, streamed as connections end. Options, output and exit codes: TRACE_HELP in
 * lib/trace/options.ts; guarantees: docs/guarantees.md (trace.ts).
 */

import { startChild, waitRelayingSignals } from '../lib/core/childProcess.ts';
import { runMain } from '../lib/core/cli.ts';
import { EXIT, ExitError } from '../lib/core/errors.ts';
import { insideSandbox, probeSandbox, reexecInSandbox, setupSandboxNetwork } from '../lib/core/sandbox.ts';
import { type DemoKind, type DemoResult, runDemo } from '../lib/trace/demos.ts';
import { formatPath, formatSourceLabel, TIME_WAIT_NOTE } from '../lib/trace/formatPaths.ts';
import { probeTracefs } from '../lib/trace/kernelTracepoint.ts';
import {
  parseTraceOptions,
  resolveHosts,
  TRACE_EXIT,
  TRACE_HELP,
  TRACE_USAGE,
  type TraceOptions,
} from '../lib/trace/options.ts';
import { type StreamTrace, startStreamTrace } from '../lib/trace/streamTrace.ts';
import { LineWriter, NdjsonTraceOutput, TextTraceOutput } from '../lib/trace/traceOutput.ts';

/** The signals that end a trace without a command, and that are passed on to a command. */
const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function printDemo(result: DemoResult): void {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  for (const attempt of result.tries.filter((t) => !t.matched))
    out(
      `try ${attempt.try} (ports ${attempt.ports.join(',')}): path not shown: ${attempt.miss ?? 'unknown'}`,
    );
  out(
    result.matched
      ? `demo ${result.demo}: path shown by the kernel trace after ${result.triesNeeded} ${result.triesNeeded === 1 ? 'try' : 'tries'}`
      : `demo ${result.demo}: path NOT shown after ${result.triesNeeded} tries`,
  );
  out(formatSourceLabel({ source: 'kernel' }));
  const final = result.tries.at(-1);
  final?.sides.forEach((side, index) => {
    const expected = result.expected[index];
    out(`${`${expected?.role ?? index}`.padEnd(7)} ${side ? formatPath(side) : 'not seen'}`);
  });
  out(`expected: ${result.expected.map((side) => `${side.role} ${side.states.join(' → ')}`).join('; ')}`);
  if (result.openKind) out(`open kind: ${result.openKind}; close kinds: ${result.closeKinds?.join(', ')}`);
  for (const check of result.timeWaitConfirmed)
    out(
      `socket table: side ${result.expected[check.side]?.role} ${check.confirmed ? 'is in TIME_WAIT (confirmed, /proc/net/tcp state 06)' : 'NOT found in TIME_WAIT'}`,
    );
  if (final?.sides.some((side) => side?.steps.some((step) => step.inferred))) out(TIME_WAIT_NOTE);
}

async function demoMain(kind: DemoKind, json: boolean, maxTries: number): Promise<number> {
  if (!insideSandbox()) {
    const tracefs = probeTracefs();
    if (!tracefs.ok)
      throw new ExitError(`--demo needs the kernel tracepoint: ${tracefs.reason}`, TRACE_EXIT.unavailable);
    const sandbox = probeSandbox();
    if (!sandbox.ok)
      throw new ExitError(
        `--demo needs a private network namespace: ${sandbox.reason}`,
        TRACE_EXIT.unavailable,
      );
    return reexecInSandbox();
  }
  setupSandboxNetwork();
  // `trace.ts --demo ... | head`: a closed stdout ends the demo quietly (the exit hook removes the instance).
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(EXIT.ok);
    throw error;
  });
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  for (const signal of STOP_SIGNALS) process.once(signal, onSignal);
  try {
    const result = await runDemo(kind, {
      maxTries,
      signal: abort.signal,
      onTry: (attempt) => {
        if (!json && !attempt.matched)
          process.stderr.write(`try ${attempt.try}: not yet (${attempt.miss})\n`);
      },
    });
    if (json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else printDemo(result);
    return result.matched ? EXIT.ok : EXIT.failure;
  } catch (error) {
    if (abort.signal.aborted) {
      process.stderr.write('trace.ts: demo interrupted\n');
      return EXIT.interrupted;
    }
    throw error;
  } finally {
    for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
  }
}

/**
 * Runs the command while tracing and resolves with its exit code (128+N if signal N ended it). It
 * runs in a session of its own, so a terminal's Ctrl-C reaches trace.ts only; SIGINT, SIGTERM and
 * SIGHUP sent to trace.ts are passed on to it (once, however many wrappers relay them too).
 */
async function runCommand(command: string[], json: boolean): Promise<number> {
  // With --json our stdout is the NDJSON stream: the command's output goes to stderr.
  const child = startChild(command[0] ?? '', command.slice(1), {
    stdin: 'inherit',
    output: json ? 'stderr' : 'inherit',
    detached: true,
  });
  try {
    return await waitRelayingSignals(child);
  } catch (error) {
    throw new ExitError(`cannot run ${command[0]}: ${(error as Error).message}`, TRACE_EXIT.cannotRun);
  }
}

/** Resolves at SIGINT, SIGTERM or SIGHUP, or when our stdout is closed (nobody reads the trace). */
function untilInterrupted(outputClosed: Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    const stop = () => {
      for (const signal of STOP_SIGNALS) process.off(signal, stop);
      resolve(EXIT.ok);
    };
    for (const signal of STOP_SIGNALS) process.on(signal, stop);
    outputClosed.then(stop);
  });
}

async function traceMain(options: Extract<TraceOptions, { action: 'trace' }>): Promise<number> {
  const hosts = options.hosts ? await resolveHosts(options.hosts) : undefined;
  let closed = false;
  let onClosed = () => {};
  const outputClosed = new Promise<void>((resolve) => {
    onClosed = resolve;
  });
  // `trace.ts | head`, or a terminal gone with SIGHUP: stop writing; a command still runs to its end.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE' && error.code !== 'EIO') throw error;
    closed = true;
    onClosed();
  });
  const writer = new LineWriter((text) => {
    if (!closed) process.stdout.write(text);
  });
  const line = (text: string) => writer.line(text);
  const output = options.json
    ? new NdjsonTraceOutput(line, { events: options.events })
    : new TextTraceOutput(line);
  // From here to the end the signals are ours (the tracepoint library then leaves them to us): a
  // signal that arrives while the end is written does not cut the output short.
  const hold = () => {};
  for (const signal of STOP_SIGNALS) process.on(signal, hold);
  try {
    let trace: StreamTrace;
    try {
      trace = startStreamTrace({
        source: options.source,
        ...(options.portRange ? { portRange: options.portRange } : {}),
        ...(hosts ? { hosts } : {}),
        maxOpen: options.maxOpen,
        bufferKb: options.bufferKb,
        confirmTimeWait: options.confirmTimeWait,
        ...(options.command.length ? { command: options.command } : {}),
        output,
        flush: () => writer.flush(),
      });
    } catch (error) {
      throw new ExitError((error as Error).message, TRACE_EXIT.unavailable);
    }
    const ports = options.portRange
      ? `TCP ports ${options.portRange.first}-${options.portRange.last}`
      : 'all TCP ports';
    process.stderr.write(
      `trace.ts: tracing ${ports}${hosts ? ` with address ${hosts.join(' or ')}` : ''}${trace.instance ? ` (trace instance ${trace.instance})` : ' (sampling)'}; ${options.command.length ? `running ${options.command.join(' ')}` : 'Ctrl-C to stop'}\n`,
    );
    let exitCode: number;
    let failure: unknown;
    try {
      exitCode = options.command.length
        ? await runCommand(options.command, options.json)
        : await untilInterrupted(outputClosed);
    } catch (error) {
      failure = error;
      exitCode = error instanceof ExitError ? error.exitCode : EXIT.failure;
    }
    // Sockets a finished command left behind finish closing in the kernel (FIN/ACK on lo) right after.
    await new Promise((resolve) => setTimeout(resolve, 100));
    await trace.stop(exitCode);
    if (failure) throw failure;
    return exitCode;
  } finally {
    for (const signal of STOP_SIGNALS) process.off(signal, hold);
  }
}

async function main(): Promise<number> {
  const options = parseTraceOptions(process.argv.slice(2));
  if (options.action === 'help') {
    process.stdout.write(`${TRACE_HELP}\n`);
    return EXIT.ok;
  }
  if (options.action === 'demo') return demoMain(options.demo, options.json, options.maxTries);
  return traceMain(options);
}

runMain('trace.ts', TRACE_USAGE, main);
