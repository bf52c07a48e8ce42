/**
 * The vocabulary of a stress run, shared by the option parser, the main thread, the worker threads
 * and the reports. Leaf module: types and constant tables only.
 */
import type { Endpoint, PortRange } from '../core/types.ts';
import type { StateEdges } from '../trace/types.ts';

/** sandbox: a private network namespace whose nft rule drops early RSTs; race: the host loopback. */
export const MODES = ['sandbox', 'race'] as const;
export type Mode = (typeof MODES)[number];
/** Where a run's pairs ran: a mode of stress.ts's own, or across agents: in a NAT lab, or on other hosts (docs/distributed.md). */
export type RunMode = Mode | 'lab' | 'agents';

/** The close a run asks for (--close); what the kernel then showed is trace's CloseKind. */
export const CLOSE_MODES = ['graceful', 'reset', 'simultaneous'] as const;
export type CloseMode = (typeof CLOSE_MODES)[number];

/** handle: bare libuv TCP handles (lib/core/rawTcp.ts, fast); net: net.Socket. */
export const SOCKET_KINDS = ['handle', 'net'] as const;
export type SocketKind = (typeof SOCKET_KINDS)[number];

/** What became of a pair that started. A planned pair that never started is counted, not logged one by one (NotStartedRecord). */
export type Outcome = 'established' | 'failed' | 'cancelled';

/** Consecutive pair ids, first and last included. */
export type IdRange = [first: number, last: number];

/** How an established pair closed: fin (the EOFs asked for were seen) or rst (the peer saw the reset). */
export type CloseOutcome = 'fin' | 'rst';

/** Error codes of ours (the others are the kernel's errno names). */
export const PAIR_ERRORS = {
  timeout: 'EPAIRTIMEOUT',
  payload: 'EPAYLOAD',
  close: 'ECLOSE',
  cancelled: 'ECANCELED',
  workerCrash: 'EWORKERCRASH',
  /** --hold: a keepalive did not arrive in time, or arrived altered. */
  keepalive: 'EKEEPALIVE',
} as const;

export interface StressOptions {
  /** Pairs to run; undefined with --duration alone (then the plan's capacity bounds the run). */
  pairs: number | undefined;
  durationMs: number | undefined;
  /** Pairs in flight over all workers. */
  concurrency: number;
  /** Open loop: pairs started per second. */
  rate: number | undefined;
  workers: number;
  payload: number;
  close: CloseMode;
  /** Sandbox mode: throwaway pairs per worker before the clock starts (0 in race mode). */
  warmup: number;
  /** Sandbox mode: bare libuv TCP handles (fast) or net.Socket. Race mode always uses net.Socket. */
  sockets: SocketKind;
  timeoutMs: number;
  mode: Mode;
  /** False when the mode is the default (sandbox, falling back to race). */
  modeExplicit: boolean;
  json: string | undefined;
  log: string | undefined;
  minSuccess: number;
  ports: PortRange;
  addresses: number;
  quiet: boolean;
  /** Record every pair's TCP states (kernel tracepoint) and classify its open and close. */
  trace: boolean;
  /** How the SYNs meet (--open). */
  open: OpenMode;
  /**
   * Sandbox mode: processes that run the pairs in the namespace, each with `workers` threads (1, or
   * more with --processes or a --hold one process cannot hold: lib/stress/processPool.ts).
   */
  processes: number;
  /** --open skew:D: B connects this long after A (0 otherwise). */
  skewMs: number;
  /** skew: what meets the early SYN (--early-syn). */
  earlySyn: EarlySyn;
  /** skew: the held link delivers what was sent every this long (--delay). */
  delayMs: number;
  /** Each established pair stays open this long before it closes (--hold; 0: no hold). */
  holdMs: number;
  /** --hold: each side sends a small checked payload this often (--keepalive). */
  keepaliveMs: number;
  /** --sweep: the points to run, one run each. */
  sweep: Sweep | undefined;
  /** --report FILE.html: the self-contained HTML report. */
  report: string | undefined;
  /** --threshold, in the order given (lib/stress/thresholds.ts). */
  thresholds: Threshold[];
  /** --compare OLD.json: a previous run's result, read and checked before the run. */
  compare: { path: string; result: StressResult } | undefined;
}

