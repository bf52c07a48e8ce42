/**
 * Compact statistics of many pairs: HDR histograms (hdr-histogram-js) and counters. A worker keeps
 * one PairStats per batch and returns it encoded (a few kilobytes, however many pairs); the main
 * thread merges them with mergeStats. Memory does not grow with the pair count.
 */
import * as hdr from 'hdr-histogram-js';
import type { EncodedStats } from './types.ts';

export function newHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, numberOfSignificantValueDigits: 3, autoResize: true });
}

function addCounts(target: Record<string, number>, source: Record<string, number>): void {
  for (const [key, count] of Object.entries(source)) target[key] = (target[key] ?? 0) + count;
}

export class PairStats {
  established = 0;
  failed = 0;
  cancelled = 0;
  /** Planned pairs that never started (a stop came first). */
  notStarted = 0;
  bytesVerified = 0;
  errors: Record<string, number> = {};
  retryErrors: Record<string, number> = {};
  closes: Record<string, number> = {};
  /** Time from a pair's start (its scheduled start with --rate) until both sides are established. */
  readonly establishUs = newHistogram();
  /** Time from a pair's start until both sockets are closed (payload and close included). */
  readonly pairUs = newHistogram();
  /** connect() attempts of side A and of side B (1 but with --early-syn rst, and in race mode). */
  readonly attempts: [hdr.Histogram, hdr.Histogram] = [newHistogram(), newHistogram()];
  /** --hold: keepalives that arrived intact, both sides counted. */
  keepalivesVerified = 0;

  recordEstablished(establishUs: number, pairUs: number, closeOutcome: string): void {
    this.established += 1;
    this.establishUs.recordValue(Math.max(1, Math.round(establishUs)));
    this.pairUs.recordValue(Math.max(1, Math.round(pairUs)));
    this.closes[closeOutcome] = (this.closes[closeOutcome] ?? 0) + 1;
  }

  recordFailed(code: string, count = 1): void {
    this.failed += count;
    this.errors[code] = (this.errors[code] ?? 0) + count;
  }

  recordCancelled(count = 1): void {
    this.cancelled += count;
  }

  recordNotStarted(count = 1): void {
    this.notStarted += count;
  }

  recordAttempts(attempts: number, side: 0 | 1): void {
    if (attempts > 0) this.attempts[side].recordValue(attempts);
  }

  recordRetryErrors(errors: Record<string, number>): void {
    addCounts(this.retryErrors, errors);
  }

  /** Connects that met `code` and were tried again. */
  recordRetries(code: string, count: number): void {
    this.retryErrors[code] = (this.retryErrors[code] ?? 0) + count;
  }

  get total(): number {
    return this.established + this.failed + this.cancelled + this.notStarted;
  }

  encode(): EncodedStats {
    return {
      established: this.established,
      failed: this.failed,
      cancelled: this.cancelled,
      notStarted: this.notStarted,
      bytesVerified: this.bytesVerified,
      errors: { ...this.errors },
      retryErrors: { ...this.retryErrors },
      closes: { ...this.closes },
      establishUs: hdr.encodeIntoCompressedBase64(this.establishUs),
      pairUs: hdr.encodeIntoCompressedBase64(this.pairUs),
      attempts: [
        hdr.encodeIntoCompressedBase64(this.attempts[0]),
        hdr.encodeIntoCompressedBase64(this.attempts[1]),
      ],
      keepalivesVerified: this.keepalivesVerified,
    };
  }

  /** Frees the histograms' memory (matters only for the WebAssembly flavour, harmless otherwise). */
  destroy(): void {
    this.establishUs.destroy();
    this.pairUs.destroy();
    this.attempts[0].destroy();
    this.attempts[1].destroy();
  }
}

function addEncoded(target: hdr.Histogram, encoded: string): void {
  const decoded = hdr.decodeFromCompressedBase64(encoded);
  target.add(decoded);
  decoded.destroy();
}

/** Adds encoded worker stats into `target` (usually the main thread's running total); returns it. */
export function mergeStats(target: PairStats, source: EncodedStats): PairStats {
  target.established += source.established;
  target.failed += source.failed;
  target.cancelled += source.cancelled;
  target.notStarted += source.notStarted;
  target.bytesVerified += source.bytesVerified;
  addCounts(target.errors, source.errors);
  addCounts(target.retryErrors, source.retryErrors);
  addCounts(target.closes, source.closes);
  addEncoded(target.establishUs, source.establishUs);
  addEncoded(target.pairUs, source.pairUs);
  addEncoded(target.attempts[0], source.attempts[0]);
  addEncoded(target.attempts[1], source.attempts[1]);
  target.keepalivesVerified += source.keepalivesVerified;
  return target;
}
