/**
 * Runs scripts/stress.ts as a child process through its CLI and reads its --json summary, the way a
 * user would run it. It gets its own sandbox (--mode sandbox): the sandbox variables of the bench's
 * own namespace are not passed on, so it builds a fresh namespace of the same kind.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startScript } from '../lib/core/childProcess.ts';
import type { CloseKind } from './baselineListener.ts';
import { samplePeakRss } from './peakRss.ts';

export const STRESS_SCRIPT = fileURLToPath(new URL('../scripts/stress.ts', import.meta.url));

export interface StressOptions {
  pairs: number;
  workers: number;
  payloadBytes: number;
  close: CloseKind;
  /** Pairs in flight (stress.ts --concurrency); its default when absent. */
  concurrency?: number;
}

/** The fields of stress.ts --json that the bench reads (issue 3 fixes these names). */
export interface StressSummary {
  mode: string;
  workers: number;
  pairs: { planned: number; established: number; failed: number; cancelled: number };
  pairsPerSec: number;
  establishMs?: { p50?: number; p99?: number };
  [field: string]: unknown;
}

export interface StressRun {
  summary: StressSummary;
  /** Peak RSS in bytes, and where it came from. */
  peakRssBytes: number;
  peakRssSource: string;
  exitCode: number;
  wallMs: number;
}

/** Names under which stress.ts may report its own peak RSS (bytes unless the name says kB/MB). */
const OWN_PEAK_RSS_FIELDS: [path: string[], scale: number][] = [
  [['peakRssBytes'], 1],
  [['memory', 'peakRssBytes'], 1],
  [['peakRssKb'], 1024],
  [['memory', 'peakRssKb'], 1024],
  [['peakRssMB'], 1024 * 1024],
  [['memory', 'peakRssMB'], 1024 * 1024],
  [['maxRssBytes'], 1],
  [['maxRssKb'], 1024],
];

function ownPeakRss(summary: StressSummary): { bytes: number; field: string } | undefined {
  for (const [path, scale] of OWN_PEAK_RSS_FIELDS) {
    let value: unknown = summary;
    for (const key of path) value = (value as Record<string, unknown> | undefined)?.[key];
    if (typeof value === 'number' && value > 0) return { bytes: value * scale, field: path.join('.') };
  }
  return undefined;
}

/** Our environment minus the sandbox markers, so the child makes its own namespace. */
function envForFreshSandbox(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('SIMOPEN_SANDBOX')) delete env[name];
  return env;
}

export function stressAvailable(): boolean {
  return existsSync(STRESS_SCRIPT);
}

export async function runStress(options: StressOptions): Promise<StressRun> {
  const dir = mkdtempSync(join(tmpdir(), 'simopen-bench-'));
  const jsonFile = join(dir, 'stress.json');
  let sampler: ReturnType<typeof samplePeakRss> | undefined;
  try {
    const args = [
      '--pairs',
      String(options.pairs),
      '--workers',
      String(options.workers),
      '--payload',
      String(options.payloadBytes),
      '--close',
      options.close,
      '--mode',
      'sandbox',
      '--json',
      jsonFile,
      ...(options.concurrency ? ['--concurrency', String(options.concurrency)] : []),
    ];
    const started = performance.now();
    const child = startScript(STRESS_SCRIPT, args, { env: envForFreshSandbox(), stdin: 'ignore' });
    if (child.pid !== undefined) sampler = samplePeakRss(child.pid);
    const run = { code: await child.exited, stderr: child.stderr() };
    const wallMs = performance.now() - started;
    const sampledPeak = sampler?.stop() ?? 0;
    let summary: StressSummary;
    try {
      summary = JSON.parse(readFileSync(jsonFile, 'utf8')) as StressSummary;
    } catch {
      const why = run.stderr.trim().split('\n').slice(-3).join(' | ');
      throw new Error(`stress.ts (exit ${run.code}) wrote no JSON summary: ${why}`);
    }
    if (typeof summary.pairsPerSec !== 'number' || typeof summary.pairs?.established !== 'number')
      throw new Error('stress.ts JSON lacks pairsPerSec or pairs.established');
    const own = ownPeakRss(summary);
    return {
      summary,
      peakRssBytes: own?.bytes ?? sampledPeak,
      peakRssSource: own ? `stress.ts --json ${own.field}` : 'VmHWM of its process tree, sampled from /proc',
      exitCode: run.code,
      wallMs,
    };
  } finally {
    sampler?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