export const THRESHOLD_OPERATORS = ['<', '<=', '>', '>=', '=='] as const;
export type ThresholdOperator = (typeof THRESHOLD_OPERATORS)[number];

/** One --threshold: a metric of the result, an operator and a limit in the metric's unit. */
export interface Threshold {
  /** As given, e.g. "establish.p99<5ms". */
  text: string;
  /** One of THRESHOLD_METRICS' names, e.g. "establish.p99". */
  metric: string;
  op: ThresholdOperator;
  /** In the metric's unit (ms, %, pairs/s, a count). */
  limit: number;
}

/** A threshold checked against the run: its figure and whether it held. */
export interface ThresholdResult extends Threshold {
  unit: string;
  /** The run's figure, in the metric's unit; null when the run has none (no pair established, say). */
  actual: number | null;
  pass: boolean;
}

/** One figure of two runs side by side (--compare). */
export interface FigureDelta {
  /** "establish p99", "throughput", ... */
  figure: string;
  unit: string;
  old: number | null;
  new: number | null;
  /** new - old; null when either is missing. */
  delta: number | null;
  /** delta / old in percent; null when old is 0 or missing. */
  deltaPct: number | null;
  /** Which way is better for this figure; "same" for a delta of 0, null when there is no delta. */
  change: 'better' | 'worse' | 'same' | null;
}

/** This run beside a previous one (--compare OLD.json). */
export interface Comparison {
  /** The path of OLD.json, as given. */
  against: string;
  figures: FigureDelta[];
  /** The previous run's plot data (when its JSON has it): both latency curves in one plot. */
  baseline: Pick<StressResult, 'establishMs' | 'pairMs' | 'distributions' | 'mode' | 'pairs' | 'pairsPerSec'>;
}

/** --sweep skew=A..B:N: N runs, B's skew from A to B in equal steps. */
export interface Sweep {
  parameter: 'skew';
  /** The points, in milliseconds. */
  valuesMs: number[];
}

/**
 * How a pair's SYNs meet. one-sided: A's SYN first, its answer (a RST) dropped, B's SYN then meets A
 * in SYN_SENT (sandbox lo; race mode's threads may cross by chance). crossed: both SYNs held on the
 * held link and released together, so they cross. skew: B connects a fixed time after A over the held
 * link, which delivers what was sent every --delay.
 */
export const OPEN_MODES = ['one-sided', 'crossed', 'skew'] as const;
export type OpenMode = (typeof OPEN_MODES)[number];

/** What meets a SYN that arrives before its peer connected: dropped (a NAT) or answered with RST (a plain host). */
export const EARLY_SYN_ACTIONS = ['drop', 'rst'] as const;
export type EarlySyn = (typeof EARLY_SYN_ACTIONS)[number];

/** loopback: pairs on 127/8 over lo. link: waves of pairs on the held link's address pairs (lib/core/heldLink.ts). */
export type PlanLayout = 'loopback' | 'link';

/** Which local endpoints the pairs use (lib/stress/planPairs.ts). */
export interface AddressPlan {
  ports: PortRange;
  portCount: number;
  /** Address pairs in use: a round uses one pair on every port. */
  rounds: number;
  /** loopback: the first address pair; link: the first wave slot (see planPairs). */
  roundOffset: number;
  /** Pairs the plan holds without reusing an endpoint. */
  capacity: number;
  layout: PlanLayout;
  /** link: pairs per wave (consecutive ids on one address pair, released together); 0 for loopback. */
  wave: number;
}

export interface PairEndpoints {
  a: Endpoint;
  b: Endpoint;
}

