/**
 * The engine inside an agent's worker thread. A task is this agent's side of a batch of consecutive
 * pairs of one link; every side of it starts at once (or at its due time with --rate): the
 * coordinator bounds the pairs in flight, so an agent never holds a side back, and the two agents of
 * a link can never wait on each other. Each finished side is written into the batch's flat records
 * (lib/agent/types.ts RECORD_FIELDS); the batch resolves when every side has finished.
 *
 * The agent's main thread steers through shared memory: a stop flag for the run and a cancel flag
 * per batch, checked before every start and by a sweep every 100 ms (which also enforces --timeout);
 * with --hold the sides count there the A sides held and the keepalives checked (AGENT_CONTROL).
 */
import { performance } from 'node:perf_hooks';
import { epochNow, Waker } from '../core/clock.ts';
import { cachedPatterns } from '../core/payloadPattern.ts';
import { HoldSchedule } from '../stress/holdSchedule.ts';
import { KEEPALIVE_BYTES } from '../stress/sandboxPair.ts';
import { PAIR_ERRORS } from '../stress/types.ts';
import { AgentSide, holdRounds, type SideConfig, type SideHold } from './agentSide.ts';
import { pairPorts } from './sidePlan.ts';
import {
  AGENT_CONTROL,
  CLOSE_CODES,
  RECORD_FIELDS,
  SIDE_OUTCOMES,
  type SideRunConfig,
  type SideTask,
  type SideTaskResult,
} from './types.ts';

interface Batch {
  task: SideTask;
  next: number;
  pending: number;
  records: number[];
  errors: string[];
  control: Int32Array;
  cancel: Int32Array;
  sideConfig: SideConfig;
  resolve: (result: SideTaskResult) => void;
}

const batches: Batch[] = [];
const inFlight = new Map<AgentSide, Batch>();
let sweepTimer: NodeJS.Timeout | undefined;
/** Wakes the pump when the next side of a --rate schedule is due. */
const waker = new Waker(() => pump());
/** --hold: this thread's held sides, one timer for all (as in a sandbox run's worker). */
let hold: SideHold | undefined;

const OUTCOME = {
  established: SIDE_OUTCOMES.indexOf('established'),
  failed: SIDE_OUTCOMES.indexOf('failed'),
  cancelled: SIDE_OUTCOMES.indexOf('cancelled'),
  notStarted: SIDE_OUTCOMES.indexOf('notStarted'),
};

function holdFor(config: SideRunConfig, control: Int32Array): SideHold | undefined {
  const { holdMs, keepaliveMs } = config;
  if (!holdMs || !keepaliveMs) return undefined;
  if (hold?.holdMs !== holdMs || hold.keepaliveMs !== keepaliveMs || hold.counters.buffer !== control.buffer)
    hold = {
      holdMs,
      keepaliveMs,
      rounds: holdRounds(holdMs, keepaliveMs),
      schedule: new HoldSchedule(holdMs, keepaliveMs),
      counters: control,
      heldSlot: AGENT_CONTROL.heldA,
      keepalivesSlot: AGENT_CONTROL.keepalives,
    };
  return hold;
}

/** Runs this agent's sides of one batch; resolves when every one has finished. */
export function runSides(task: SideTask): Promise<SideTaskResult> {
  return new Promise((resolve) => {
    const batch: Batch = {
      task,
      next: 0,
      pending: task.count,
      records: new Array<number>(task.count * RECORD_FIELDS).fill(0),
      errors: [],
      control: new Int32Array(task.control),
      cancel: new Int32Array(task.cancel),
      sideConfig: {
        payload: task.config.payload,
        close: task.config.close,
        // Keepalives go on past the payload: the patterns hold a period and a keepalive beyond it.
        patterns: cachedPatterns(Math.max(task.config.payload, KEEPALIVE_BYTES)),
        sockets: task.config.sockets,
        hold: undefined,
      },
      resolve,
    };
    batch.sideConfig.hold = holdFor(task.config, batch.control);
    batches.push(batch);
    sweepTimer ??= setInterval(sweep, 100);
    pump();
  });
}

