/**
 * stress.ts command line -> typed, validated options. Pure: everything wrong with the input is a
 * UsageError (one line, exit 2) before any socket is opened or any file written.
 */
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseBytes, parseCount, parseDuration, parseFlags, parsePortRange } from '../core/cli.ts';
import { UsageError } from '../core/errors.ts';
import type { PortRange } from '../core/types.ts';
import { PLAN_ADDRESS_COUNT, planPairs } from './planPairs.ts';
import {
  type AddressPlan,
  CLOSE_MODES,
  MODES,
  type Mode,
  SOCKET_KINDS,
  type StressOptions,
} from './types.ts';

export const STRESS_USAGE =
  'stress.ts [--pairs N] [--duration D] [--concurrency N] [--rate N] [--workers N] [--payload BYTES] ' +
  '[--close graceful|reset|simultaneous] [--timeout D] [--mode sandbox|race] [--json FILE] [--log FILE] ' +
  '[--min-success PCT] [--ports LO-HI] [--addresses N] [--warmup N] [--sockets handle|net] [--trace] [--quiet]';

/** --help: every option, described once (the docs quote it). */
export const STRESS_HELP = `usage: ${STRESS_USAGE}

  --pairs N            pairs to run (default 10000; 10k, 1M accepted)
  --duration D         run for a time instead (30s, 2m); with --pairs, whichever ends first
  --concurrency N      pairs in flight over all workers (default 64 per worker)
  --rate N             open loop: start N pairs per second; latency counts from each scheduled start;
                       with --duration D the schedule ends there: the pairs due before D, no more
  --workers N          worker threads (default: one per core; race mode needs 2)
  --payload BYTES      bytes each side sends and the other checks (default 64; 4KiB, 1MiB)
  --close KIND         graceful (A sends FIN first), reset (A aborts, B must see ECONNRESET),
                       simultaneous (both FINs cross: sandbox mode holds the FINs until both sides
                       sent theirs, about 0.3 s per pair; race mode: best effort) (default graceful)
  --timeout D          per pair (default 10s; any duration at most 24.8 days, the longest timer)
  --mode MODE          sandbox (default; private network namespace, falls back to race if impossible:
                       npm run setup as root installs what it needs) or race (host loopback, the two
                       sides retry from different threads)
  --json FILE          write the summary as JSON (after the report is printed)
  --log FILE           write one NDJSON record per pair that started, then one record of the planned
                       pairs that never started (a stop came first): {"outcome":"notStarted",...}
                       Both are checked before the first pair (exit 2 if one cannot be written) and
                       written through: a symlink is followed, nothing is renamed over; --log takes a
                       file or a character device, with --trace a regular file (it is read back)
  --min-success PCT    exit 1 if fewer pairs were established (default 100)
  --ports LO-HI        local ports to spread pairs over (sandbox 1024-65535, race 21000-29999)
  --addresses N        loopback addresses to spread pairs over (default all of 127.0.1.1 and up)
  --warmup N           sandbox mode: throwaway pairs per worker before the clock starts (default 5000;
                       0 with --close simultaneous, whose pairs wait on FIN timers, not on the CPU);
                       with a payload of at most 64KiB, for at most 5 s; shown, and a signal stops it
  --sockets KIND       sandbox mode: handle (default; Node's libuv TCP handles directly, faster; used
                       if their self-test passes, else net.Socket and the reason in the report)
                       or net (net.Socket); race mode always uses net.Socket
  --trace              record every pair's TCP states with the kernel tracepoint (root; else sampled
                       from /proc/net/tcp, labelled) and count how pairs opened and closed
  --quiet              no progress output
  --lab TOPOLOGY       every pair across real NAT routers, through stress agents: builds a lab of 2 to 6
                       hosts, each behind its router (lab.ts's syntax, e.g. eim:apdf:drop,eim:apdf:drop),
                       runs one agent per host, reports each agent, link and router (conntrack);
                       --workers is then per agent; not with --mode, --addresses, --warmup, --trace.
                       stress.ts agent --help: an agent by hand. docs/distributed.md
  --conntrack-events off  with --lab: do not watch the routers' event streams (states entered, ports
                       kept); they cost about as much CPU as the pairs (default on)
  --agents LIST        every pair across agents already running on other machines or in pods
                       (HOST:PORT,HOST:PORT,...); its flags: stress.ts --agents A:P,B:P --help

exit codes: 0 ok, 1 success below --min-success, an output that failed during or after the run (the
            report is printed first) or a run error, 2 bad usage or an output that cannot be written,
            3 --mode sandbox impossible here, 4 --lab, --agents: an agent could not start, be reached
            or refused (named), 5 --lab: no lab can be built here, 130 interrupted (SIGINT/SIGTERM/
            SIGHUP: pairs in flight cancelled, partial report; a second signal quits at once without
            one), 128+N the run in the sandbox was killed by signal N (said on stderr)
see docs/guarantees.md for what happens to the output files, on signals and on a full disk`;

