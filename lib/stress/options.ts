/**
 * stress.ts command line -> typed, validated options. Pure: everything wrong with the input is a
 * UsageError (one line, exit 2) before any socket is opened or any file written.
 */
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseBytes, parseCount, parseDuration, parseFlags, parsePortRange } from '../core/cli.ts';
import { EXIT, ExitError, UsageError } from '../core/errors.ts';
import type { PortRange } from '../core/types.ts';
import { readStressResult } from './compareRuns.ts';
import { PLAN_ADDRESS_COUNT, planPairs } from './planPairs.ts';
import { parseThreshold } from './thresholds.ts';
import {
  type AddressPlan,
  CLOSE_MODES,
  EARLY_SYN_ACTIONS,
  MODES,
  type Mode,
  type OpenMode,
  type PlanLayout,
  SOCKET_KINDS,
  type StressOptions,
  type Sweep,
} from './types.ts';

/** --processes, and a hold spread by itself, at most: each process costs its own runtime's memory. */
export const MAX_PROCESSES = 64;

export const STRESS_USAGE =
  'stress.ts [--pairs N] [--duration D] [--concurrency N] [--rate N] [--workers N] [--payload BYTES] ' +
  '[--close graceful|reset|simultaneous] [--timeout D] [--mode sandbox|race] [--json FILE] [--log FILE] ' +
  '[--min-success PCT] [--ports LO-HI] [--addresses N] [--warmup N] [--sockets handle|net] [--trace] ' +
  '[--report FILE.html] [--threshold EXPR]... [--compare OLD.json] [--quiet] ' +
  '[--open one-sided|crossed|skew:D] [--early-syn drop|rst] [--delay D] [--sweep skew=A..B:N] [--hold D] [--keepalive D] ' +
  '[--processes N] [--lab TOPOLOGY | --agents LIST]';

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
  --timeout D          per pair, a --hold not counted (default 10s; at most 24.8 days, the longest timer)
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
  --report FILE.html   write a self-contained HTML report: summary, plots over time and of latency
                       percentiles, attempts, with --trace the TCP state diagram (opens offline,
                       from file://); checked before the first pair, as --json and --log are
  --threshold EXPR     pass/fail criterion on the result, repeatable: 'establish.p99<5ms',
                       'success>=99.9%', 'rate>=20000' (metrics and units: docs/report.md); listed
                       in the report and the JSON with pass or fail
  --compare OLD.json   a previous run's --json beside this one: deltas per figure in the report,
                       both latency curves in the HTML; not a stress.ts JSON: exit 2 before the run
  --quiet              no progress output
  --lab TOPOLOGY       every pair across real NAT routers, through stress agents: builds a lab of 2 to 6
                       hosts, each behind its router (lab.ts's syntax, e.g. eim:apdf:drop,eim:apdf:drop),
                       runs one agent per host, reports each agent, link and router (conntrack);
                       --workers is then per agent; not with --mode, --addresses, --warmup, --trace.
                       stress.ts agent --help: an agent by hand. docs/distributed.md
  --conntrack-events WHICH  with --lab: the routers' conntrack states entered, from the events of 1 in
                       64 new entries chosen in the kernel (on, the default), of every entry (all;
                       the kernel drops events at high rates) or of none (off); new entries and kept
                       ports are counted for every entry whichever it is
  --open KIND          how the two SYNs of a pair meet (sandbox mode): one-sided (default; A's SYN
                       first, the RST it meets dropped, B's SYN then finds A in SYN_SENT), crossed
                       (both SYNs held on a veth link in the sandbox and released together: they
                       cross, both sides pass SYN_RECEIVED), skew:D (B connects D after A over that
                       link, which delivers what was sent every --delay: 2ms, 0.5ms, 1s)
  --early-syn WHAT     skew: a SYN that arrives before its peer connected is dropped (drop, a NAT;
                       default) or answered with RST (rst, a plain host: that side connects again)
  --delay D            skew: the link's delivery interval, so a skew of at most D crosses
                       (default 2ms; 1ms to 10s)
  --sweep skew=A..B:N  N runs of --pairs each, B's skew from A to B in equal steps (skew=0..5ms:11),
                       then a table of success, open kinds (with --trace), attempts and establish
                       time per point (--json: the table and every point's result)
  --hold D             keep each established pair open for D before it closes (sandbox mode, and
                       through --lab or --agents; pairs in flight default to --pairs, so all are open
                       at once; more than one process may open, 2 descriptors a pair, are spread over
                       processes: see --processes; an agent is one process, with one side a pair)
  --keepalive D        --hold: each side sends 16 checked bytes every D (default 1s; 10ms at least);
                       a pair whose keepalive is late or altered fails with EKEEPALIVE
  --processes N        sandbox mode: run the pairs in N processes in the namespace, each with --workers
                       threads (default 1; a --hold of more pairs than one process may hold under its
                       open-files limit gets as many as it needs, at most ${MAX_PROCESSES})
  --agents LIST        every pair across agents already running on other machines or in pods
                       (HOST:PORT,HOST:PORT,...); its flags: stress.ts --agents A:P,B:P --help

exit codes: 0 ok, 1 success below --min-success, an output that failed during or after the run (the
            report is printed first) or a run error, 2 bad usage or an output that cannot be written,
            3 --mode sandbox impossible here, 4 --lab, --agents: an agent could not start, be reached
            or refused (named), 5 --lab: no lab can be built here, 99 a --threshold failed (outputs are
            written first), 130 interrupted (SIGINT/SIGTERM/SIGHUP: pairs in flight cancelled, partial
            report; a second signal quits at once without one), 128+N the run in the sandbox was killed
            by signal N (said on stderr)
see docs/guarantees.md for what happens to the output files, on signals and on a full disk`;

export const DEFAULT_PAIRS = 10_000;
/** Pairs in flight per worker by default: enough to hide one pair's round trips, few enough to stay cache-warm. */
export const DEFAULT_CONCURRENCY_PER_WORKER = 64;
export const MAX_PAYLOAD = 16 * 1024 * 1024;
/** --open skew: pairs in flight per worker by default (a wave is half of it). */
export const SKEW_CONCURRENCY_PER_WORKER = 16;
/** The held link's delivery interval in skew mode (--delay). */
export const DEFAULT_DELAY_MS = 2;
/** A delivery holds the SYNs at most this long (the neighbour entry gives up later, lib/core/heldLink.ts). */
export const MAX_DELAY_MS = 10_000;
export const DEFAULT_KEEPALIVE_MS = 1000;
/** Shorter intervals would test the event loop's lag, not the pairs. */
export const MIN_KEEPALIVE_MS = 10;
/** The most pairs one worker connects at once over the held link. */
export const MAX_WAVE = 4096;
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
  report: { type: 'string' },
  threshold: { type: 'string', multiple: true },
  compare: { type: 'string' },
  open: { type: 'string' },
  'early-syn': { type: 'string' },
  delay: { type: 'string' },
  sweep: { type: 'string' },
  hold: { type: 'string' },
  keepalive: { type: 'string' },
  processes: { type: 'string' },
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

/** --open: one-sided, crossed or skew:D. */
export function parseOpen(text: string): { open: OpenMode; skewMs: number } {
  if (text === 'one-sided' || text === 'crossed') return { open: text, skewMs: 0 };
  const skew = /^skew:(.*)$/.exec(text);
  if (skew) return { open: 'skew', skewMs: parseDuration(skew[1] ?? '', '--open skew') };
  throw new UsageError(
    `--open: '${text}' is not one of one-sided, crossed, skew:D (B connects D after A, e.g. skew:2ms)`,
  );
}

/** The N points of a sweep from `fromMs` to `toMs` (both included), in equal steps, to the microsecond. */
export function sweepGrid(fromMs: number, toMs: number, points: number): number[] {
  if (points === 1) return [fromMs];
  return Array.from(
    { length: points },
    (_, index) => Math.round((fromMs + ((toMs - fromMs) * index) / (points - 1)) * 1000) / 1000,
  );
}

/** --sweep skew=A..B:N (A without a unit takes B's: skew=0..5ms:11). */
export function parseSweep(text: string): Sweep {
  const match = /^skew=([^:]+)\.\.([^:]+):(\d+)$/.exec(text.trim());
  if (!match)
    throw new UsageError(
      `--sweep: '${text}' is not skew=FROM..TO:POINTS (e.g. skew=0..5ms:11: 11 runs, B connecting 0 to 5 ms after A)`,
    );
  const [, fromText = '', toText = '', countText = ''] = match;
  const unit = /[a-z]+$/.exec(toText)?.[0] ?? '';
  const fromMs = parseDuration(/[a-z]$/.test(fromText) ? fromText : `${fromText}${unit}`, '--sweep');
  const toMs = parseDuration(toText, '--sweep');
  if (fromMs > toMs) throw new UsageError(`--sweep: ${fromText} is more than ${toText}`);
  const points = parseCount(countText, '--sweep points', 1, 1000);
  if (points > 1 && fromMs === toMs)
    throw new UsageError(`--sweep: ${points} points between ${fromText} and itself`);
  return { parameter: 'skew', valuesMs: sweepGrid(fromMs, toMs, points) };
}

/** Descriptors a process keeps for itself (node, the pool's threads, pipes, outputs) beside its pairs' sockets. */
export const DESCRIPTOR_RESERVE = 200;

/**
 * A held-link wave for `slots` pairs in flight per thread: a thread keeps two waves in flight at least
 * (the next fills what the current one frees), more of at most MAX_WAVE pairs for a long hold, all of
 * one size, so that they add up to the slots (rounded up by less than one pair a wave).
 */
export function waveSize(slots: number): number {
  return Math.ceil(slots / Math.max(2, Math.ceil(slots / MAX_WAVE)));
}

/** Pairs a thread has in flight at most with `slots`: over the held link, whole waves. */
function threadInFlight(slots: number, layout: PlanLayout): number {
  if (layout !== 'link') return slots;
  const wave = waveSize(slots);
  return Math.max(2, Math.ceil(slots / wave)) * wave;
}

/**
 * The processes a run needs: `given` (--processes) or 1, and for a hold of `atOnce` pairs open at once
 * as many as keep each process's share (its `workers` threads, each with its slots) within what its
 * open-files limit allows. A hold that `given` processes, or MAX_PROCESSES, cannot hold is refused
 * before the run.
 */
export function holdProcesses(
  atOnce: number,
  workers: number,
  layout: PlanLayout,
  given: number | undefined,
  openFilesLimit: number | undefined,
): number {
  let processes = given ?? 1;
  if (atOnce === 0 || openFilesLimit === undefined) return processes;
  const most = pairsPerProcess(openFilesLimit);
  const share = (count: number) => workers * threadInFlight(Math.ceil(atOnce / (workers * count)), layout);
  if (given === undefined) while (processes < MAX_PROCESSES && share(processes) > most) processes += 1;
  if (share(processes) <= most) return processes;
  const n = (value: number) => value.toLocaleString('en-US');
  throw new ExitError(
    `--hold: ${n(atOnce)} pairs open at once need ${n(2 * atOnce)} descriptors; one process may open ${n(openFilesLimit)} (RLIMIT_NOFILE), so it holds ${n(most)} pairs at most, and ${
      given === undefined ? `the most processes (${MAX_PROCESSES})` : `--processes ${given}`
    } with ${workers} worker${workers === 1 ? '' : 's'} each hold ${n(processes * workers * Math.floor(most / workers))} at most. Lower --pairs or --concurrency${given === undefined ? '' : ', or raise --processes'}`,
    EXIT.usage,
  );
}

/** Pairs one process can hold open at once under an open-files limit (two sockets each). */
export function pairsPerProcess(openFilesLimit: number): number {
  return Math.max(0, Math.floor((openFilesLimit - DESCRIPTOR_RESERVE) / 2));
}

export type ParsedStress = { help: true } | { help: false; options: StressOptions; plan: AddressPlan };

export interface ParseContext {
  /** Default worker count. */
  cores: number;
  /** Resolve the defaults for this mode instead (the fallback from sandbox to race). */
  mode?: Mode;
  /** Passed to the address plan (race mode: random, so runs on the shared loopback differ). */
  roundOffset?: number;
  /** This process's open-files limit (RLIMIT_NOFILE): a --hold that needs more is refused. */
  openFilesLimit?: number;
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

  const sweep = values.sweep === undefined ? undefined : parseSweep(values.sweep);
  let { open, skewMs } = values.open === undefined ? parseOpen('one-sided') : parseOpen(values.open);
  if (sweep) {
    if (values.open !== undefined && open !== 'skew')
      throw new UsageError(`--sweep skew=...: sweeps --open skew, not --open ${values.open}`);
    open = 'skew';
    skewMs = sweep.valuesMs[0] ?? 0;
  }
  const skewOnly = (flag: string) => {
    if (open !== 'skew') throw new UsageError(`${flag}: applies to --open skew:D only`);
  };
  if (values['early-syn'] !== undefined) skewOnly('--early-syn');
  if (values.delay !== undefined) skewOnly('--delay');
  const earlySyn =
    values['early-syn'] === undefined
      ? 'drop'
      : parseChoice(values['early-syn'], '--early-syn', EARLY_SYN_ACTIONS);
  const delayMs = values.delay === undefined ? DEFAULT_DELAY_MS : parseDuration(values.delay, '--delay');
  if (delayMs < 1 || delayMs > MAX_DELAY_MS)
    throw new UsageError(`--delay: ${values.delay} is out of range 1ms..${MAX_DELAY_MS / 1000}s`);
  const holdMs = values.hold === undefined ? 0 : parseDuration(values.hold, '--hold');
  if (values.hold !== undefined && holdMs <= 0) throw new UsageError('--hold: must be more than 0');
  if (values.keepalive !== undefined && holdMs === 0)
    throw new UsageError('--keepalive: applies to --hold D only');
  const keepaliveMs =
    values.keepalive === undefined ? DEFAULT_KEEPALIVE_MS : parseDuration(values.keepalive, '--keepalive');
  if (keepaliveMs < MIN_KEEPALIVE_MS)
    throw new UsageError(`--keepalive: ${values.keepalive} is less than ${MIN_KEEPALIVE_MS}ms`);
  const sandboxOnly = open !== 'one-sided' ? `--open ${values.open ?? open}` : holdMs > 0 ? '--hold' : '';
  if (mode === 'race' && sandboxOnly)
    throw new UsageError(
      `${sandboxOnly} needs the sandbox (--mode sandbox): race mode's two sides retry from two threads on the host loopback`,
    );
  if (sweep && durationMs !== undefined)
    throw new UsageError('--sweep: every point runs --pairs N (default 10,000), not --duration');
  if (values.log !== undefined && sweep)
    throw new UsageError(
      '--log: not with --sweep (every point numbers its pairs from 0); run the point alone',
    );

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

  const processesGiven =
    values.processes === undefined
      ? undefined
      : parseCount(values.processes, '--processes', 1, MAX_PROCESSES);
  if (processesGiven !== undefined && processesGiven > 1 && mode === 'race')
    throw new UsageError(
      '--processes: sandbox mode only (race mode retries on the host loopback, from two thread pools of one process)',
    );
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
  } else if (holdMs > 0 && pairs !== undefined) {
    // Held pairs stay in flight for the whole hold: all of them at once, unless asked otherwise.
    concurrency = pairs;
  } else {
    // Race mode: retrying connects of many pairs in one thread rarely cross; one pair per thread is fastest.
    // Skew: a wave's connects take time to issue, which blurs the skew: small waves.
    concurrency =
      mode === 'race'
        ? Math.floor(workers / 2)
        : (open === 'skew' ? SKEW_CONCURRENCY_PER_WORKER : DEFAULT_CONCURRENCY_PER_WORKER) *
          workers *
          (processesGiven ?? 1);
  }
  if (pairs !== undefined) concurrency = Math.min(concurrency, pairs);
  // Fewer pairs than threads: idle threads only cost start-up time.
  const threadsPerPair = mode === 'race' ? 2 : 1;
  if (pairs !== undefined && pairs * threadsPerPair < workers && values.workers === undefined)
    workers = Math.max(minWorkers, pairs * threadsPerPair);

  const rate = values.rate === undefined ? undefined : parseCount(values.rate, '--rate', 1, 10_000_000);
  if (rate !== undefined && open !== 'one-sided')
    throw new UsageError(
      `--rate: applies to --open one-sided only (--open ${open} starts pairs in waves, released together)`,
    );
  const payload = values.payload === undefined ? 64 : parseBytes(values.payload, '--payload', MAX_PAYLOAD);
  const close = values.close === undefined ? 'graceful' : parseChoice(values.close, '--close', CLOSE_MODES);
  // A simultaneous close waits on FIN timers (lib/stress/finCrossing.ts): the CPU is not what limits
  // those pairs, so JIT warm-up buys nothing, and its pairs would wait on the same timers.
  // Skewed pairs wait on the skew and the link's deliveries, held pairs on the hold: not on the CPU either.
  const warmup =
    mode === 'race'
      ? 0
      : values.warmup === undefined
        ? close === 'simultaneous' || open === 'skew' || holdMs > 0
          ? 0
          : DEFAULT_WARMUP
        : parseCount(values.warmup, '--warmup', 0, 1_000_000);
  if (close === 'simultaneous' && open !== 'one-sided')
    throw new UsageError(
      `--close simultaneous: not with --open ${open} (the FINs are held on lo, these pairs use the held link)`,
    );
  const sockets =
    values.sockets === undefined ? 'handle' : parseChoice(values.sockets, '--sockets', SOCKET_KINDS);
  const timeoutMs = values.timeout === undefined ? 10_000 : parseDuration(values.timeout, '--timeout');
  if (timeoutMs < 1) throw new UsageError('--timeout: must be 1ms at least');
  const longestSkew = Math.max(skewMs, ...(sweep?.valuesMs ?? []));
  if (open === 'skew' && longestSkew >= timeoutMs)
    throw new UsageError(
      `--open skew: B connects ${longestSkew} ms after A, not within --timeout ${timeoutMs} ms: raise --timeout`,
    );

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
  const report = values.report === undefined ? undefined : checkOutputPath(values.report, '--report');
  if (report !== undefined && (report === json || report === log))
    throw new UsageError(`--report and ${report === json ? '--json' : '--log'} name the same file`);
  const thresholds = (values.threshold ?? []).map(parseThreshold);
  const compare =
    values.compare === undefined
      ? undefined
      : { path: values.compare, result: readStressResult(values.compare, '--compare') };

  const layout = open === 'one-sided' ? 'loopback' : 'link';
  const processes = holdProcesses(
    holdMs > 0 ? (pairs === undefined ? concurrency : Math.min(concurrency, pairs)) : 0,
    workers,
    layout,
    processesGiven,
    context.openFilesLimit,
  );
  // A wave is what one worker connects at once; two per worker are in flight (more for a long hold).
  const wave = layout === 'link' ? waveSize(Math.ceil(concurrency / (workers * processes))) : 0;
  // A sweep's points follow each other on the plan (sweepPointPlan): the plan must hold them all.
  const planned =
    sweep && pairs !== undefined ? sweep.valuesMs.length * Math.ceil(pairs / wave) * wave : pairs;
  const plan = planPairs(planned, { ports, addresses, roundOffset: context.roundOffset, layout, wave });
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
      report,
      thresholds,
      compare,
      open,
      skewMs,
      earlySyn,
      delayMs,
      holdMs,
      keepaliveMs,
      processes,
      sweep,
    },
    plan,
  };
}
