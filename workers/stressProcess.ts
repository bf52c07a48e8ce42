/**
 * Entry of a stress process (lib/stress/batchProcess.ts): lib/stress/processPool.ts starts it, with
 * the IPC channel and its spec as the one argument, to run part of a run's batches in the same namespace.
 */
import { type StressProcessSpec, serveBatches } from '../lib/stress/batchProcess.ts';

if (!process.send) {
  process.stderr.write(
    'stressProcess.ts: started without an IPC channel (lib/stress/processPool.ts starts it)\n',
  );
  process.exit(2);
}
serveBatches(JSON.parse(process.argv[2] ?? '') as StressProcessSpec);