export const DEFAULT_PAIRS = 10_000;
/** Pairs in flight per worker by default: enough to hide one pair's round trips, few enough to stay cache-warm. */
export const DEFAULT_CONCURRENCY_PER_WORKER = 64;
export const MAX_PAYLOAD = 16 * 1024 * 1024;
/**
 * Throwaway pairs per worker: enough for TurboFan to have compiled the whole per-pair path before the
 * clock starts (with fewer, it still compiles some of it during the run), so that a 10k-pair run
 * measures as a 1M-pair run does (docs/design.md, the warm-up).
 */
export const DEFAULT_WARMUP = 5000;
/** Sandbox: the namespace is ours alone. Race: the host's loopback, in the range the team gave stress. */
export const DEFAULT_PORTS: Record<Mode, PortRange> = {
  sandbox: { first: 1024, last: 65_535 },
  race: { first: 21_000, last: 29_999 },
};

const flagSpec = {
  pairs: { type: 'string' },
  duration: { type: 'string' },
  concurrency: { type: 'string' },
  rate: { type: 'string' },
  workers: { type: 'string' },
  payload: { type: 'string' },
  close: { type: 'string' },
  timeout: { type: 'string' },
  mode: { type: 'string' },
  json: { type: 'string' },
  log: { type: 'string' },
  'min-success': { type: 'string' },
  ports: { type: 'string' },
  addresses: { type: 'string' },
  warmup: { type: 'string' },
  sockets: { type: 'string' },
  quiet: { type: 'boolean' },
  trace: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

// Also a peer.ts option: the byte-count parser lives with the other value parsers.
export { parseBytes } from '../core/cli.ts';

function parsePercent(text: string, name: string): number {
  const value = /^\d+(\.\d+)?%?$/.test(text.trim()) ? Number.parseFloat(text) : Number.NaN;
  if (!(value >= 0 && value <= 100)) throw new UsageError(`${name}: '${text}' is not a percentage 0..100`);
  return value;
}

function parseChoice<T extends string>(text: string, name: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(text))
    throw new UsageError(`${name}: '${text}' is not one of ${choices.join(', ')}`);
  return text as T;
}

/**
 * A file we are about to write: its directory must exist, and it must not be a directory. The rest
 * (permissions, room, what kind of file) is checked when the run opens it (lib/core/outputFile.ts).
 */
function checkOutputPath(path: string, name: string): string {
  const full = resolve(path);
  const stat = (file: string) => {
    try {
      return statSync(file);
    } catch (error) {
      // Only a missing file is ours to judge here; EACCES and the like are named when it is opened.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      return null;
    }
  };
  if (stat(full)?.isDirectory()) throw new UsageError(`${name}: ${path} is a directory`);
  const parent = stat(dirname(full));
  if (parent === undefined || (parent && !parent.isDirectory()))
    throw new UsageError(`${name}: directory ${dirname(full)} does not exist`);
  return full;
}

export type ParsedStress = { help: true } | { help: false; options: StressOptions; plan: AddressPlan };

export interface ParseContext {
  /** Default worker count. */
  cores: number;
  /** Resolve the defaults for this mode instead (the fallback from sandbox to race). */
  mode?: Mode;
  /** Passed to the address plan (race mode: random, so runs on the shared loopback differ). */
  roundOffset?: number;
}

