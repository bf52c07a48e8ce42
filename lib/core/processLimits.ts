/** Limits of this process that decide what a run can hold. */
import { readFileSync } from 'node:fs';

/**
 * The open-files limit (RLIMIT_NOFILE, soft) from /proc/self/limits; undefined where that cannot be
 * read. Node does not raise it, and worker threads share it with their process.
 */
export function openFilesLimit(): number | undefined {
  try {
    const line = /^Max open files\s+(\d+|unlimited)\s+/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!line || line[1] === 'unlimited') return undefined;
    return Number(line[1]);
  } catch {
    return undefined;
  }
}
