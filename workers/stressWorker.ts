/**
 * Piscina task module of stress.ts: runs one batch of pairs in this thread (see lib/stress/runBatch.ts).
 * A task without a batch is the warm-up: it returns once the module (and the tsx loader) is loaded.
 */
import { runBatch } from '../lib/stress/runBatch.ts';
import type { BatchResult, BatchTask } from '../lib/stress/types.ts';

export default function stressTask(task: BatchTask | { warmup: true }): Promise<BatchResult | null> {
  if ('warmup' in task) return Promise.resolve(null);
  return runBatch(task);
}
