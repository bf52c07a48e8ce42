import { describe, expect, it } from 'vitest';
import { EXIT, ExitError, UsageError } from '../../lib/core/errors.ts';
import { linkAddress } from '../../lib/core/heldLink.ts';
import {
  pairsPerProcess,
  parseOpen,
  parseStressOptions,
  parseSweep,
  sweepGrid,
} from '../../lib/stress/options.ts';
import { pairEndpoints, planPairs, waveAddressIndex } from '../../lib/stress/planPairs.ts';
import { batchSize } from '../../lib/stress/runStress.ts';
import { stressArgs } from '../../lib/stress/runStressPlan.ts';
import { sweepPointPlan, sweepRow, sweepTable } from '../../lib/stress/skewSweep.ts';
import type { StressOptions, StressResult } from '../../lib/stress/types.ts';

function parse(args: string[], openFilesLimit?: number) {
  const parsed = parseStressOptions(args, { cores: 2, openFilesLimit });
  if (parsed.help) throw new Error('help');
  return parsed;
}

function usageError(args: string[], pattern: RegExp, openFilesLimit?: number): void {
  expect(() => parse(args, openFilesLimit)).toThrow(UsageError);
  expect(() => parse(args, openFilesLimit)).toThrow(pattern);
}

describe('--open', () => {
  it('reads one-sided, crossed and skew:D', () => {
    expect(parseOpen('one-sided')).toEqual({ open: 'one-sided', skewMs: 0 });
    expect(parseOpen('crossed')).toEqual({ open: 'crossed', skewMs: 0 });
    expect(parseOpen('skew:2ms')).toEqual({ open: 'skew', skewMs: 2 });
    expect(parseOpen('skew:1.5s')).toEqual({ open: 'skew', skewMs: 1500 });
    expect(() => parseOpen('cross')).toThrow(/not one of one-sided, crossed, skew:D/);
    expect(() => parseOpen('skew:')).toThrow(UsageError);
  });

  it('defaults to one-sided on loopback, crossed and skew use the held link in waves', () => {
    const oneSided = parse([]);
    expect(oneSided.options).toMatchObject({ open: 'one-sided', holdMs: 0, sweep: undefined });
    expect(oneSided.plan.layout).toBe('loopback');
    const crossed = parse(['--open', 'crossed']);
    expect(crossed.options.open).toBe('crossed');
    // 128 in flight over 2 workers, two waves per worker in flight.
    expect(crossed.plan).toMatchObject({ layout: 'link', wave: 32 });
    const skew = parse(['--open', 'skew:3ms', '--early-syn', 'rst', '--delay', '5ms']);
    expect(skew.options).toMatchObject({
      open: 'skew',
      skewMs: 3,
      earlySyn: 'rst',
      delayMs: 5,
      warmup: 0,
    });
  });

  it('refuses what does not fit the open mode, before any work', () => {
    usageError(['--early-syn', 'rst'], /applies to --open skew:D only/);
    usageError(['--open', 'crossed', '--delay', '5ms'], /applies to --open skew:D only/);
    usageError(['--open', 'skew:1ms', '--early-syn', 'maybe'], /--early-syn/);
    usageError(['--open', 'skew:1ms', '--delay', '0.5ms'], /out of range/);
    usageError(['--open', 'crossed', '--mode', 'race'], /needs the sandbox/);
    usageError(['--hold', '1s', '--mode', 'race'], /needs the sandbox/);
    usageError(['--open', 'crossed', '--rate', '100'], /applies to --open one-sided only/);
    usageError(['--open', 'crossed', '--close', 'simultaneous'], /not with --open crossed/);
    usageError(['--open', 'skew:20s'], /raise --timeout/);
  });
});

