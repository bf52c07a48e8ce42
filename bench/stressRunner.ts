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
import type { CloseMode, StressResult } from '../lib/stress/types.ts';

export const STRESS_SCRIPT = fileURLToPath(new URL('../scripts/stress.ts', import.meta.url));

export interface StressScriptOptions {
  pairs: number;
  workers: number;
  payloadBytes: number;
  close: CloseMode;
  /** Pairs in flight (stress.ts --concurrency); its default when absent. */
  concurrency?: number;
  /**
   * A lab run (stress.ts --lab TOPOLOGY) instead of the sandbox: one agent per lab host, with its
   * default workers (the cores shared among the hosts); `workers` is then not passed. The routers'
   * conntrack is watched as a user's run watches it (stress.ts's default: every new entry counted,
   * the events of 1 in N entries followed).
   */
  lab?: string;
  /** More stress.ts options (--open crossed, --trace, --hold D). */
  extraArgs?: string[];
}

export interface StressRun {
  /** stress.ts --json, as written. */
  summary: StressResult;
  /** The summary's peakRssBytes: the process that ran the pool, inside its sandbox, to the end of the run. */
  peakRssBytes: number;
  exitCode: number;
  wallMs: number;
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

/** One run of scripts/stress.ts --mode sandbox (or --lab) --json (a child process, not lib/stress/runStress.ts). */
export async function runStressScript(options: StressScriptOptions): Promise<StressRun> {
  const dir = mkdtempSync(join(tmpdir(), 'simopen-bench-'));
  const jsonFile = join(dir, 'stress.json');
  try {
    const where = options.lab
      ? ['--lab', options.lab, '--quiet']
      : ['--workers', String(options.workers), '--mode', 'sandbox'];
    const args = [
      '--pairs',
      String(options.pairs),
      ...where,
      '--payload',
      String(options.payloadBytes),
      '--close',
      options.close,
      '--json',
      jsonFile,
      ...(options.concurrency ? ['--concurrency', String(options.concurrency)] : []),
      ...(options.extraArgs ?? []),
    ];
    const started = performance.now();
    const child = startScript(STRESS_SCRIPT, args, { env: envForFreshSandbox(), stdin: 'ignore' });
    const run = { code: await child.exited, stderr: child.stderr() };
    const wallMs = performance.now() - started;
    let summary: StressResult;
    try {
      summary = JSON.parse(readFileSync(jsonFile, 'utf8')) as StressResult;
    } catch {
      const why = run.stderr.trim().split('\n').slice(-3).join(' | ');
      throw new Error(`stress.ts (exit ${run.code}) wrote no JSON summary: ${why}`);
    }
    if (typeof summary.pairsPerSec !== 'number' || typeof summary.pairs?.established !== 'number')
      throw new Error('stress.ts JSON lacks pairsPerSec or pairs.established');
    if (typeof summary.peakRssBytes !== 'number') throw new Error('stress.ts JSON lacks peakRssBytes');
    return { summary, peakRssBytes: summary.peakRssBytes, exitCode: run.code, wallMs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
