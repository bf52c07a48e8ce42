/**
 * The pair log's parts that need no sockets: never-started pairs as id ranges and their one record, a
 * torn last line cut back, the planned pairs a trace classifies, and the --trace annotation written
 * through the log's own descriptor (never a rename over the user's path).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openOutputFiles } from '../../lib/core/outputFile.ts';
import { addIdRange, countIds, inIdRanges, mergeIdRanges } from '../../lib/stress/idRanges.ts';
import { formatNotStartedRecord, trimTornLine } from '../../lib/stress/pairLog.ts';
import { planPairs } from '../../lib/stress/planPairs.ts';
import { annotatePairLog, pairsOfPlan } from '../../lib/stress/traceStress.ts';
import type { IdRange } from '../../lib/stress/types.ts';
import type { PairKinds } from '../../lib/trace/types.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simopen-pair-log-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('never-started pairs', () => {
  it('are kept as ranges, merged and counted without one entry per id', () => {
    const ranges: IdRange[] = [];
    addIdRange(ranges, 5, 9);
    addIdRange(ranges, 10, 10);
    addIdRange(ranges, 20, 19); // empty
    addIdRange(ranges, 0, 2);
    expect(ranges).toEqual([
      [5, 10],
      [0, 2],
    ]);
    const merged = mergeIdRanges([...ranges, [3, 4], [1_000, 999_999_999]]);
    expect(merged).toEqual([
      [0, 10],
      [1_000, 999_999_999],
    ]);
    expect(countIds(merged)).toBe(11 + 999_999_000);
    expect(inIdRanges(merged, 10)).toBe(true);
    expect(inIdRanges(merged, 11)).toBe(false);
    expect(inIdRanges(merged, 999_999_999)).toBe(true);
  });

  it('make one log record, whatever their number', () => {
    expect(formatNotStartedRecord([])).toBe('');
    const line = formatNotStartedRecord([
      [3, 4],
      [10, 999_999_999],
    ]);
    expect(line.endsWith('}\n')).toBe(true);
    expect(line.split('\n')).toHaveLength(2);
    expect(JSON.parse(line)).toEqual({
      outcome: 'notStarted',
      count: 999_999_992,
      ids: [
        [3, 4],
        [10, 999_999_999],
      ],
    });
  });

  it('are left out of the pairs a trace classifies, without walking them', () => {
    const plan = planPairs(undefined, { ports: { first: 1024, last: 65_535 } });
    const ids = [
      ...pairsOfPlan(plan, 1_000_000_000, [
        [2, 3],
        [6, 999_999_999],
      ]),
    ].map((pair) => pair.id);
    expect(ids).toEqual([0, 1, 4, 5]);
  });
});

describe('trimTornLine', () => {
  it('cuts a partial last line, keeps whole lines, and leaves a clean file alone', () => {
    const file = path.join(dir, 'torn.ndjson');
    fs.writeFileSync(file, '{"id":0}\n{"id":1}\n{"id":2,"a":"127.0');
    const fd = fs.openSync(file, 'r+');
    expect(trimTornLine(fd)).toBe('{"id":2,"a":"127.0'.length);
    expect(trimTornLine(fd)).toBe(0);
    fs.closeSync(fd);
    expect(fs.readFileSync(file, 'utf8')).toBe('{"id":0}\n{"id":1}\n');
  });
});

describe('annotatePairLog', () => {
  const kinds = new Map<number, PairKinds>([[0, { open: 'crossed', close: ['active', 'passive'] }]]);
  const written = '{"id":0,"outcome":"established"}\n{"outcome":"notStarted","count":2,"ids":[[1,2]]}\n';

  it('writes through a symlink: the link stays, the file keeps its inode, nothing is left beside it', async () => {
    const target = path.join(dir, 'pairs.ndjson');
    const link = path.join(dir, 'pairs-link.ndjson');
    fs.writeFileSync(target, '');
    fs.symlinkSync(target, link);
    const inode = fs.statSync(target).ino;
    const [log] = openOutputFiles([
      { option: '--log', path: link, append: true, regularBecause: 'read back' },
    ]);
    if (!log) throw new Error('not opened');
    log.write(written);
    await annotatePairLog(log, kinds);
    log.close();
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.statSync(target).ino).toBe(inode);
    const lines = fs
      .readFileSync(target, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines).toEqual([
      { id: 0, outcome: 'established', openKind: 'crossed', closeKinds: ['active', 'passive'] },
      { outcome: 'notStarted', count: 2, ids: [[1, 2]] },
    ]);
    expect(
      fs
        .readdirSync(dir)
        .filter((name) => name.startsWith('pairs'))
        .sort(),
    ).toEqual(['pairs-link.ndjson', 'pairs.ndjson']);
  });

  it('keeps the records as written when the annotation fails', async () => {
    const file = path.join(dir, 'broken.ndjson');
    fs.writeFileSync(file, '');
    const [log] = openOutputFiles([{ option: '--log', path: file, append: true }]);
    if (!log) throw new Error('not opened');
    log.write(`${written}not json\n`);
    // The private copy goes to os.tmpdir(): this test's own, to see that it is gone again.
    const tmp = fs.mkdtempSync(path.join(dir, 'tmp-'));
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    try {
      await expect(annotatePairLog(log, kinds)).rejects.toThrow(/keeps the records as the run wrote them/);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
    log.close();
    expect(fs.readFileSync(file, 'utf8')).toBe(`${written}not json\n`);
    expect(fs.readdirSync(tmp)).toEqual([]);
  });
});