describe('--sweep', () => {
  it('spreads the points evenly, both ends included', () => {
    expect(sweepGrid(0, 5, 11)).toEqual([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5]);
    expect(sweepGrid(2, 2, 1)).toEqual([2]);
    expect(sweepGrid(0, 1, 3)).toEqual([0, 0.5, 1]);
    expect(sweepGrid(0, 1, 4)).toEqual([0, 0.333, 0.667, 1]);
  });

  it('reads skew=A..B:N, A taking B’s unit when it has none', () => {
    expect(parseSweep('skew=0..5ms:11')).toEqual({ parameter: 'skew', valuesMs: sweepGrid(0, 5, 11) });
    expect(parseSweep('skew=1..2s:2').valuesMs).toEqual([1000, 2000]);
    expect(parseSweep('skew=500us..1ms:2').valuesMs).toEqual([0.5, 1]);
    expect(() => parseSweep('skew=0..5ms')).toThrow(/is not skew=FROM..TO:POINTS/);
    expect(() => parseSweep('delay=0..5ms:3')).toThrow(UsageError);
    expect(() => parseSweep('skew=5..1ms:3')).toThrow(/is more than/);
    expect(() => parseSweep('skew=0..5ms:0')).toThrow(UsageError);
  });

  it('makes the run a skew run, per point --pairs, and refuses what a sweep cannot do', () => {
    const parsed = parse(['--sweep', 'skew=0..4ms:3', '--pairs', '100']);
    expect(parsed.options).toMatchObject({ open: 'skew', skewMs: 0, pairs: 100 });
    expect(parsed.options.sweep?.valuesMs).toEqual([0, 2, 4]);
    usageError(['--sweep', 'skew=0..4ms:3', '--open', 'crossed'], /sweeps --open skew/);
    usageError(['--sweep', 'skew=0..4ms:3', '--duration', '5s'], /not --duration/);
    usageError(['--sweep', 'skew=0..4ms:3', '--log', '/tmp/x.ndjson'], /--log: not with --sweep/);
    usageError(['--sweep', 'skew=0..20s:3'], /raise --timeout/);
  });

  it('gives every point its own endpoints', () => {
    const { options, plan } = parse(['--sweep', 'skew=0..4ms:3', '--pairs', '100']);
    const seen = new Set<string>();
    for (let point = 0; point < 3; point += 1) {
      const pointPlan = sweepPointPlan(plan, options.pairs ?? 0, point);
      for (let id = 0; id < 100; id += 1) {
        const { a, b } = pairEndpoints(pointPlan, id);
        for (const end of [a, b]) {
          const key = `${end.host}:${end.port}`;
          expect(seen.has(key)).toBe(false);
          seen.add(key);
        }
      }
    }
    expect(seen.size).toBe(600);
  });

  it('tabulates the points, with open kinds when traced', () => {
    const result = (skewMs: number, openKinds?: Record<string, number>) =>
      ({
        open: { mode: 'skew', skewMs },
        pairs: { planned: 10, established: 9, failed: 1, cancelled: 0, notStarted: 0 },
        successPct: 90,
        attemptsBySide: [
          { min: 1, mean: 1, p50: 1, p90: 1, p99: 1, max: 1 },
          { min: 1, mean: 1.5, p50: 1, p90: 2, p99: 3, max: 3 },
        ],
        establishMs: { p50: 1.2346, p90: 2, p99: 3, p999: 3, max: 3, mean: 1.5 },
        ...(openKinds ? { openKinds } : {}),
      }) as unknown as StressResult;
    const rows = [result(0, { crossed: 9, 'one-sided': 0 }), result(2.5, { crossed: 1, 'one-sided': 8 })].map(
      sweepRow,
    );
    expect(rows[1]).toMatchObject({ skewMs: 2.5, established: 9, failed: 1, establishP50Ms: 1.2346 });
    const table = sweepTable(rows).split('\n');
    expect(table[0]).toMatch(/skew ms +planned +established +success % +failed +crossed +one-sided/);
    expect(table[2]?.trim().split(/ +/)).toEqual([
      '2.5',
      '10',
      '9',
      '90',
      '1',
      '1',
      '8',
      '0',
      '1',
      '3',
      '1.235',
      '3',
    ]);
    expect(sweepTable([sweepRow(result(1))])).not.toMatch(/crossed/);
  });
});

