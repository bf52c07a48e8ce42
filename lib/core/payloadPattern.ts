/**
 * The deterministic payload of a pair. Side A sends bytes (id + k) mod 251, side B sends
 * 250 - ((id + k) mod 251), k = 0..payload-1: every pair and direction sends a different stream,
 * so a byte that arrives at the wrong socket, late, twice or altered fails the check.
 */
export const PATTERN_PERIOD = 251;

export interface Patterns {
  /** What A sends (B checks), long enough for any pair's offset. */
  aToB: Buffer;
  bToA: Buffer;
}

/** The two streams for a given payload size; each pair reads them at offset id mod 251. */
export function buildPatterns(payload: number): Patterns {
  const aToB = Buffer.allocUnsafe(payload + PATTERN_PERIOD);
  const bToA = Buffer.allocUnsafe(payload + PATTERN_PERIOD);
  for (let k = 0; k < aToB.length; k += 1) {
    aToB[k] = k % PATTERN_PERIOD;
    bToA[k] = PATTERN_PERIOD - 1 - (k % PATTERN_PERIOD);
  }
  return { aToB, bToA };
}

let cached: { length: number; patterns: Patterns } | undefined;

/** buildPatterns, kept for the last length asked: a thread's batches mostly share one. */
export function cachedPatterns(length: number): Patterns {
  if (cached?.length !== length) cached = { length, patterns: buildPatterns(length) };
  return cached.patterns;
}

export function patternOffset(id: number): number {
  return id % PATTERN_PERIOD;
}

/** Does `chunk[0..length)` equal the stream at position `received` for this pair? No allocation. */
export function chunkMatches(
  pattern: Buffer,
  offset: number,
  received: number,
  chunk: Buffer,
  length: number,
): boolean {
  const start = offset + received;
  return pattern.compare(chunk, 0, length, start, start + length) === 0;
}
