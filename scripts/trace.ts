/**
 * trace.ts: the kernel's record of TCP state transitions, one line per connection side.
 *   trace.ts [--ports A-B] [--host ADDR] [--json] [--source auto|kernel|sampled] [--confirm-time-wait] [-- COMMAND ...]
 *   trace.ts --demo simultaneous-open|simultaneous-close|normal-open|normal-close [--json] [--max-tries N]
 */

import { startChild } from '../lib/core/childProcess.ts';
import { parseCount, parseFlags, parseHost, parsePortRange, runMain } from '../lib/core/cli.ts';
import { EXIT, ExitError, UsageError } from '../lib/core/errors.ts';
import { insideSandbox, probeSandbox, reexecInSandbox, setupSandboxNetwork } from '../lib/core/sandbox.ts';
import { summarizeConnections } from '../lib/trace/connectionPaths.ts';
import { DEMO_KINDS, type DemoKind, type DemoResult, runDemo } from '../lib/trace/demos.ts';
import {
  formatEndpoints,
  formatPath,
  formatSourceLabel,
  formatTraceReport,
  TIME_WAIT_NOTE,
} from '../lib/trace/formatPaths.ts';
import { probeTracefs } from '../lib/trace/kernelTracepoint.ts';
import { isInTimeWait, readSocketTable } from '../lib/trace/socketTableSampler.ts';
import { type SourceChoice, startStateTrace } from '../lib/trace/startTrace.ts';
import type { ConnectionPath } from '../lib/trace/types.ts';

const USAGE =
  'trace.ts [--ports A-B] [--host ADDR] [--json] [--source auto|kernel|sampled] [--confirm-time-wait] [-- COMMAND ...] | trace.ts --demo simultaneous-open|simultaneous-close|normal-open|normal-close [--json] [--max-tries N]';

/** --help: every option, described once (docs/trace.md quotes it). */
const HELP = `usage: trace.ts [--ports A-B] [--host ADDR]... [--json] [--source auto|kernel|sampled] [--confirm-time-wait] [-- COMMAND ...]
       trace.ts --demo simultaneous-open|simultaneous-close|normal-open|normal-close [--json] [--max-tries N]

Prints the kernel's record of TCP state transitions, one line per connection side, named by the 11
TCP states, with microsecond offsets from the start of tracing. Traces while COMMAND runs, or without
one until Ctrl-C or SIGTERM. TIME_WAIT is inferred (printed TIME_WAIT*): Linux does not report it.

  --ports A-B          only connections with either port in A..B (default: all TCP ports)
  --host ADDR          only connections with this local or remote address (repeatable; IPv4 ones are
                       filtered in the kernel too)
  --json               one JSON document on stdout: events, paths, open and close kinds, pairs (the
                       command's own stdout then goes to stderr)
  --source SOURCE      auto (default): the kernel tracepoint, else sampling /proc/net/tcp every 10 ms,
                       labelled, with the reason; kernel: the tracepoint or exit 3; sampled: sampling
  --confirm-time-wait  check each inferred TIME_WAIT in the socket table (/proc/net/tcp)
  -- COMMAND ...       trace while COMMAND runs, then report
  --demo KIND          open real sockets in a private network namespace until the kernel shows the
                       classic path: simultaneous-open, simultaneous-close, normal-open, normal-close
  --max-tries N        --demo: tries on fresh ports before giving up (default 20, at most 100)
  -h, --help           this text

The kernel tracepoint (sock:inet_sock_set_state) needs root and tracefs; --demo needs root, unshare,
ip and nft.
exit codes: 0 done (without a command, Ctrl-C ends the trace; a demo showed its path), 1 a demo did
            not show its path, or another failure, 2 bad usage, 3 the facility is missing (--source
            kernel without tracefs; --demo without root, tracefs or a network namespace),
            130 a demo was interrupted; with -- COMMAND: the command's exit code (128+N if signal N
            ended it, 127 if it could not start)`;

/** Exit code when the facility a mode needs (tracefs, a network namespace) is unavailable. */
const EXIT_UNAVAILABLE = 3;

