/** Recorded kernel trace text and /proc/net/tcp tables (test/fixtures/trace), parsed as the tracer would. */
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../lib/core/childProcess.ts';
import { parseTraceLine } from '../../lib/trace/kernelTracepoint.ts';
import type { TraceEvent } from '../../lib/trace/types.ts';

export const fixture = (name: string) =>
  fs.readFileSync(path.join(REPO_ROOT, 'test/fixtures/trace', name), 'utf8');

export function parseText(text: string): TraceEvent[] {
  return text
    .split('\n')
    .map(parseTraceLine)
    .filter((line): line is TraceEvent => line !== null && line.type !== 'lost');
}
