/**
 * Builds and runs the C reference (simopen_ref.c) for the benchmark. The binary goes to bench/build/
 * (gitignored) and is rebuilt when the source is newer; no cc means no C figure, never a failure.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runChild } from '../lib/core/childProcess.ts';
import type { CloseMode } from '../lib/stress/types.ts';

const SOURCE = fileURLToPath(new URL('./simopen_ref.c', import.meta.url));
const BUILD_DIR = fileURLToPath(new URL('./build/', import.meta.url));
export const C_REFERENCE_BINARY = `${BUILD_DIR}simopen_ref`;

export type BuildOutcome = { ok: true; binary: string; built: boolean } | { ok: false; reason: string };

function modifiedMs(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

/** cc -O2 -pthread; skipped (with the reason) when there is no cc, an error when the compile fails. */
export function buildCReference(): BuildOutcome {
  const probe = spawnSync('cc', ['--version'], { encoding: 'utf8' });
  if (probe.error) return { ok: false, reason: 'no C compiler (cc) on this machine' };
  const binaryTime = modifiedMs(C_REFERENCE_BINARY);
  const sourceTime = modifiedMs(SOURCE) ?? Number.POSITIVE_INFINITY;
  if (binaryTime !== undefined && binaryTime >= sourceTime)
    return { ok: true, binary: C_REFERENCE_BINARY, built: false };
  mkdirSync(BUILD_DIR, { recursive: true });
  // Built under a name of our own and renamed into place: a bench running at the same time from this
  // clone never executes a half-written binary.
  const building = `${C_REFERENCE_BINARY}.${process.pid}.tmp`;
  const compile = spawnSync('cc', ['-O2', '-Wall', '-pthread', '-o', building, SOURCE], {
    encoding: 'utf8',
  });
  if (compile.status === 0) renameSync(building, C_REFERENCE_BINARY);
  else rmSync(building, { force: true });
  if (compile.status !== 0) {
    const lines = (compile.stderr || compile.error?.message || '').trim().split('\n');
    throw new Error(
      `cc failed to build simopen_ref.c: ${lines.find((line) => /error/.test(line)) ?? lines[0]}`,
    );
  }
  return { ok: true, binary: C_REFERENCE_BINARY, built: true };
}

export interface CReferenceOptions {
  pairs: number;
  threads: number;
  inflightPerThread: number;
  payloadBytes: number;
  close: CloseMode;
  /** Second octet of its 127.0.0.0/8 addresses, so runs never share a 4-tuple. */
  net: number;
  timeoutMs?: number;
}

/** The JSON line simopen_ref prints. */
export interface CReferenceResult {
  pairs: number;
  threads: number;
  inflightPerThread: number;
  payload: number;
  close: CloseMode;
  completed: number;
  failed: number;
  bytesVerified: number;
  elapsedMs: number;
  pairsPerSec: number;
  errors: Record<string, number>;
  firstErrno: string;
  peakRssKb: number;
}

/** Runs the binary (in the caller's network namespace, which must drop the early RSTs). */
export async function runCReference(binary: string, options: CReferenceOptions): Promise<CReferenceResult> {
  const args = [
    ['--pairs', options.pairs],
    ['--threads', options.threads],
    ['--inflight', options.inflightPerThread],
    ['--payload', options.payloadBytes],
    ['--close', options.close],
    ['--net', options.net],
    ['--timeout-ms', options.timeoutMs ?? 10_000],
  ].flatMap(([flag, value]) => [String(flag), String(value)]);
  const run = await runChild(binary, args);
  // Exit 1 means some pairs failed: the JSON still says how many, and the caller reports it.
  if (run.code !== 0 && run.code !== 1)
    throw new Error(`simopen_ref exited ${run.code}: ${run.stderr.trim().split('\n')[0] ?? ''}`);
  const line = run.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as CReferenceResult;
  } catch {
    throw new Error(`simopen_ref printed no JSON result (got '${line.slice(0, 200)}')`);
  }
}
