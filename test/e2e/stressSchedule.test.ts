/**
 * stress.ts schedules and values: an open loop for a duration plans only the pairs due before the
 * end; negative numbers and durations no timer holds are refused with what is wrong with them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { StressResult } from '../../lib/stress/types.ts';
import { runScript } from '../helpers/runScript.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simopen-stress-schedule-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function stress(args: string[]) {
  const run = runScript('stress', args);
  const code = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

describe('stress.ts --rate with --duration', () => {
  it('runs exactly the pairs the schedule holds: 100 pairs/s for 1 s is 100 pairs', async () => {
    const json = path.join(dir, 'rate.json');
    const log = path.join(dir, 'rate.ndjson');
    const result = await stress([
      '--rate',
      '100',
      '--duration',
      '1s',
      '--quiet',
      '--json',
      json,
      '--log',
      log,
    ]);
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(fs.readFileSync(json, 'utf8')) as StressResult;
    expect(summary.pairs).toEqual({ planned: 100, established: 100, failed: 0, cancelled: 0, notStarted: 0 });
    const ids = fs
      .readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { id: number }).id)
      .sort((x, y) => x - y);
    expect(ids).toEqual(Array.from({ length: 100 }, (_, id) => id));
  });
});

describe('stress.ts values', () => {
  it('says what is wrong with a negative number or a duration no timer holds: exit 2, one line', async () => {
    for (const [args, message] of [
      [['--pairs', '-5'], /^stress: --pairs: -5 is out of range 1\.\.1000000000 \(negative\)$/],
      [['--timeout', '600h'], /^stress: --timeout: 600h is longer than the longest timer \(2147483647 ms/],
      [['--json', '--quiet'], /^stress: --json: missing value/],
    ] as const) {
      const result = await stress([...args]);
      expect(result.code).toBe(2);
      expect(result.stderr.split('\n')[0]).toMatch(message);
      expect(result.stdout).toBe('');
    }
  });
});
