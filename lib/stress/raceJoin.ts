/**
 * Race mode runs the two sides of a pair in different threads; they meet here. Each batch gets one
 * SharedArrayBuffer with a slot per pair. A side writes its half, then bumps the slot's counter; the
 * side that bumps it second reads both halves and reports the pair (stats and log record), so every
 * pair is reported exactly once and no per-pair data travels back to the main thread.
 */

import type { CloseOutcome, Outcome, PairReport } from './types.ts';

const INTS = 10; // joinCount, joinedBy, then per side: outcome, attempts, bytes, closeOutcome
const FLOATS = 6; // per side: establishUs, startedAt (epoch ms), finishedAt (epoch ms)
const CODE_BYTES = 24; // per side: the error code, ASCII

const OUTCOMES: Outcome[] = ['established', 'failed', 'cancelled'];
const CLOSES = [undefined, 'fin', 'rst'] as const;

export interface SideHalf {
  outcome: Outcome;
  error: string | undefined;
  attempts: number;
  bytesVerified: number;
  closeOutcome: CloseOutcome | undefined;
  /** From this side's start (-1: never connected). */
  establishUs: number;
  /** Epoch milliseconds (performance.timeOrigin + now): comparable across threads. */
  startedAt: number;
  finishedAt: number;
}

/** A pair joined from its two sides' reports: a PairReport but for the id and endpoints the batch knows. */
export type JoinedPair = Omit<PairReport, 'id' | 'endpoints'>;

export function joinBufferSize(count: number): number {
  const ints = count * INTS * 4;
  const floatsAt = Math.ceil(ints / 8) * 8;
  return floatsAt + count * FLOATS * 8 + count * 2 * CODE_BYTES;
}

export class RaceJoin {
  private readonly ints: Int32Array;
  private readonly floats: Float64Array;
  private readonly codes: Uint8Array;

  constructor(buffer: SharedArrayBuffer, count: number) {
    const floatsAt = Math.ceil((count * INTS * 4) / 8) * 8;
    this.ints = new Int32Array(buffer, 0, count * INTS);
    this.floats = new Float64Array(buffer, floatsAt, count * FLOATS);
    this.codes = new Uint8Array(buffer, floatsAt + count * FLOATS * 8, count * 2 * CODE_BYTES);
  }

  /** Stores this side's half; returns true when the other half is already there (we report the pair). */
  put(index: number, side: 0 | 1, half: SideHalf): boolean {
    const i = index * INTS + 2 + side * 4;
    this.ints[i] = OUTCOMES.indexOf(half.outcome);
    this.ints[i + 1] = half.attempts;
    this.ints[i + 2] = half.bytesVerified;
    this.ints[i + 3] = CLOSES.indexOf(half.closeOutcome);
    const f = index * FLOATS + side * 3;
    this.floats[f] = half.establishUs;
    this.floats[f + 1] = half.startedAt;
    this.floats[f + 2] = half.finishedAt;
    const c = (index * 2 + side) * CODE_BYTES;
    const code = half.error ?? '';
    for (let k = 0; k < CODE_BYTES; k += 1) this.codes[c + k] = k < code.length ? code.charCodeAt(k) : 0;
    // Seq-cst: the plain writes above are visible to the side that sees the count reach 2.
    const before = Atomics.add(this.ints, index * INTS, 1);
    if (before === 1) Atomics.store(this.ints, index * INTS + 1, side + 1);
    return before === 1;
  }

  /** How many halves arrived (0..2) and which side reported (0 none, 1 A, 2 B). */
  state(index: number): { halves: number; reportedBy: 0 | 1 | 2 } {
    return {
      halves: Atomics.load(this.ints, index * INTS),
      reportedBy: Atomics.load(this.ints, index * INTS + 1) as 0 | 1 | 2,
    };
  }

  private half(index: number, side: 0 | 1): SideHalf {
    const i = index * INTS + 2 + side * 4;
    const f = index * FLOATS + side * 3;
    const c = (index * 2 + side) * CODE_BYTES;
    let error = '';
    for (let k = 0; k < CODE_BYTES && this.codes[c + k] !== 0; k += 1)
      error += String.fromCharCode(this.codes[c + k] ?? 0);
    return {
      outcome: OUTCOMES[this.ints[i] ?? 1] ?? 'failed',
      error: error || undefined,
      attempts: this.ints[i + 1] ?? 0,
      bytesVerified: this.ints[i + 2] ?? 0,
      closeOutcome: CLOSES[this.ints[i + 3] ?? 0],
      establishUs: this.floats[f] ?? -1,
      startedAt: this.floats[f + 1] ?? 0,
      finishedAt: this.floats[f + 2] ?? 0,
    };
  }

  /** Both halves combined into the pair's result (call once both are in). */
  joined(index: number): JoinedPair {
    return combineHalves(this.half(index, 0), this.half(index, 1));
  }
}

/** Established only if both sides are; a failure beats a cancellation; times relative to the earlier start. */
export function combineHalves(a: SideHalf, b: SideHalf): JoinedPair {
  const started = [a.startedAt, b.startedAt].filter((t) => t > 0);
  const startedAt = started.length ? Math.min(...started) : 0;
  const relative = (half: SideHalf) =>
    half.establishUs < 0 ? -1 : (half.startedAt - startedAt) * 1000 + half.establishUs;
  const failed = [a, b].find((half) => half.outcome === 'failed');
  const outcome: Outcome =
    a.outcome === 'established' && b.outcome === 'established'
      ? 'established'
      : failed
        ? 'failed'
        : 'cancelled';
  return {
    outcome,
    error: outcome === 'established' ? undefined : (failed?.error ?? a.error ?? b.error),
    attempts: [a.attempts, b.attempts],
    establishUs: [relative(a), relative(b)],
    bytesVerified: a.bytesVerified + b.bytesVerified,
    // B observes the reset; for FIN both had to see EOF to be established.
    closeOutcome: outcome === 'established' ? b.closeOutcome : undefined,
    startedAt,
    finishedAt: Math.max(a.finishedAt, b.finishedAt),
  };
}