/** Plain, structured-clone friendly statistics: what crosses from a worker to the main thread. */
export interface EncodedStats {
  established: number;
  failed: number;
  cancelled: number;
  notStarted: number;
  bytesVerified: number;
  /** Failure reason of each failed pair, by code. */
  errors: Record<string, number>;
  /** Errors seen and retried while dialing (race mode), by code. */
  retryErrors: Record<string, number>;
  /** How established pairs closed, by CloseOutcome. */
  closes: Record<string, number>;
  /** Base64 compressed HDR histograms (hdr-histogram-js encoding). */
  establishUs: string;
  pairUs: string;
  /** Side A's and side B's. */
  attempts: [string, string];
  keepalivesVerified: number;
}

/** Int32 slots of the control buffer shared by the main thread and all workers. */
export const CONTROL = {
  stop: 0,
  established: 1,
  failed: 2,
  cancelled: 3,
  /** Pairs reported so far, for the test crash hook. */
  reported: 4,
  notStarted: 5,
  /** Non-zero once an append to the pair log failed: nobody appends any more (no torn lines after it). */
  logFailed: 6,
  /** --hold: pairs open now (established, not closed yet), and the most there were at once. */
  open: 7,
  peakOpen: 8,
  length: 9,
} as const;

/** What every batch of a run tells its worker. */
export interface RunConfig {
  mode: Mode;
  /** Race mode: which side this pool runs (0 = A, 1 = B). */
  side: 0 | 1;
  payload: number;
  close: CloseMode;
  /** Sandbox mode: bare TCP handles or net.Socket. */
  sockets: SocketKind;
  timeoutMs: number;
  /** Pairs in flight per thread. */
  slots: number;
  /** Open loop: pair N is due at t0 + N / rate seconds. */
  rate: number | undefined;
  /** Epoch milliseconds of the run's start. */
  t0: number;
  plan: AddressPlan;
  /** The pair log, opened by the main thread with O_APPEND (threads share descriptors); -1: no log. */
  logFd: number;
  /** Throwaway warm-up pairs: no test crash hook. */
  warmup?: boolean;
  /** How the SYNs meet; skew, early SYN and delay as in StressOptions. */
  open: OpenMode;
  skewMs: number;
  earlySyn: EarlySyn;
  delayMs: number;
  /** --hold and --keepalive (0: no hold). */
  holdMs: number;
  keepaliveMs: number;
}

/** A Piscina task: a batch of consecutive pair ids. */
export interface BatchTask {
  firstId: number;
  count: number;
  config: RunConfig;
  control: SharedArrayBuffer;
  /** Race mode: where the two sides of the batch's pairs meet. */
  join?: SharedArrayBuffer;
}

/** What runs a run's batches: a Piscina pool of threads, or several stress processes (lib/stress/processPool.ts). */
/** A warm-up task: the thread answers with its threadId once its module (and the tsx loader) is loaded. */
export interface WarmupTask {
  warmup: true;
}

export interface BatchPool {
  /** A batch, or a warm-up: resolves once a thread's code is loaded, with its threadId. */
  run(task: BatchTask | WarmupTask): Promise<BatchResult | number>;
  /** A worker (or a stress process) died between batches. */
  on(event: 'error', listener: (error: unknown) => void): unknown;
  destroy(): Promise<void>;
}

/** A batch as it crosses to a stress process: its control buffer is that process's own. */
export type ProcessTask = Omit<BatchTask, 'control' | 'join'> | WarmupTask;

/** Parent to stress process (IPC). */
export type ToStressProcess =
  | { type: 'run'; id: number; task: ProcessTask }
  /** The parent's CONTROL.stop and CONTROL.logFailed, whenever either changes. */
  | { type: 'control'; stop: number; logFailed: number };

/** Stress process to parent (IPC). */
export type FromStressProcess =
  | { type: 'ready' }
  /** Its CONTROL counters (every slot), resident set now and at its peak; before every result too. */
  | { type: 'counts'; counts: number[]; rssBytes: number; maxRssBytes: number }
  | { type: 'result'; id: number; result: BatchResult | number }
  | { type: 'failed'; id: number; error: string }
  /** A worker thread of it died between batches. */
  | { type: 'workerDied'; error: string };

