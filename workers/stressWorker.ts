/**
 * Piscina task module of stress.ts: runs one batch of pairs in this thread (see lib/stress/runBatch.ts).
 * A task without a batch is the warm-up: it returns the thread's id once the module (and the tsx
 * loader) is loaded.
 */
import { threadId } from 'node:worker_threads';
import { runBatch } from '../lib/stress/runBatch.ts';
import type { BatchResult, BatchTask, WarmupTask } from '../lib/stress/types.ts';

export default function stressTask(task: BatchTask | WarmupTask): Promise<BatchResult | number> {
  if ('warmup' in task) return Promise.resolve(threadId);
  return runBatch(task);
}
