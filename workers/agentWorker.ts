/**
 * Piscina task module of a stress agent: runs this agent's side of one batch of pairs in this thread
 * (see lib/agent/runSides.ts). A task without a batch is the warm-up: it returns once the module (and
 * the tsx loader) is loaded.
 */
import { runSides } from '../lib/agent/runSides.ts';
import type { SideTask, SideTaskResult } from '../lib/agent/types.ts';

export default function agentTask(task: SideTask | { warmup: true }): Promise<SideTaskResult | null> {
  if ('warmup' in task) return Promise.resolve(null);
  return runSides(task);
}
