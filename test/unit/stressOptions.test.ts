import { describe, expect, it } from 'vitest';
import { UsageError } from '../../lib/core/errors.ts';
import { parseBytes, parseStressOptions } from '../../lib/stress/options.ts';

describe('parseStressOptions', () => {
  const parse = (args: string[]) => parseStressOptions(args, { cores: 2 });

  it('has the documented defaults', () => {
    const parsed = parse([]);
    if (parsed.help) throw new Error('help');
    expect(parsed.options).toMatchObject({
      pairs: 10_000,
      workers: 2,
      concurrency: 128,
      payload: 64,
      close: 'graceful',
      timeoutMs: 10_000,
      mode: 'sandbox',
      modeExplicit: false,
      minSuccess: 100,
      ports: { first: 1024, last: 65_535 },
      warmup: 5000,
      sockets: 'handle',
    });
    const race = parse(['--mode', 'race']);
    if (race.help) throw new Error('help');
    expect(race.options).toMatchObject({
      mode: 'race',
      workers: 2,
      concurrency: 1,
      warmup: 0,
      ports: { first: 21_000 },
    });
  });

  it('reads every option', () => {
    const parsed = parse([
      '--pairs=1M',
      '--duration=30s',
      '--concurrency=500',
      '--rate=20k',
      '--workers=4',
      '--payload=4KiB',
      '--close=reset',
      '--timeout=2s',
      '--min-success=99.5',
      '--ports=2000-2999',
      '--addresses=4000',
      '--warmup=0',
      '--quiet',
    ]);
    if (parsed.help) throw new Error('help');
    expect(parsed.options).toMatchObject({
      pairs: 1_000_000,
      durationMs: 30_000,
      concurrency: 500,
      rate: 20_000,
      workers: 4,
      payload: 4096,
      close: 'reset',
      timeoutMs: 2000,
      minSuccess: 99.5,
      ports: { first: 2000, last: 2999 },
      addresses: 4000,
      warmup: 0,
      quiet: true,
    });
    expect(parsed.plan.capacity).toBe(1000 * 2000);
  });

  it.each([
    [['--pairs', 'lots'], /--pairs/],
    [['--pairs', '0'], /--pairs/],
    [['--bogus'], /bogus/],
    [['--close', 'sideways'], /--close: 'sideways'/],
    [['--mode', 'tunnel'], /--mode/],
    [['--payload', '1GiB'], /--payload/],
    [['--timeout', 'soon'], /--timeout/],
    [['--min-success', '101'], /--min-success/],
    [['--ports', '3000-2000'], /--ports/],
    [['--warmup', 'lots'], /--warmup/],
    [['--sockets', 'pipes'], /--sockets/],
    [['--mode', 'race', '--workers', '1'], /--workers 1: --mode race needs 2/],
    [['--workers', '4', '--concurrency', '2'], /--concurrency 2 is less than --workers 4/],
    [['--pairs', '101', '--ports', '21000-21009', '--addresses', '20'], /--pairs 101 exceeds/],
    [['--json', '/nonexistent-dir/x.json'], /--json: directory/],
    [['--report', '/nonexistent-dir/x.html'], /--report: directory/],
    [['--report', 'same.out', '--json', 'same.out'], /--report and --json name the same file/],
    [['--threshold', 'p99<5ms'], /--threshold 'p99<5ms': unknown metric/],
    [
      ['--threshold', 'success>=99.9%', '--threshold', 'rate>>1'],
      /--threshold 'rate>>1': not METRIC OP VALUE/,
    ],
    [['--compare', '/nonexistent-dir/old.json'], /--compare: cannot read/],
    [
      ['--compare', 'package.json'],
      /--compare: package\.json is not a stress\.ts --json result: it has no "pairs" object/,
    ],
    [['stray'], /stray/],
  ])('rejects %j', (args, message) => {
    expect(() => parse(args)).toThrow(UsageError);
    expect(() => parse(args)).toThrow(message);
  });

  it('reads --report, repeated --threshold and --compare', () => {
    const parsed = parse([
      '--report',
      'r.html',
      '--threshold',
      'establish.p99<5ms',
      '--threshold=success>=99.9%',
    ]);
    if (parsed.help) throw new Error('help');
    expect(parsed.options.report).toMatch(/\/r\.html$/);
    expect(parsed.options.thresholds.map((threshold) => threshold.metric)).toEqual([
      'establish.p99',
      'success',
    ]);
    expect(parsed.options.compare).toBeUndefined();
  });

  it('parses byte counts', () => {
    expect(parseBytes('0', 'x', 10)).toBe(0);
    expect(parseBytes('64k', 'x', 1e9)).toBe(65_536);
    expect(parseBytes('1MiB', 'x', 1e9)).toBe(1_048_576);
    expect(() => parseBytes('-1', 'x', 10)).toThrow(UsageError);
  });
});
