/**
 * The NDJSON pair log (--log): exactly one line per planned pair. Workers append the records of a
 * whole batch with one write() to an O_APPEND descriptor (atomic for a regular file), so lines from
 * different threads never interleave; the main thread appends the records of pairs no worker could
 * report (cancelled before they were handed out, or lost with a crashed worker).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { PairLogRecord } from './types.ts';

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

/** An append-only log file shared by threads; each append is one write() of whole lines. */
export class PairLogFile {
  private fd: number | undefined;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'a');
  }

  append(text: string): void {
    if (this.fd === undefined || text.length === 0) return;
    const bytes = Buffer.from(text);
    let written = 0;
    // A regular file takes the whole buffer in one write; loop only for the odd short write.
    while (written < bytes.length) written += writeSync(this.fd, bytes, written, bytes.length - written);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
