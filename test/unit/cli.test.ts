import { describe, expect, it } from 'vitest';
import {
  parseCount,
  parseDuration,
  parseFlags,
  parseHost,
  parseHostPort,
  parsePort,
} from '../../lib/core/cli.ts';
import { UsageError } from '../../lib/core/errors.ts';

describe('cli value parsers', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1.5s', 1500],
    ['250us', 0.25],
    ['7', 7000],
  ])('parseDuration(%s) = %d ms', (text, ms) => {
    expect(parseDuration(text, '--timeout')).toBe(ms);
  });

  it.each(['', 'soon', '-1s', '1d', '5 s'])('parseDuration rejects %j naming the flag', (text) => {
    expect(() => parseDuration(text, '--timeout')).toThrow(UsageError);
    expect(() => parseDuration(text, '--timeout')).toThrow(/^--timeout: invalid duration/);
  });

  it('parseCount accepts suffixes and enforces the range', () => {
    expect(parseCount('10k', '--pairs', 1, 1e7)).toBe(10_000);
    expect(parseCount('1M', '--pairs', 1, 1e7)).toBe(1_000_000);
    expect(parseCount('10_000', '--pairs', 1, 1e7)).toBe(10_000);
    expect(() => parseCount('0', '--pairs', 1, 10)).toThrow(/--pairs: 0 is out of range 1..10/);
    expect(() => parseCount('1.5', '--pairs', 1, 10)).toThrow(/not a whole number/);
    expect(() => parseCount('ten', '--pairs', 1, 10)).toThrow(/not a whole number/);
  });

  it('parsePort, parseHost and parseHostPort', () => {
    expect(parsePort('8000', 'PORT')).toBe(8000);
    expect(() => parsePort('0', 'PORT')).toThrow(/out of range/);
    expect(() => parsePort('65536', 'PORT')).toThrow(/out of range/);
    expect(() => parsePort('8000x', 'PORT')).toThrow(/not a port number/);
    expect(parseHost('[::1]', 'HOST')).toBe('::1');
    expect(parseHost('peer-1.example', 'HOST')).toBe('peer-1.example');
    expect(() => parseHost('bad host', 'HOST')).toThrow(/not a host name or IP address/);
    expect(parseHostPort('[::1]:9000', 'X')).toEqual({ host: '::1', port: 9000 });
    expect(parseHostPort('10.0.0.1:80', 'X')).toEqual({ host: '10.0.0.1', port: 80 });
    expect(() => parseHostPort('10.0.0.1', 'X')).toThrow(/not HOST:PORT/);
  });

  it('parseFlags turns parseArgs errors into one-line usage errors', () => {
    expect(() => parseFlags(['--nope'], { yes: { type: 'boolean' } })).toThrow(UsageError);
    try {
      parseFlags(['--nope'], { yes: { type: 'boolean' } });
    } catch (error) {
      expect((error as Error).message).not.toContain('\n');
      expect((error as Error).message).toContain("'--nope'");
    }
    expect(parseFlags(['--yes', 'a'], { yes: { type: 'boolean' } })).toMatchObject({
      values: { yes: true },
      positionals: ['a'],
    });
  });
});
