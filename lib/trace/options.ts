/**
 * trace.ts's command line: the flags, their checks (one line and exit 2 before anything is traced),
 * --host names resolved to every address they have, and the help text.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { parseCount, parseFlags, parseHost, parsePortRange } from '../core/cli.ts';
import { UsageError } from '../core/errors.ts';
import type { PortRange } from '../core/types.ts';
import { DEFAULT_MAX_OPEN } from './connectionStream.ts';
import { DEMO_KINDS, type DemoKind } from './demos.ts';
import { DEFAULT_BUFFER_KB } from './kernelTracepoint.ts';
import type { SourceChoice } from './startTrace.ts';

export const TRACE_USAGE =
  'trace.ts [--ports A-B] [--host ADDR] [--json [--events]] [--source auto|kernel|sampled] [--confirm-time-wait] [--max-open N] [--buffer-kb N] [-- COMMAND ...] | trace.ts --demo simultaneous-open|simultaneous-close|normal-open|normal-close [--json] [--max-tries N]';

/** Exit codes of trace.ts besides the shared ones (0, 1, 2, 130). */
export const TRACE_EXIT = {
  /** The facility a mode needs (tracefs, a network namespace) is unavailable. */
  unavailable: 3,
  /** -- COMMAND could not be started. */
  cannotRun: 127,
} as const;

export const TRACE_HELP = `usage: ${TRACE_USAGE}

Shows what the kernel did with each TCP connection: every state transition (the 11 TCP states), one
line per connection side with microsecond offsets, the two sides of a connection together, how each
connection opened and closed. Runs until COMMAND exits, or until Ctrl-C/SIGTERM/SIGHUP without one.

Options:
  --ports A-B            trace only connections with either port in A..B (default: all TCP ports)
  --host ADDR            only connections with this local or remote address (repeatable); a name is
                         resolved to every address it has (as getaddrinfo and /etc/hosts give them)
                         and one that does not resolve is refused; IPv4 ones are also filtered in the
                         kernel
  --json                 machine output: NDJSON on stdout (COMMAND's own stdout then goes to stderr)
  --events               with --json: also one record per raw kernel event as it is read
  --source auto|kernel|sampled
                         auto (default): the kernel tracepoint, else sampling /proc/net/tcp with the
                         reason; kernel: exit 3 without it; sampled: sample on purpose
  --confirm-time-wait    look each inferred TIME_WAIT up in the socket table (/proc/net/tcp state 06)
  --max-open N           most connection sides kept at once (default ${DEFAULT_MAX_OPEN.toLocaleString('en-US')}); past it the oldest open
                         side is written as it is, marked untracked, and the summary says how many
  --buffer-kb N          the kernel's ring buffer per CPU in KiB (default ${DEFAULT_BUFFER_KB}): events the tracer has
                         not read yet wait there; raise it when the summary says events were dropped
                         (a burst of N connections needs about N KiB)
  -- COMMAND ...         trace while COMMAND runs; SIGINT, SIGTERM and SIGHUP sent to trace.ts are
                         passed on to it, and trace.ts ends when it does, with its exit code
  --demo KIND            simultaneous-open, simultaneous-close, normal-open or normal-close: produce
                         the path on real sockets in a private network namespace (root) and show it
  --max-tries N          with --demo: fresh ports up to N times until the path shows (default 20)
  -h, --help             this text

Output (streamed: a connection is written as soon as both its sides are over, so lines come in the
order connections end; memory holds only what is open, whatever the length of the trace):
  text     the source line, then one line per connection side (a connection's two sides together),
           failed connect() attempts on one 4-tuple collapsed into one line, then the TIME_WAIT*
           note, warnings (events the kernel dropped, untracked sides) and a summary line
  --json   one JSON object per line, each with a "type":
             start    source, reason/sampleIntervalMs (sampling), instance, ports, hosts, command, maxOpen
             state, reset   (--events) a raw event: timestampUs, family, local, remote, from, to
             path     one connection side, listener or failed attempt: local, remote, states, steps
                      (state, timestampUs, offsetUs, inferred), startUs, endUs, resetReceived, untracked
             pair     after its sides' path records: sides (local, remote; null if one side was
                      not seen), open kind, close kinds
             timeWait (--confirm-time-wait) endpoints, confirmed
             summary  last: source, instance, lostEvents, paths, pairs, listeners, failedAttempts,
                      openKinds, closeKinds, untracked, maxOpen, peakKept, timeWait, peakRssBytes, exitCode
  --demo --json prints one JSON document (one demo's result).

exit codes:
  0    the trace ended (Ctrl-C, SIGTERM, SIGHUP or a closed stdout, without COMMAND); a demo showed its path
  1    a demo did not show its path within --max-tries, or another failure
  2    bad usage (one line on stderr, before anything is traced)
  3    the facility is missing: --source kernel without tracefs; --demo without root/tracefs or a namespace
  130  a demo was interrupted
  with -- COMMAND: COMMAND's own exit code; 128+N if signal N ended it (130 SIGINT, 143 SIGTERM,
       129 SIGHUP); 127 if it could not be started

docs/guarantees.md (the trace.ts section) says what trace.ts guarantees (streaming, memory, signals, exit codes).`;

