/**
 * Piscina task module of a stress agent: runs this agent's side of one batch of pairs in this thread
 * (see lib/agent/runSides.ts). A task without a batch is the warm-up: it returns the thread's id once the
 * module (and the tsx loader) is loaded.
 */
import { threadId } from 'node:worker_threads';
import { runSides } from '../lib/agent/runSides.ts';
import type { SideTask, SideTaskResult } from '../lib/agent/types.ts';
import type { WarmupTask } from '../lib/stress/types.ts';

export default function agentTask(task: SideTask | WarmupTask): Promise<SideTaskResult | number> {
  if ('warmup' in task) return Promise.resolve(threadId);
  return runSides(task);
}