export interface BatchResult {
  stats: EncodedStats;
  /** Pairs of the batch that never started (a stop came first). */
  notStarted: IdRange[];
  /** The batch's log records could not be appended: why ("ENOSPC: no space left on device"). */
  logError: string | undefined;
  /** Records of the batch missing from the log (its append failed, or an earlier one had). */
  unlogged: number;
}

/** What a finished pair reports: the log record and the statistics are built from this. */
export interface PairReport {
  id: number;
  endpoints: PairEndpoints;
  outcome: Outcome;
  /** Why it failed or was cancelled; undefined when established. */
  error: string | undefined;
  attempts: [number, number];
  /** Per side, from the pair's start to its 'connect' (-1: never). */
  establishUs: [number, number];
  bytesVerified: number;
  /** undefined if the pair never got that far. */
  closeOutcome: CloseOutcome | undefined;
  /** performance.now() of the start and the end. */
  startedAt: number;
  finishedAt: number;
}

/** One line of the NDJSON pair log (--log) for a pair that started. */
export interface PairLogRecord {
  id: number;
  /** "host:port" of side A and side B. */
  a: string;
  b: string;
  outcome: Outcome;
  /** Failure or cancellation code; null when established. */
  error: string | null;
  /** connect() attempts of side A and side B. */
  attempts: [number, number];
  /** Per side: microseconds from the pair's start to that side's 'connect' (null: never connected). */
  establishUs: [number | null, number | null];
  bytesVerified: number;
  /** The close that was asked for, and what was seen. */
  close: CloseMode;
  closeOutcome: CloseOutcome | null;
  /** Microseconds between the scheduled start (--rate) and the real one; 0 without --rate. */
  startLagUs: number;
  /** Microseconds from the start until both sockets closed (null if it never started). */
  pairUs: number | null;
}

/** The pair log's last line when pairs never started (a stop came first): all of them in one record. */
export interface NotStartedRecord {
  outcome: 'notStarted';
  count: number;
  /** The ids, as ranges of consecutive ids. */
  ids: IdRange[];
}

