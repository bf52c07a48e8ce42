/**
 * The NDJSON pair log (--log): one line per pair that started, and at the end one NotStartedRecord for
 * the planned pairs that never did. The main thread opens the file once (O_APPEND) and every thread
 * appends to that descriptor: workers append the records of a whole batch with one write() (atomic for
 * a regular file), so lines from different threads never interleave; the main thread appends the
 * records of pairs lost with a crashed worker, and the not-started record.
 */
import { fstatSync, ftruncateSync, readSync, writeSync } from 'node:fs';
import type { IdRange, NotStartedRecord, PairLogRecord } from './types.ts';

function us(value: number | undefined): number | null {
  return value === undefined || value < 0 ? null : Math.round(value);
}

/** One line, newline included. Hand-built for speed: it runs once per pair. */
export function formatPairRecord(record: PairLogRecord): string {
  return `{"id":${record.id},"a":"${record.a}","b":"${record.b}","outcome":"${record.outcome}","error":${
    record.error === null ? 'null' : JSON.stringify(record.error)
  },"attempts":[${record.attempts[0]},${record.attempts[1]}],"establishUs":[${us(record.establishUs[0] ?? undefined)},${us(
    record.establishUs[1] ?? undefined,
  )}],"bytesVerified":${record.bytesVerified},"close":"${record.close}","closeOutcome":${
    record.closeOutcome === null ? 'null' : `"${record.closeOutcome}"`
  },"startLagUs":${Math.round(record.startLagUs)},"pairUs":${us(record.pairUs ?? undefined)}}\n`;
}

/** The one line for all pairs that never started; '' when there are none. */
export function formatNotStartedRecord(ids: IdRange[]): string {
  const count = ids.reduce((sum, [first, last]) => sum + last - first + 1, 0);
  if (count === 0) return '';
  const record: NotStartedRecord = { outcome: 'notStarted', count, ids };
  return `${JSON.stringify(record)}\n`;
}

/** A failed append: the fs error, and how many of its lines made it whole into the file before it. */
export class AppendError extends Error {
  constructor(
    override readonly cause: unknown,
    readonly linesWritten: number,
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

/** Appends whole lines to a descriptor the caller owns; each append is one write() unless the kernel writes short. */
export class PairLogFile {
  constructor(readonly fd: number) {}

  /** Throws an AppendError when the file takes no more (ENOSPC, EFBIG, EIO...). */
  append(text: string): void {
    if (text.length === 0) return;
    const bytes = Buffer.from(text);
    let written = 0;
    try {
      // A regular file takes the whole buffer in one write; loop only for the odd short write.
      while (written < bytes.length) written += writeSync(this.fd, bytes, written, bytes.length - written);
    } catch (error) {
      let lines = 0;
      for (let at = bytes.indexOf(0x0a); at >= 0 && at < written; at = bytes.indexOf(0x0a, at + 1))
        lines += 1;
      throw new AppendError(error, lines);
    }
  }
}

/**
 * A write cut short (the disk filled) can leave a partial line at the end of a regular file: cut the
 * file back to its last newline. Returns the bytes removed. Call when no thread appends any more.
 */
export function trimTornLine(fd: number): number {
  const stat = fstatSync(fd);
  if (!stat.isFile() || stat.size === 0) return 0;
  const chunk = Buffer.alloc(64 * 1024);
  let end = stat.size;
  while (end > 0) {
    const start = Math.max(0, end - chunk.length);
    const read = readSync(fd, chunk, 0, end - start, start);
    const newline = chunk.subarray(0, read).lastIndexOf(0x0a);
    if (newline >= 0) {
      const keep = start + newline + 1;
      if (keep < stat.size) ftruncateSync(fd, keep);
      return stat.size - keep;
    }
    end = start;
  }
  ftruncateSync(fd, 0);
  return stat.size;
}