/** Parses and validates. Builds the address plan too, so that too many pairs are a usage error. */
export function parseStressOptions(args: string[], context: ParseContext): ParsedStress {
  const { values } = parseFlags(args, flagSpec, false);
  if (values.help) return { help: true };
  const cores = context.cores;

  const mode =
    context.mode ?? (values.mode === undefined ? 'sandbox' : parseChoice(values.mode, '--mode', MODES));
  const durationMs = values.duration === undefined ? undefined : parseDuration(values.duration, '--duration');
  if (durationMs !== undefined && durationMs <= 0) throw new UsageError('--duration: must be more than 0');
  const pairs =
    values.pairs !== undefined
      ? parseCount(values.pairs, '--pairs', 1, 1e9)
      : durationMs === undefined
        ? DEFAULT_PAIRS
        : undefined;

  // Race mode puts the two sides of a pair in different threads: it needs two at least.
  const minWorkers = mode === 'race' ? 2 : 1;
  let workers: number;
  if (values.workers !== undefined) {
    workers = parseCount(values.workers, '--workers', 1, 1024);
    if (workers < minWorkers)
      throw new UsageError(
        `--workers ${workers}: --mode race needs 2 at least (the two sides of a pair run in different threads)`,
      );
  } else {
    workers = Math.max(minWorkers, cores);
  }

  let concurrency: number;
  if (values.concurrency !== undefined) {
    concurrency = parseCount(values.concurrency, '--concurrency', 1, 1_000_000);
    // Each worker (in race mode each pair of worker groups) needs one pair in flight at least.
    const perPair = mode === 'race' ? 2 : 1;
    if (concurrency * perPair < workers) {
      if (values.workers !== undefined)
        throw new UsageError(
          `--concurrency ${concurrency} is less than --workers ${workers}${mode === 'race' ? ' / 2' : ''}: every worker needs a pair in flight`,
        );
      workers = Math.max(minWorkers, concurrency * perPair);
    }
  } else {
    // Race mode: retrying connects of many pairs in one thread rarely cross; one pair per thread is fastest.
    concurrency = mode === 'race' ? Math.floor(workers / 2) : DEFAULT_CONCURRENCY_PER_WORKER * workers;
  }
  if (pairs !== undefined) concurrency = Math.min(concurrency, pairs);
  // Fewer pairs than threads: idle threads only cost start-up time.
  const threadsPerPair = mode === 'race' ? 2 : 1;
  if (pairs !== undefined && pairs * threadsPerPair < workers && values.workers === undefined)
    workers = Math.max(minWorkers, pairs * threadsPerPair);

  const rate = values.rate === undefined ? undefined : parseCount(values.rate, '--rate', 1, 10_000_000);
  const payload = values.payload === undefined ? 64 : parseBytes(values.payload, '--payload', MAX_PAYLOAD);
  const close = values.close === undefined ? 'graceful' : parseChoice(values.close, '--close', CLOSE_MODES);
  // A simultaneous close waits on FIN timers (lib/stress/finCrossing.ts): the CPU is not what limits
  // those pairs, so JIT warm-up buys nothing, and its pairs would wait on the same timers.
  const warmup =
    mode === 'race'
      ? 0
      : values.warmup === undefined
        ? close === 'simultaneous'
          ? 0
          : DEFAULT_WARMUP
        : parseCount(values.warmup, '--warmup', 0, 1_000_000);
  const sockets =
    values.sockets === undefined ? 'handle' : parseChoice(values.sockets, '--sockets', SOCKET_KINDS);
  const timeoutMs = values.timeout === undefined ? 10_000 : parseDuration(values.timeout, '--timeout');
  if (timeoutMs < 1) throw new UsageError('--timeout: must be 1ms at least');
  const minSuccess =
    values['min-success'] === undefined ? 100 : parsePercent(values['min-success'], '--min-success');
  const ports = values.ports === undefined ? DEFAULT_PORTS[mode] : parsePortRange(values.ports, '--ports');
  const addresses =
    values.addresses === undefined
      ? PLAN_ADDRESS_COUNT
      : parseCount(values.addresses, '--addresses', 2, PLAN_ADDRESS_COUNT);
  const json = values.json === undefined ? undefined : checkOutputPath(values.json, '--json');
  const log = values.log === undefined ? undefined : checkOutputPath(values.log, '--log');
  if (json !== undefined && json === log) throw new UsageError('--json and --log name the same file');

  const plan = planPairs(pairs, { ports, addresses, roundOffset: context.roundOffset });
  return {
    help: false,
    options: {
      pairs,
      durationMs,
      concurrency,
      rate,
      workers,
      payload,
      close,
      warmup,
      sockets,
      timeoutMs,
      mode,
      modeExplicit: values.mode !== undefined,
      json,
      log,
      minSuccess,
      ports,
      addresses,
      quiet: values.quiet ?? false,
      trace: values.trace ?? false,
    },
    plan,
  };
}