export interface Percentiles {
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** [percentile (0..100), value]: one point of an HDR percentile plot. */
export type PercentilePoint = [percentile: number, value: number];
/** [lowest value, highest value, count]: one bar of a histogram. */
export type AttemptsBin = [low: number, high: number, count: number];

/** The merged histograms as the report's plots need them (lib/stress/distributions.ts): bounded in size. */
export interface Distributions {
  /** Establish latency (ms) at log-spaced percentiles, then the maximum at 100. */
  establishMs: PercentilePoint[];
  /** Whole-pair latency (ms), the same way. */
  pairMs: PercentilePoint[];
  /** Sides per number of connect() attempts. */
  attempts: AttemptsBin[];
}

/** [ms since the clock started, established, failed, cancelled so far]. */
export type TimelinePoint = [ms: number, established: number, failed: number, cancelled: number];

/** The run's progress sampled over time, at most a few hundred points (lib/stress/timeline.ts). */
export interface Timeline {
  /** Time between points at the end of the run (it doubles each time the points are thinned). */
  intervalMs: number;
  /** Cumulative counts in time order: the first at the start of the clock, the last at the end of the run. */
  points: TimelinePoint[];
}

/** The run's facts that the statistics do not hold (aggregateResult adds the statistics). */
export interface RunFacts {
  mode: RunMode;
  /** Why this mode: asked for, the default, or the fallback and its reason. */
  modeReason: string;
  /** Worker threads of the run (of all its processes). */
  workers: number;
  /** A local run spread over several processes (lib/stress/processPool.ts): how many; absent otherwise. */
  processes?: number;
  concurrency: number;
  /** handle: bare libuv TCP handles; net: net.Socket (always in race mode). */
  sockets: SocketKind;
  /** Set only when bare handles were asked for and net.Socket was used: why (their self-test failed, say). */
  socketsReason?: string;
  /** Throwaway pairs each worker ran before the clock started (not counted anywhere else). */
  warmupPairsPerWorker: number;
  payloadBytes: number;
  close: CloseMode;
  /** Open-loop rate (pairs/s), undefined for a closed loop. */
  rate: number | undefined;
  timeoutMs: number;
  planned: number;
  /** From the first pair's start to the last pair's end. */
  durationMs: number;
  workerCrashes: number;
  interrupted: boolean;
  /** An output that failed during the run (the run then stopped starting pairs). */
  outputError?: OutputError;
  /** The ids of the pairs that never started (sorted, merged); [] when all started. */
  notStartedIds?: IdRange[];
  /** Peak resident set of the process that ran the pool (its worker threads included), in bytes. */
  peakRssBytes: number;
  /** The NDJSON pair log, if written. */
  log: string | undefined;
  /** Progress sampled over the run (absent when the run never started its clock). */
  timeline?: Timeline;
  /** How the SYNs met, as asked for. */
  open: OpenReport;
  /** --hold: what the run measured of it. */
  hold?: HoldFacts;
}

/** The open mode of a run, with its timing for skew and the pairs released together (link). */
export interface OpenReport {
  mode: OpenMode;
  /** skew: B connected this long after A. */
  skewMs?: number;
  /** skew: what met the early SYN. */
  earlySyn?: EarlySyn;
  /** skew: the link's delivery interval. */
  delayMs?: number;
  /** crossed, skew: pairs per wave (one worker connects them at once on one held-link address pair). */
  pairsPerWave?: number;
}

/** --hold, as the process that ran the pool saw it (the figures of several processes add up). */
export interface HoldFacts {
  holdMs: number;
  keepaliveMs: number;
  /** The most pairs open at once (established, not yet closed). */
  peakOpenPairs: number;
  /** Resident set when the first pair started, and its peak sampled while pairs were held (every 100 ms). */
  rssAtStartBytes: number;
  peakRssBytes: number;
}

/** --hold in the result: HoldFacts, keepalives checked, and resident memory per held pair. */
export interface HoldReport extends HoldFacts {
  keepalivesVerified: number;
  /** (peakRssBytes - rssAtStartBytes) / peakOpenPairs: this process's own memory per held pair (kernel socket memory is not in it); null with no pair open. */
  rssPerHeldPairBytes: number | null;
}

/** connect() attempts of one side. */
export type AttemptStats = Omit<Percentiles, 'p999'>;

/** An output file that could not be written: which option, the path, and why. */
export interface OutputError {
  /** "--log" or "--json". */
  option: string;
  path: string;
  /** "ENOSPC: no space left on device". */
  error: string;
  /** Pair records that are not in the log because of it (--log). */
  unlogged?: number;
}

/** Planned = established + failed + cancelled + notStarted, always. */
export interface PairCounts {
  planned: number;
  established: number;
  failed: number;
  cancelled: number;
  /** Planned but never started (a stop or a failed output came first): no record each in the log. */
  notStarted: number;
}

/** The summary of a run: what --json writes and printResult prints. */
export interface StressResult
  extends Omit<RunFacts, 'rate' | 'planned' | 'log' | 'outputError' | 'notStartedIds' | 'timeline' | 'hold'> {
  /** Open-loop rate (pairs/s) or null for a closed loop. */
  rate: number | null;
  pairs: PairCounts;
  /** The ids counted in pairs.notStarted, as ranges of consecutive ids (the log's notStarted record holds the same). */
  notStartedIds: IdRange[];
  /** established / planned, in percent. */
  successPct: number;
  /** Established pairs per second of durationMs. */
  pairsPerSec: number;
  /** Start (scheduled start with --rate) to both sides connected, established pairs only; null if none. */
  establishMs: Percentiles | null;
  /** Start to both sockets closed, payload and close included. */
  pairMs: Percentiles | null;
  /** connect() attempts per side, both sides together (1 in sandbox mode but with --early-syn rst). */
  attempts: AttemptStats | null;
  /** The same for side A and for side B. */
  attemptsBySide: [AttemptStats | null, AttemptStats | null];
  /** Why pairs failed, by code. */
  errors: Record<string, number>;
  /** Errors retried while dialing (race mode), by code. */
  retryErrors: Record<string, number>;
  bytesVerified: number;
  /** How the established pairs closed, by CloseOutcome. */
  closeOutcomes: Record<string, number>;
  log: string | null;
  /** Outputs that failed (during the run or at its end); absent when all were written. */
  outputErrors?: OutputError[];
  /** --hold: peak of pairs open at once, keepalives, memory per held pair. */
  hold?: HoldReport;
  /** --trace: pairs per open kind and sides per close kind, as the kernel showed them, and the source. */
  openKinds?: Record<string, number>;
  closeKinds?: Record<string, number>;
  trace?: { source: string; reason?: string; sampleIntervalMs?: number; lostEvents: number };
  /** --threshold: each with its figure and pass or fail (any fail: exit 99). */
  thresholds?: ThresholdResult[];
  /** --compare: this run beside the previous one. */
  comparison?: Comparison;
  /** The latency curves and attempts histogram the report plots. */
  distributions?: Distributions;
  /** Progress over the run: pairs/s and failures over time in the report. */
  timeline?: Timeline;
  /** --trace: the state diagram of the classified sides (the sides closeKinds counts, but those not seen). */
  stateEdges?: StateEdges;
}

/**
 * A stress run described in code (runStressPlan, the `simopen/stress` API). Each field is the
 * stress.ts flag of the same name (see `stress.ts --help`), with durations in milliseconds and bytes
 * as numbers; what is left out takes the flag's default.
 */
export interface StressPlan {
  pairs?: number;
  durationMs?: number;
  concurrency?: number;
  rate?: number;
  workers?: number;
  payload?: number;
  close?: CloseMode;
  timeoutMs?: number;
  /** Default: sandbox, falling back to race mode when no sandbox can be made (as stress.ts does). */
  mode?: Mode;
  /** Write one NDJSON record per pair that started (and one of those that never did) to this file. */
  log?: string;
  /** Write the result as JSON to this file too. */
  json?: string;
  /** Record every pair's TCP states (kernel tracepoint) and classify its open and close (stress --trace). */
  trace?: boolean;
  /** Write the self-contained HTML report to this file too. */
  report?: string;
  /** Pass/fail criteria (stress.ts --threshold), e.g. 'establish.p99<5ms'; the result lists each. */
  thresholds?: string[];
  /** A previous run's JSON to put beside this one (the result's comparison). */
  compare?: string;
  ports?: PortRange;
  addresses?: number;
  warmup?: number;
  sockets?: SocketKind;
  /** How the SYNs meet (--open): 'skew' takes skewMs (default 0). */
  open?: OpenMode;
  skewMs?: number;
  earlySyn?: EarlySyn;
  delayMs?: number;
  /** Keep each established pair open this long (--hold), with a keepalive every keepaliveMs. */
  holdMs?: number;
  keepaliveMs?: number;
  /** Stress processes in the namespace (--processes); a hold one process cannot hold gets them by itself. */
  processes?: number;
  /** Progress on stderr (default false, unlike stress.ts). */
  progress?: boolean;
  /** Aborting it stops the run: pairs in flight are cancelled and the partial result is returned. */
  signal?: AbortSignal;
}

/** One point of the table. */
export interface SweepRow {
  skewMs: number;
  planned: number;
  established: number;
  failed: number;
  cancelled: number;
  notStarted: number;
  successPct: number;
  /** --trace: pairs per open kind (crossed, one-sided, ...); null without --trace. */
  openKinds: Record<string, number> | null;
  attemptsA: AttemptStats | null;
  attemptsB: AttemptStats | null;
  establishP50Ms: number | null;
  establishP99Ms: number | null;
}

/** What --json holds for a sweep: the table's rows and every point's whole result. */
export interface SweepResult {
  sweep: 'skew';
  earlySyn: EarlySyn;
  delayMs: number;
  interrupted: boolean;
  rows: SweepRow[];
  results: StressResult[];
}
