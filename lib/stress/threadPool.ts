/**
 * The Piscina pool of worker threads that runs a stress run's batches (workers/stressWorker.ts), one
 * way for the main thread of a run (lib/stress/runStress.ts) and for a stress process of a run spread
 * over several (lib/stress/batchProcess.ts).
 */
import { performance } from 'node:perf_hooks';
import { Piscina } from 'piscina';
import { workerExecArgv } from '../core/workerExecArgv.ts';
import type { BatchPool, BatchResult, BatchTask, WarmupTask } from './types.ts';

const WORKER_FILE = new URL('../../workers/stressWorker.ts', import.meta.url).href;

/**
 * The workers' young generation (MiB). Every pair leaves garbage; with V8's default young generation
 * the heaps keep growing for a few hundred thousand pairs before they settle. A small one settles them
 * early, so peak RSS stays flat across pair counts, without costing rate (docs/design.md). A hold
 * keeps its pairs, not its garbage: a smaller one still keeps the resident memory per held pair down
 * (docs/stress.md), at the cost of more frequent collections while the pairs open.
 */
export const YOUNG_GENERATION_MB = { run: 8, hold: 2 } as const;

/**
 * A Piscina pool of `threads` worker threads running `filename`, each up to `tasksPerThread` tasks at
 * once: a run's batches here, an agent's batches of sides in lib/agent/agentServer.ts.
 */
export function batchThreadPool<Task, Result>(
  filename: string,
  threads: number,
  tasksPerThread: number,
  youngGenerationMb: number,
): Piscina<Task, Result> {
  return new Piscina<Task, Result>({
    filename,
    minThreads: threads,
    maxThreads: threads,
    concurrentTasksPerWorker: tasksPerThread,
    // Workers do async I/O between tasks: they must not block in Atomics.wait.
    atomics: 'disabled',
    idleTimeout: 60_000,
    execArgv: workerExecArgv(),
    resourceLimits: { maxYoungGenerationSizeMb: youngGenerationMb },
  });
}

/** `threads` worker threads, each running up to `batchesPerThread` batches at once. */
export function startThreadPool(
  threads: number,
  batchesPerThread: number,
  youngGenerationMb: number = YOUNG_GENERATION_MB.run,
): BatchPool {
  return batchThreadPool<BatchTask | WarmupTask, BatchResult | number>(
    WORKER_FILE,
    threads,
    batchesPerThread,
    youngGenerationMb,
  );
}

/** Waiting for every thread gives up after this long: the run goes on with what is loaded. */
const WARM_THREADS_MAX_MS = 60_000;
const WARM_RETRY_MS = 20;

/**
 * Resolves once each of `threads` threads has answered a warm-up task (with its threadId). Piscina
 * hands tasks to the threads that are ready, so one warm-up per thread can all go to the first thread
 * loaded while the others still load, and what is measured after (a hold's resident set at its start)
 * would then grow by their loading.
 */
export async function warmEveryThread(
  run: (task: WarmupTask) => Promise<unknown>,
  threads: number,
): Promise<void> {
  const seen = new Set<unknown>();
  const until = performance.now() + WARM_THREADS_MAX_MS;
  for (;;) {
    const answers = await Promise.all(Array.from({ length: threads }, () => run({ warmup: true })));
    for (const answer of answers) seen.add(answer);
    if (seen.size >= threads || performance.now() > until) return;
    await new Promise((resolve) => setTimeout(resolve, WARM_RETRY_MS));
  }
}