describe('--hold', () => {
  it('reads --hold and --keepalive; held pairs are all in flight at once, no warm-up', () => {
    const parsed = parse(['--open', 'crossed', '--pairs', '3000', '--hold', '60s', '--keepalive', '250ms']);
    expect(parsed.options).toMatchObject({ holdMs: 60_000, keepaliveMs: 250, concurrency: 3000, warmup: 0 });
    expect(parse(['--hold', '1s']).options.keepaliveMs).toBe(1000);
    usageError(['--keepalive', '1s'], /applies to --hold D only/);
    usageError(['--hold', '0s'], /more than 0/);
    usageError(['--hold', '1s', '--keepalive', '5ms'], /less than 10ms/);
  });

  it('batches held pairs so that a thread’s two batches fill its slots (all pairs held at once)', () => {
    const { options, plan } = parse(['--pairs', '1000', '--hold', '1s']);
    // 1,000 in flight over 2 threads: 500 slots each, two batches of 250 at least.
    expect(batchSize(options, 2, 500, plan)).toBeGreaterThanOrEqual(250);
    const crossed = parse(['--open', 'crossed', '--pairs', '1000', '--hold', '1s']);
    expect(batchSize(crossed.options, 2, 500, crossed.plan)).toBe(crossed.plan.wave);
    expect(crossed.plan.wave).toBe(250);
  });

  it('spreads a hold that one process cannot open over as many processes as it needs', () => {
    const most = pairsPerProcess(20_000);
    expect(most).toBeGreaterThan(9_000);
    expect(most).toBeLessThan(10_000);
    const one = parse(['--pairs', String(most), '--hold', '1s'], 20_000).options;
    expect(one).toMatchObject({ concurrency: most, processes: 1 });
    expect(parse(['--pairs', String(most + 1), '--hold', '1s'], 20_000).options.processes).toBe(2);
    for (const open of ['one-sided', 'crossed']) {
      const { options, plan } = parse(['--pairs', '100000', '--hold', '60s', '--open', open], 20_000);
      expect(options.processes).toBeGreaterThanOrEqual(11);
      expect(options.processes).toBeLessThanOrEqual(12);
      // Each thread's share, whole waves over the held link, keeps every process within its limit.
      const slots = Math.ceil(100_000 / (options.workers * options.processes));
      const perThread = open === 'crossed' ? Math.max(2, Math.ceil(slots / plan.wave)) * plan.wave : slots;
      expect(options.workers * perThread).toBeLessThanOrEqual(most);
      expect(options.workers * perThread * options.processes).toBeGreaterThanOrEqual(100_000);
    }
    // Fewer at once fit in one: --concurrency bounds what is held together.
    expect(
      parse(['--pairs', '100000', '--hold', '1s', '--concurrency', '5000'], 20_000).options,
    ).toMatchObject({ concurrency: 5000, processes: 1 });
    // Without a hold, or with the limit unknown, one process unless asked.
    expect(parse(['--pairs', '100000'], 20_000).options.processes).toBe(1);
    // 64 pairs in flight per worker thread, of every process.
    expect(parse(['--pairs', '100000', '--processes', '3'], 20_000).options).toMatchObject({
      processes: 3,
      concurrency: 64 * 2 * 3,
    });
  });

  it('refuses, before the run, a hold that the processes asked for (or the most) cannot take', () => {
    const tooFew = () => parse(['--pairs', '100000', '--hold', '1s', '--processes', '2'], 20_000);
    expect(tooFew).toThrow(ExitError);
    expect(tooFew).toThrow(/descriptors.*RLIMIT_NOFILE.*--processes 2 .*raise --processes/);
    try {
      tooFew();
    } catch (error) {
      expect((error as ExitError).exitCode).toBe(EXIT.usage);
    }
    // 250 processes of 400 pairs would be needed.
    expect(() => parse(['--pairs', '100000', '--hold', '1s'], 1_000)).toThrow(/the most processes \(64\)/);
    usageError(['--processes', '2', '--mode', 'race'], /--processes: sandbox mode only/);
    usageError(['--processes', '0'], /--processes/);
  });
});

describe('the API plan', () => {
  it('asks for the open mode and the hold with the flags of the same names', () => {
    const args = stressArgs({
      open: 'skew',
      skewMs: 3,
      earlySyn: 'rst',
      delayMs: 5,
      holdMs: 1000,
      keepaliveMs: 100,
    });
    expect(args).toEqual(
      expect.arrayContaining([
        '--open=skew:3ms',
        '--early-syn=rst',
        '--delay=5ms',
        '--hold=1000ms',
        '--keepalive=100ms',
      ]),
    );
    expect(parse(args).options).toMatchObject({
      open: 'skew',
      skewMs: 3,
      earlySyn: 'rst',
      delayMs: 5,
      holdMs: 1000,
      keepaliveMs: 100,
    });
    expect(stressArgs({ open: 'crossed' })).toContain('--open=crossed');
  });
});

describe('held-link address plan', () => {
  it('puts a wave on one address pair and a block of ports, never reusing an endpoint', () => {
    const plan = planPairs(undefined, {
      ports: { first: 2000, last: 2009 },
      addresses: 6,
      layout: 'link',
      wave: 4,
    });
    // 3 address pairs x 2 blocks of 4 ports (ports 2008-2009 unused).
    expect(plan).toMatchObject({ layout: 'link', wave: 4, rounds: 3, capacity: 24 });
    const seen = new Set<string>();
    for (let id = 0; id < plan.capacity; id += 1) {
      const { a, b } = pairEndpoints(plan, id);
      const index = waveAddressIndex(plan, id);
      expect(a).toMatchObject({ host: linkAddress(0, index) });
      expect(b).toMatchObject({ host: linkAddress(1, index), port: a.port });
      // Pairs of one wave share the address pair.
      expect(waveAddressIndex(plan, id - (id % 4))).toBe(index);
      expect(seen.has(`${a.host}:${a.port}`)).toBe(false);
      seen.add(`${a.host}:${a.port}`);
      expect(a.port).toBeLessThan(2008);
    }
    expect(() =>
      planPairs(25, { ports: { first: 2000, last: 2009 }, addresses: 6, layout: 'link', wave: 4 }),
    ).toThrow(/exceeds what the address plan holds/);
    expect(() => planPairs(1, { ports: { first: 2000, last: 2002 }, layout: 'link', wave: 4 })).toThrow(
      /fewer than a wave/,
    );
  });

  it('numbers the link addresses in two /16 blocks', () => {
    expect(linkAddress(0, 0)).toBe('10.98.0.0');
    expect(linkAddress(1, 258)).toBe('10.99.1.2');
    expect(linkAddress(0, 65_535)).toBe('10.98.255.255');
  });
});

// A type check only: the options the sweep copies per point carry these fields.
const _fields: (keyof StressOptions)[] = [
  'open',
  'skewMs',
  'earlySyn',
  'delayMs',
  'holdMs',
  'keepaliveMs',
  'sweep',
];
void _fields;