function halted(batch: Batch): boolean {
  return Atomics.load(batch.control, AGENT_CONTROL.stop) !== 0 || Atomics.load(batch.cancel, 0) !== 0;
}

/** Starts every side that is due. */
function pump(): void {
  for (const batch of [...batches]) {
    const { task } = batch;
    while (batch.next < task.count) {
      if (halted(batch)) {
        notStarted(batch);
        break;
      }
      if (task.config.rate !== undefined) {
        const due = task.t0 + ((task.firstId + batch.next) * 1000) / task.config.rate;
        const wait = due - epochNow();
        if (wait > 0) {
          waker.in(wait);
          break;
        }
      }
      start(batch, batch.next);
      batch.next += 1;
    }
  }
}

function start(batch: Batch, offset: number): void {
  const { task } = batch;
  const [a, b] = pairPorts(task.config.ports, task.firstIndex + offset, task.portOffset);
  const [localPort, remotePort] = task.role === 'a' ? [a, b] : [b, a];
  const side = new AgentSide(
    task.firstId + offset,
    task.role,
    { host: task.local, port: localPort },
    { host: task.peer, port: remotePort },
    batch.sideConfig,
    finished,
  );
  inFlight.set(side, batch);
  side.start();
}

function errorIndex(batch: Batch, code: string | undefined): number {
  if (code === undefined) return -1;
  const known = batch.errors.indexOf(code);
  if (known >= 0) return known;
  batch.errors.push(code);
  return batch.errors.length - 1;
}

function finished(side: AgentSide): void {
  const batch = inFlight.get(side);
  if (!batch) return;
  inFlight.delete(side);
  const at = (side.id - batch.task.firstId) * RECORD_FIELDS;
  const records = batch.records;
  const started = side.startedAt > 0;
  records[at] = OUTCOME[side.outcome];
  records[at + 1] = side.outcome === 'established' ? -1 : errorIndex(batch, side.error ?? 'EUNKNOWN');
  records[at + 2] = side.attempts;
  records[at + 3] = Math.round(side.establishUs);
  records[at + 4] = started
    ? Math.round((performance.timeOrigin + side.startedAt - batch.task.t0) * 1000)
    : -1;
  records[at + 5] = started ? Math.round((side.finishedAt - side.startedAt) * 1000) : -1;
  records[at + 6] = side.bytesVerified;
  records[at + 7] = CLOSE_CODES.indexOf(side.closeOutcome ?? null);
  done(batch, 1);
}

/** The batch's sides not started yet never will be: recorded as not started. */
function notStarted(batch: Batch): void {
  const { count } = batch.task;
  for (let offset = batch.next; offset < count; offset += 1) {
    const at = offset * RECORD_FIELDS;
    batch.records[at] = OUTCOME.notStarted;
    batch.records[at + 1] = -1;
    batch.records[at + 3] = -1;
    batch.records[at + 4] = -1;
    batch.records[at + 5] = -1;
  }
  const skipped = count - batch.next;
  batch.next = count;
  done(batch, skipped);
}

function done(batch: Batch, sides: number): void {
  batch.pending -= sides;
  if (batch.pending > 0) return;
  batches.splice(batches.indexOf(batch), 1);
  if (batches.length === 0 && sweepTimer) {
    clearInterval(sweepTimer);
    sweepTimer = undefined;
  }
  batch.resolve({ records: batch.records, errors: batch.errors });
}

/** A side's time: --timeout, and a hold and the interval A waits after it for B's last keepalive. */
function timeLimit(config: SideRunConfig): number {
  return config.timeoutMs + (config.holdMs && config.keepaliveMs ? config.holdMs + config.keepaliveMs : 0);
}

/** Every 100 ms: a stop or an abandoned batch cancels what is in flight; a side past --timeout fails. */
function sweep(): void {
  const now = performance.now();
  for (const batch of [...batches]) if (halted(batch) && batch.next < batch.task.count) notStarted(batch);
  for (const [side, batch] of [...inFlight]) {
    if (halted(batch)) side.cancel();
    else if (side.startedAt > 0 && now - side.startedAt > timeLimit(batch.task.config))
      side.fail(PAIR_ERRORS.timeout);
  }
}
