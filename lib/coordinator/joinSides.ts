/**
 * Joining the two sides of a batch's pairs: each agent sends its side records of the batch (flat,
 * lib/agent/types.ts RECORD_FIELDS per pair); the coordinator turns each into a SideHalf and
 * combines the two halves of every pair as race mode does (lib/stress/raceJoin.ts combineHalves). A
 * half that will never come (its agent was lost) is a failure with the code agent-lost. Pure.
 */
import { AGENT_LOST, CLOSE_CODES, RECORD_FIELDS, SIDE_OUTCOMES } from '../agent/types.ts';
import { combineHalves, type JoinedPair, type SideHalf } from '../stress/raceJoin.ts';
import type { CloseOutcome, Outcome } from '../stress/types.ts';

/** One agent's records of a batch, or the reason they will never come. */
export type BatchHalf = { records: number[]; errors: string[] } | { lost: string };

/** A pair neither of whose sides started: not started (a stop came first), not a record of its own. */
export type JoinOutcome = { notStarted: true } | (JoinedPair & { notStarted: false });

const LOST_HALF: SideHalf = {
  outcome: 'failed',
  error: AGENT_LOST,
  attempts: 0,
  bytesVerified: 0,
  closeOutcome: undefined,
  establishUs: -1,
  startedAt: 0,
  finishedAt: 0,
};

/** Side `index` of a batch half, with its times on the epoch (t0 is the run's start in ms). */
export function sideHalf(half: BatchHalf, index: number, t0: number): SideHalf & { started: boolean } {
  if ('lost' in half) return { ...LOST_HALF, started: false };
  const { records, errors } = half;
  const at = index * RECORD_FIELDS;
  const outcome = SIDE_OUTCOMES[records[at] as number] ?? 'failed';
  const startUs = records[at + 4] as number;
  const durationUs = records[at + 5] as number;
  // durationUs is -1 for a side that never started (startUs may be below 0: an agent's clock offset).
  const started = durationUs >= 0;
  const startedAt = started ? t0 + startUs / 1000 : 0;
  const errorIndex = records[at + 1] as number;
  return {
    // A side that never started is a cancelled half: the other side's fate decides the pair.
    outcome: (outcome === 'notStarted' ? 'cancelled' : outcome) as Outcome,
    error: errorIndex >= 0 ? errors[errorIndex] : undefined,
    attempts: records[at + 2] as number,
    bytesVerified: records[at + 6] as number,
    closeOutcome: (CLOSE_CODES[records[at + 7] as number] ?? undefined) as CloseOutcome | undefined,
    establishUs: records[at + 3] as number,
    startedAt,
    finishedAt: started ? startedAt + Math.max(0, durationUs) / 1000 : 0,
    started,
  };
}

/** The pair `index` of a batch from its two halves. */
export function joinPair(a: BatchHalf, b: BatchHalf, index: number, t0: number): JoinOutcome {
  const sideA = sideHalf(a, index, t0);
  const sideB = sideHalf(b, index, t0);
  const lost = 'lost' in a || 'lost' in b;
  if (!lost && !sideA.started && !sideB.started) return { notStarted: true };
  return { ...combineHalves(sideA, sideB), notStarted: false };
}
