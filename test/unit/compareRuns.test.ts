import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../lib/core/errors.ts';
import { compareResults, formatComparison, readStressResult } from '../../lib/stress/compareRuns.ts';
import { sampleResult } from '../helpers/stressResults.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simopen-compare-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const target = path.join(dir, name);
  fs.writeFileSync(target, text);
  return target;
}

describe('--compare OLD.json', () => {
  it('reads a stress.ts --json result back', () => {
    const old = sampleResult();
    expect(readStressResult(file('old.json', JSON.stringify(old)))).toEqual(JSON.parse(JSON.stringify(old)));
  });

  it('refuses a file that is not a stress result, naming what is wrong', () => {
    const cases: [string, RegExp][] = [
      [path.join(dir, 'missing.json'), /^--compare: cannot read .*missing\.json \(ENOENT\)$/],
      [file('text.json', 'hello'), /is not JSON/],
      [file('array.json', '[1,2]'), /is not a stress\.ts --json result: it is not a JSON object$/],
      [file('trace.json', '{"type":"summary","paths":3}'), /it has no "pairs" object$/],
      [
        file('partial.json', '{"pairs":{"planned":1,"established":"1","failed":0}}'),
        /"pairs\.established" is not a number$/,
      ],
      [
        file(
          'nomode.json',
          '{"pairs":{"planned":1,"established":1,"failed":0},"successPct":100,"pairsPerSec":1,"durationMs":1}',
        ),
        /has no "mode"$/,
      ],
    ];
    for (const [target, message] of cases) {
      expect(() => readStressResult(target)).toThrow(UsageError);
      expect(() => readStressResult(target)).toThrow(message);
    }
  });

  it('gives each figure before and after, its delta and whether it got better or worse', () => {
    const old = sampleResult();
    const current = sampleResult(2);
    const comparison = compareResults(old, current, 'old.json');
    const byName = Object.fromEntries(comparison.figures.map((figure) => [figure.figure, figure]));
    expect(byName['establish p99']).toMatchObject({
      unit: 'ms',
      old: old.establishMs?.p99,
      new: current.establishMs?.p99,
      change: 'worse',
    });
    expect(byName['establish p99']?.deltaPct).toBeCloseTo(100, 0);
    expect(byName.throughput).toMatchObject({ delta: 0, deltaPct: 0, change: 'same' });
    expect(byName.planned).toMatchObject({ change: null });
    expect(comparison.baseline.distributions).toEqual(old.distributions);
    const better = compareResults(current, old, 'new.json');
    expect(better.figures.find((figure) => figure.figure === 'establish p99')?.change).toBe('better');

    const lines = formatComparison(comparison);
    expect(lines[0]).toBe('  compared with  old.json (sandbox, 1,001 pairs planned)');
    expect(lines.find((line) => line.includes('establish p99 '))).toMatch(
      /establish p99 +9\.\d+ ms -> +19\.\d+ ms +\+9\.\d+ ms \(\+\d+(\.\d)?%\) +worse$/,
    );
    expect(lines.find((line) => line.includes('throughput'))).toMatch(/ same$/);
    expect(formatComparison(undefined)).toEqual([]);
  });

  it('compares with an older result that has no plot data or attempts', () => {
    const old = { ...sampleResult(), attempts: null } as Record<string, unknown>;
    delete old.distributions;
    const comparison = compareResults(old as never, sampleResult(), 'old.json');
    expect(comparison.baseline.distributions).toBeUndefined();
    expect(comparison.figures.find((figure) => figure.figure === 'attempts mean')).toMatchObject({
      old: null,
      delta: null,
      change: null,
    });
  });
});