const OPTIONS = {
  ports: { type: 'string' },
  host: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  events: { type: 'boolean' },
  source: { type: 'string' },
  'confirm-time-wait': { type: 'boolean' },
  'max-open': { type: 'string' },
  'buffer-kb': { type: 'string' },
  demo: { type: 'string' },
  'max-tries': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export type TraceOptions =
  | { action: 'help' }
  | { action: 'demo'; demo: DemoKind; json: boolean; maxTries: number }
  | {
      action: 'trace';
      json: boolean;
      events: boolean;
      source: SourceChoice;
      portRange?: PortRange;
      /** As given (names not yet resolved: see resolveHosts). */
      hosts?: string[];
      confirmTimeWait: boolean;
      maxOpen: number;
      bufferKb: number;
      /** Empty: trace until interrupted. */
      command: string[];
    };

function parseSource(text: string | undefined): SourceChoice {
  if (text === undefined) return 'auto';
  if (text === 'auto' || text === 'kernel' || text === 'sampled') return text;
  throw new UsageError(`--source: '${text}' is not one of auto, kernel, sampled`);
}

export function parseTraceOptions(argv: string[]): TraceOptions {
  const split = argv.indexOf('--');
  const command = split >= 0 ? argv.slice(split + 1) : [];
  const { values, positionals } = parseFlags(split >= 0 ? argv.slice(0, split) : argv, OPTIONS, true);
  if (values.help) return { action: 'help' };
  if (positionals.length)
    throw new UsageError(`unexpected argument '${positionals[0]}' (put the command after --)`);
  const json = values.json ?? false;
  if (values.demo !== undefined) {
    if (!(DEMO_KINDS as readonly string[]).includes(values.demo))
      throw new UsageError(`--demo: '${values.demo}' is not one of ${DEMO_KINDS.join(', ')}`);
    if (
      command.length ||
      values.ports ||
      values.host ||
      values.source ||
      values['confirm-time-wait'] ||
      values.events ||
      values['max-open'] ||
      values['buffer-kb']
    )
      throw new UsageError('--demo takes only --json and --max-tries');
    const maxTries = values['max-tries'] ? parseCount(values['max-tries'], '--max-tries', 1, 100) : 20;
    return { action: 'demo', demo: values.demo as DemoKind, json, maxTries };
  }
  if (values['max-tries']) throw new UsageError('--max-tries goes with --demo');
  if (values.events && !json) throw new UsageError('--events goes with --json');
  if (split >= 0 && command.length === 0) throw new UsageError('no command after --');
  return {
    action: 'trace',
    json,
    events: values.events ?? false,
    source: parseSource(values.source),
    ...(values.ports ? { portRange: parsePortRange(values.ports, '--ports') } : {}),
    ...(values.host ? { hosts: values.host.map((host) => parseHost(host, '--host')) } : {}),
    confirmTimeWait: values['confirm-time-wait'] ?? false,
    maxOpen: values['max-open']
      ? parseCount(values['max-open'], '--max-open', 1, 10_000_000)
      : DEFAULT_MAX_OPEN,
    bufferKb: values['buffer-kb']
      ? parseCount(values['buffer-kb'], '--buffer-kb', 64, 4 << 20)
      : DEFAULT_BUFFER_KB,
    command,
  };
}

/** An address as the tracers print it: IPv6 compressed and lower case, a v4-mapped one as IPv4. */
export function canonicalAddress(address: string): string {
  if (isIP(address) !== 6) return address;
  const compressed = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(compressed);
  if (!mapped?.[1] || !mapped[2]) return compressed;
  const high = Number.parseInt(mapped[1], 16);
  const low = Number.parseInt(mapped[2], 16);
  return [high >> 8, high & 255, low >> 8, low & 255].join('.');
}

/**
 * The --host values as addresses: IP literals in the tracers' form, names resolved to all their
 * addresses (A and AAAA, /etc/hosts included). A name that does not resolve is a usage error.
 */
export async function resolveHosts(hosts: readonly string[]): Promise<string[]> {
  const addresses = new Set<string>();
  for (const host of hosts) {
    if (isIP(host)) {
      addresses.add(canonicalAddress(host));
      continue;
    }
    let found: { address: string }[];
    try {
      found = await lookup(host, { all: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new UsageError(`--host: cannot resolve '${host}' to an address (${code})`);
    }
    if (found.length === 0) throw new UsageError(`--host: '${host}' has no address`);
    for (const { address } of found) addresses.add(canonicalAddress(address));
  }
  return Array.from(addresses);
}
