/** peer.ts --max-line (lib/peer/options.ts): a byte count, default 4 MiB, refused outside 1..256 MiB. */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../lib/core/errors.ts';
import { MAX_LINE_CAP, PEER_EXIT, PEER_HELP, parsePeerArgs } from '../../lib/peer/options.ts';

const args = ['127.0.0.1', '8001'];

describe('peer.ts --max-line', () => {
  it('defaults to 4 MiB and takes plain and suffixed byte counts', () => {
    expect(parsePeerArgs(args).maxLineBytes).toBe(4 * 1024 * 1024);
    expect(parsePeerArgs([...args, '--max-line', '512']).maxLineBytes).toBe(512);
    expect(parsePeerArgs([...args, '--max-line', '64KiB']).maxLineBytes).toBe(65_536);
    expect(parsePeerArgs([...args, '--max-line', '256MiB']).maxLineBytes).toBe(MAX_LINE_CAP);
  });

  it.each([
    ['0', /--max-line must be at least 1 byte/],
    ['257MiB', /--max-line: 269484032 bytes is larger than the maximum 268435456/],
    ['lots', /--max-line: 'lots' is not a byte count/],
  ])('refuses %s with a usage error naming it', (value, message) => {
    expect(() => parsePeerArgs([...args, '--max-line', value])).toThrow(UsageError);
    expect(() => parsePeerArgs([...args, '--max-line', value])).toThrow(message);
  });

  it('--help documents the option and its exit code', () => {
    expect(PEER_EXIT.lineTooLong).toBe(7);
    expect(PEER_HELP).toContain('--max-line BYTES');
    expect(PEER_HELP).toMatch(/7 a line longer than --max-line/);
    expect(PEER_HELP).toMatch(/130 interrupted \(SIGINT, SIGTERM, SIGHUP\)/);
  });
});
