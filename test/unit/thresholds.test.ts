import { describe, expect, it } from 'vitest';
import { UsageError } from '../../lib/core/errors.ts';
import {
  evaluateThresholds,
  formatThresholds,
  parseThreshold,
  THRESHOLD_METRICS,
} from '../../lib/stress/thresholds.ts';
import { sampleResult } from '../helpers/stressResults.ts';

describe('--threshold grammar', () => {
  it('reads METRIC OP VALUE with the metric’s units', () => {
    expect(parseThreshold('establish.p99<5ms')).toEqual({
      text: 'establish.p99<5ms',
      metric: 'establish.p99',
      op: '<',
      limit: 5,
    });
    expect(parseThreshold('establish.p99 < 500us').limit).toBeCloseTo(0.5);
    expect(parseThreshold('pair.max<=2s')).toMatchObject({ op: '<=', limit: 2000 });
    expect(parseThreshold('pair.p50<3')).toMatchObject({ limit: 3 });
    expect(parseThreshold('success>=99.9%')).toMatchObject({ metric: 'success', op: '>=', limit: 99.9 });
    expect(parseThreshold('success>=99.9')).toMatchObject({ limit: 99.9 });
    expect(parseThreshold('rate>=20000')).toMatchObject({ metric: 'rate', limit: 20_000 });
    expect(parseThreshold('rate>=20000/s')).toMatchObject({ limit: 20_000 });
    expect(parseThreshold('failed==0')).toMatchObject({ metric: 'failed', op: '==', limit: 0 });
    expect(parseThreshold('attempts.max<=3')).toMatchObject({ metric: 'attempts.max', limit: 3 });
  });

  it('refuses bad syntax, unknown metrics and units the metric does not take, naming the problem', () => {
    const refused: [string, RegExp][] = [
      ['establish.p99', /not METRIC OP VALUE/],
      ['establish.p99<', /not METRIC OP VALUE/],
      ['establish.p99=<5ms', /not METRIC OP VALUE/],
      ['<5ms', /not METRIC OP VALUE/],
      ['establish.p98<5ms', /unknown metric 'establish.p98' \(one of establish.min, /],
      ['latency<5ms', /unknown metric 'latency'/],
      ['establish.p99<5kg', /establish.p99 is in ms; 'kg' is not a unit it takes \(us, ms, s or none\)/],
      ['success>=99.9ms', /success is in %; 'ms' is not a unit/],
      ['failed<=1%', /failed is in pairs; '%' is not a unit it takes \(a plain number\)/],
      ['attempts.p999<2', /unknown metric 'attempts.p999'/],
      ['rate>=-5', /not METRIC OP VALUE/],
    ];
    for (const [text, message] of refused) {
      expect(() => parseThreshold(text), text).toThrow(UsageError);
      expect(() => parseThreshold(text), text).toThrow(message);
    }
  });

  it('names every metric once, with a unit', () => {
    for (const [name, metric] of Object.entries(THRESHOLD_METRICS)) {
      expect(name).toMatch(/^[a-zA-Z]+(\.[a-z0-9]+)?$/);
      expect(metric.unit.length).toBeGreaterThan(0);
    }
  });
});

describe('threshold evaluation', () => {
  it('passes and fails against the result’s figures, each with the figure it saw', () => {
    const result = sampleResult();
    const results = evaluateThresholds(
      [
        'establish.p99<11ms',
        'establish.p99<9ms',
        'success>=99.95%',
        'success>=99.9%',
        'failed==1',
        'rate>=2000',
        'attempts.max<=1',
      ].map(parseThreshold),
      result,
    );
    expect(results.map((threshold) => [threshold.text, threshold.pass])).toEqual([
      ['establish.p99<11ms', true],
      ['establish.p99<9ms', false],
      ['success>=99.95%', false],
      ['success>=99.9%', true],
      ['failed==1', true],
      ['rate>=2000', true],
      ['attempts.max<=1', true],
    ]);
    expect(results[0]?.actual).toBe(result.establishMs?.p99);
    expect(results[0]?.unit).toBe('ms');
    const lines = formatThresholds(results);
    expect(lines[0]).toBe('  thresholds     5 of 7 passed (exit 99)');
    expect(lines[2]).toMatch(/^ {4}FAIL {2}establish\.p99<9ms +was 9\.\d+ ms$/);
  });

  it('fails a threshold whose figure the run does not have', () => {
    const result = { ...sampleResult(), establishMs: null };
    const [outcome] = evaluateThresholds([parseThreshold('establish.p99<5ms')], result);
    expect(outcome).toMatchObject({ actual: null, pass: false });
    expect(formatThresholds([outcome as never])[1]).toContain('no value');
    expect(formatThresholds([])).toEqual([]);
  });
});
