/** Sets of pair ids kept as ranges of consecutive ids: never-started pairs cost a few numbers, not a record each. Pure, but for closeNotStarted saying a miscount on stderr. */
import type { IdRange } from './types.ts';

/** Adds first..last to `ranges`, extending the last range when they touch (ids mostly come in order). */
export function addIdRange(ranges: IdRange[], first: number, last: number): void {
  if (last < first) return;
  const previous = ranges[ranges.length - 1];
  if (previous && previous[1] + 1 === first) previous[1] = last;
  else ranges.push([first, last]);
}

/** Sorted, with touching or overlapping ranges merged. */
export function mergeIdRanges(ranges: readonly IdRange[]): IdRange[] {
  const merged: IdRange[] = [];
  for (const [first, last] of [...ranges].sort((x, y) => x[0] - y[0])) {
    const previous = merged[merged.length - 1];
    if (previous && first <= previous[1] + 1) previous[1] = Math.max(previous[1], last);
    else merged.push([first, last]);
  }
  return merged;
}

/** How many ids the ranges hold. */
export function countIds(ranges: readonly IdRange[]): number {
  return ranges.reduce((sum, [first, last]) => sum + last - first + 1, 0);
}

/** Whether `id` is in one of the (sorted, merged) ranges. */
export function inIdRanges(ranges: readonly IdRange[], id: number): boolean {
  let low = 0;
  let high = ranges.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const [first, last] = ranges[middle] as IdRange;
    if (id < first) high = middle - 1;
    else if (id > last) low = middle + 1;
    else return true;
  }
  return false;
}

/**
 * The end of a run's accounting: the ids from `nextId` up to `planned` were never handed out (a
 * stop came first), so they are recorded as not started; returns every not-started id, merged. A
 * count that disagrees with the ranges is a bug, not a run condition: said, and the report kept.
 */
export function closeNotStarted(
  stats: { readonly notStarted: number; recordNotStarted(count: number): void },
  notStartedIds: IdRange[],
  nextId: number,
  planned: number,
): IdRange[] {
  if (planned > nextId) {
    stats.recordNotStarted(planned - nextId);
    addIdRange(notStartedIds, nextId, planned - 1);
  }
  const notStarted = mergeIdRanges(notStartedIds);
  if (countIds(notStarted) !== stats.notStarted)
    process.stderr.write(
      `stress: internal error: ${countIds(notStarted)} not-started ids but ${stats.notStarted} counted\n`,
    );
  return notStarted;
}
