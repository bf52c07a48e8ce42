import { describe, expect, it } from 'vitest';
import { buildPatterns, chunkMatches, PATTERN_PERIOD, patternOffset } from '../../lib/core/payloadPattern.ts';

describe('payload pattern', () => {
  it('differs per pair and direction, and checks chunks at any position', () => {
    const { aToB, bToA } = buildPatterns(1000);
    const offset = patternOffset(7);
    const sent = aToB.subarray(offset, offset + 1000);
    expect(chunkMatches(aToB, offset, 0, sent.subarray(0, 300), 300)).toBe(true);
    expect(chunkMatches(aToB, offset, 300, Buffer.from(sent.subarray(300)), 700)).toBe(true);
    expect(chunkMatches(aToB, patternOffset(8), 0, sent, 1000)).toBe(false);
    expect(chunkMatches(bToA, offset, 0, sent, 1000)).toBe(false);
    const altered = Buffer.from(sent);
    altered[999] = (altered[999] ?? 0) ^ 1;
    expect(chunkMatches(aToB, offset, 0, altered, 1000)).toBe(false);
    expect(patternOffset(PATTERN_PERIOD + 3)).toBe(3);
  });
});