const OPTIONS = {
  ports: { type: 'string' },
  host: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  source: { type: 'string' },
  'confirm-time-wait': { type: 'boolean' },
  demo: { type: 'string' },
  'max-tries': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parseSource(text: string | undefined): SourceChoice {
  if (text === undefined) return 'auto';
  if (text === 'auto' || text === 'kernel' || text === 'sampled') return text;
  throw new UsageError(`--source: '${text}' is not one of auto, kernel, sampled`);
}

/** Inferred TIME_WAITs checked in this network namespace's socket table. */
function confirmTimeWait(paths: readonly ConnectionPath[]): { endpoints: string; confirmed: boolean }[] {
  const rows = readSocketTable();
  return paths
    .filter((path) => path.steps.some((step) => step.inferred))
    .map((path) => ({ endpoints: formatEndpoints(path), confirmed: isInTimeWait(path, rows) }));
}

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
      throw new ExitError(`--demo needs the kernel tracepoint: ${tracefs.reason}`, EXIT_UNAVAILABLE);
    const sandbox = probeSandbox();
    if (!sandbox.ok)
      throw new ExitError(`--demo needs a private network namespace: ${sandbox.reason}`, EXIT_UNAVAILABLE);
    return reexecInSandbox();
  }
  setupSandboxNetwork();
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
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
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Runs the command (or waits for Ctrl-C) while tracing; resolves with the exit code to use. */
function runCommand(command: string[], json: boolean): Promise<number> {
  // With --json our stdout is the JSON document: the command's output goes to stderr.
  const child = startChild(command[0] ?? '', command.slice(1), {
    stdin: 'inherit',
    output: json ? 'stderr' : 'inherit',
  });
  // A terminal's Ctrl-C reaches the command too; we keep tracing until it has exited.
  const ignore = () => {};
  process.on('SIGINT', ignore);
  process.on('SIGTERM', ignore);
  const done = () => {
    process.off('SIGINT', ignore);
    process.off('SIGTERM', ignore);
  };
  return child.exited.then(
    (code) => {
      done();
      return code;
    },
    (error: Error) => {
      done();
      throw new ExitError(`cannot run ${command[0]}: ${error.message}`, 127);
    },
  );
}

function untilInterrupted(): Promise<number> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(EXIT.ok);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const split = argv.indexOf('--');
  const command = split >= 0 ? argv.slice(split + 1) : [];
  const { values, positionals } = parseFlags(split >= 0 ? argv.slice(0, split) : argv, OPTIONS, true);
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return EXIT.ok;
  }
  if (positionals.length)
    throw new UsageError(`unexpected argument '${positionals[0]}' (put the command after --)`);
  const json = values.json ?? false;
  if (values.demo !== undefined) {
    if (!(DEMO_KINDS as readonly string[]).includes(values.demo))
      throw new UsageError(`--demo: '${values.demo}' is not one of ${DEMO_KINDS.join(', ')}`);
    if (command.length || values.ports || values.host || values.source || values['confirm-time-wait'])
      throw new UsageError('--demo takes only --json and --max-tries');
    const maxTries = values['max-tries'] ? parseCount(values['max-tries'], '--max-tries', 1, 100) : 20;
    return demoMain(values.demo as DemoKind, json, maxTries);
  }
  if (values['max-tries']) throw new UsageError('--max-tries goes with --demo');
  if (split >= 0 && command.length === 0) throw new UsageError('no command after --');
  const portRange = values.ports ? parsePortRange(values.ports, '--ports') : undefined;
  const hosts = values.host?.map((host) => parseHost(host, '--host'));
  const source = parseSource(values.source);

  let trace: ReturnType<typeof startStateTrace>;
  try {
    trace = startStateTrace({ source, ...(portRange ? { portRange } : {}), ...(hosts ? { hosts } : {}) });
  } catch (error) {
    throw new ExitError((error as Error).message, EXIT_UNAVAILABLE);
  }
  const what = portRange ? `TCP ports ${portRange.first}-${portRange.last}` : 'all TCP ports';
  process.stderr.write(
    `trace.ts: tracing ${what}${trace.instance ? ` (trace instance ${trace.instance})` : ' (sampling)'}; ${command.length ? `running ${command.join(' ')}` : 'Ctrl-C to stop'}\n`,
  );
  let exitCode: number;
  let paths: ConnectionPath[] = [];
  try {
    exitCode = command.length ? await runCommand(command, json) : await untilInterrupted();
  } finally {
    // Sockets a finished command left behind finish closing in the kernel (FIN/ACK on lo) right after.
    await new Promise((resolve) => setTimeout(resolve, 100));
    paths = await trace.stop();
  }
  const summary = summarizeConnections(paths);
  const timeWait = values['confirm-time-wait'] ? confirmTimeWait(paths) : undefined;
  if (json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          ...trace.label,
          ...(trace.instance ? { instance: trace.instance } : {}),
          lostEvents: trace.lostEvents,
          events: trace.events,
          paths,
          openKinds: summary.openKinds,
          closeKinds: summary.closeKinds,
          pairs: summary.pairs.map((pair) => ({
            sides: pair.sides.map((side) => side && { local: side.local, remote: side.remote }),
            open: pair.open,
            close: pair.close,
          })),
          ...(timeWait ? { timeWaitConfirmed: timeWait } : {}),
        },
        null,
        2,
      )}\n`,
    );
  } else {
    const lines = formatTraceReport(paths, trace.label);
    if (trace.lostEvents)
      lines.push(`WARNING: the kernel dropped ${trace.lostEvents} events (ring buffer full)`);
    for (const check of timeWait ?? [])
      lines.push(
        `socket table: ${check.endpoints} ${check.confirmed ? 'in TIME_WAIT (confirmed)' : 'not in TIME_WAIT'}`,
      );
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return exitCode;
}

// `trace.ts ... | head`: a closed stdout ends the run quietly (the exit hook still removes the instance).
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(EXIT.ok);
  throw error;
});
runMain('trace.ts', USAGE, main);
