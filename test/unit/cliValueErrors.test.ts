/**
 * The shared option parsers say what is wrong with a value: a negative number (which parseArgs calls
 * "ambiguous"), a missing value, a duration no timer can hold.
 */
import { describe, expect, it } from 'vitest';
import {
  hasFlag,
  MAX_TIMER_MS,
  parseCount,
  parseDuration,
  parseFlags,
  takeOwnFlags,
} from '../../lib/core/cli.ts';
import { UsageError } from '../../lib/core/errors.ts';
import { parseStressOptions } from '../../lib/stress/options.ts';

const spec = {
  pairs: { type: 'string' },
  quiet: { type: 'boolean' },
  name: { type: 'string', short: 'n' },
} as const;

describe('parseFlags with values that start with a dash', () => {
  it('hands a negative number to the option, so its value parser can say what is wrong', () => {
    expect(parseFlags(['--pairs', '-5'], spec).values.pairs).toBe('-5');
    expect(parseFlags(['-n', '-0.5'], spec).values.name).toBe('-0.5');
    expect(() => parseCount('-5', '--pairs', 1, 1e9)).toThrow(/^--pairs: -5 is out of range 1\.\.1000000000/);
  });

  it('says a value is missing when an option follows', () => {
    expect(() => parseFlags(['--pairs', '--quiet'], spec)).toThrow(UsageError);
    expect(() => parseFlags(['--pairs', '--quiet'], spec)).toThrow(
      /^--pairs: missing value \(the next argument, '--quiet', is an option/,
    );
  });

  it('leaves everything after -- alone', () => {
    expect(parseFlags(['--', '--pairs', '-5'], spec).positionals).toEqual(['--pairs', '-5']);
  });

  it('gives stress.ts one line naming the option and the value', () => {
    for (const [args, message] of [
      [['--pairs', '-5'], /^--pairs: -5 is out of range 1\.\./],
      [['--workers', '-1'], /^--workers: -1 is out of range/],
      [['--timeout', '-1s'], /^--timeout: invalid duration '-1s': it is negative/],
    ] as const) {
      expect(() => parseStressOptions([...args], { cores: 2 })).toThrow(message);
    }
  });
});

describe('parseDuration and the timer limit', () => {
  it('accepts the longest duration a timer holds and refuses a longer one', () => {
    expect(parseDuration(`${MAX_TIMER_MS}ms`, '--timeout')).toBe(MAX_TIMER_MS);
    expect(parseDuration('596h', '--timeout')).toBe(596 * 3_600_000);
    for (const text of ['600h', `${MAX_TIMER_MS + 1}ms`, '1e9'])
      expect(() => parseDuration(text, '--timeout')).toThrow(UsageError);
    expect(() => parseDuration('600h', '--timeout')).toThrow(
      /^--timeout: 600h is longer than the longest timer \(2147483647 ms/,
    );
  });

  it('refuses --timeout 600h in stress.ts', () => {
    expect(() => parseStressOptions(['--timeout', '600h'], { cores: 2 })).toThrow(
      /^--timeout: 600h is longer/,
    );
  });
});

describe('takeOwnFlags: the own flags of a command that hands the rest on', () => {
  it('takes its flags and switches out and leaves the rest in order', () => {
    const taken = takeOwnFlags(
      ['--pairs', '10', '--lab=eim,eim', '--quiet', '--token', 't', '--timed', '--', '--lab'],
      ['lab', 'token'],
      ['timed'],
    );
    expect(taken.values).toEqual({ lab: 'eim,eim', token: 't' });
    expect(taken.rest).toEqual(['--pairs', '10', '--quiet', '--', '--lab']);
    expect([...taken.given].sort()).toEqual(['lab', 'pairs', 'quiet', 'timed', 'token']);
  });

  it('refuses a flag given twice, a missing value and a switch with a value, in one line', () => {
    expect(() => takeOwnFlags(['--lab', 'a', '--lab=b'], ['lab'])).toThrow(/^--lab given twice$/);
    expect(() => takeOwnFlags(['--lab'], ['lab'])).toThrow(/^--lab: missing value$/);
    expect(() => takeOwnFlags(['--lab', '--quiet'], ['lab'])).toThrow(
      /^--lab: missing value \(the next argument, '--quiet', is an option/,
    );
    expect(() => takeOwnFlags(['--timed=1'], [], ['timed'])).toThrow(/^--timed takes no value$/);
  });

  it('finds a flag only before a "--"', () => {
    expect(hasFlag(['--pairs', '1', '--lab', 'x'], 'lab')).toBe(true);
    expect(hasFlag(['--', '--lab'], 'lab')).toBe(false);
  });
});
