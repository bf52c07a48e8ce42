/**
 * A stress process: one of several that run the pairs of one sandbox run in the same network
 * namespace, when one process may not open the descriptors the run holds at once (a --hold of more
 * pairs than RLIMIT_NOFILE allows: Piscina's threads share their process's descriptors, and the hard
 * limit cannot be raised). lib/stress/processPool.ts starts them. It runs the batches its parent sends
 * on a thread pool of its own, with a control buffer of its own, appends the pair log through the
 * descriptor it was given, and sends back over the IPC channel the batches' results, its counters and
 * its resident set. Its parent decides when it stops: signals are the parent's to handle, and the IPC
 * channel closing (the parent exited, however) ends it.
 */
import { INTERRUPT_SIGNALS } from '../core/childProcess.ts';
import { startThreadPool, warmEveryThread } from './threadPool.ts';
import {
  type BatchTask,
  CONTROL,
  type FromStressProcess,
  type ToStressProcess,
  type WarmupTask,
} from './types.ts';

/** What the parent tells a stress process when it starts it (one JSON argument). */
export interface StressProcessSpec {
  threads: number;
  batchesPerThread: number;
  /** The workers' young generation (lib/stress/threadPool.ts). */
  youngGenerationMb: number;
  /** The pair log's descriptor in this process, or -1. */
  logFd: number;
}

/** How often counters and the resident set go to the parent (besides with every result). */
export const COUNTS_INTERVAL_MS = 100;
/** After the parent is gone, the pool gets this long to end before the process exits anyway. */
const EXIT_GRACE_MS = 2000;

export function serveBatches(spec: StressProcessSpec): void {
  const send = (message: FromStressProcess) => {
    if (process.connected) process.send?.(message);
  };
  const control = new SharedArrayBuffer(CONTROL.length * 4);
  const counters = new Int32Array(control);
  const pool = startThreadPool(spec.threads, spec.batchesPerThread, spec.youngGenerationMb);
  pool.on('error', (error) => send({ type: 'workerDied', error: String(error) }));
  const sendCounts = () =>
    send({
      type: 'counts',
      counts: Array.from(counters),
      rssBytes: process.memoryUsage.rss(),
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
    });
  const ticker = setInterval(sendCounts, COUNTS_INTERVAL_MS);

  process.on('message', (message: ToStressProcess) => {
    if (message.type === 'control') {
      Atomics.store(counters, CONTROL.logFailed, message.logFailed);
      Atomics.store(counters, CONTROL.stop, message.stop);
      return;
    }
    const { id, task } = message;
    const local: BatchTask | WarmupTask =
      'warmup' in task
        ? task
        : { ...task, control, config: { ...task.config, logFd: task.config.logFd >= 0 ? spec.logFd : -1 } };
    pool.run(local).then(
      (result) => {
        // The counters first: when the parent takes the result, its counts include the batch.
        sendCounts();
        send({ type: 'result', id, result });
      },
      (error: unknown) => {
        sendCounts();
        send({ type: 'failed', id, error: error instanceof Error ? error.message : String(error) });
      },
    );
  });
  process.on('disconnect', () => {
    clearInterval(ticker);
    // The parent is gone: pairs in flight are cancelled, nobody takes their results.
    Atomics.store(counters, CONTROL.stop, 1);
    setTimeout(() => process.exit(0), EXIT_GRACE_MS).unref();
    pool.destroy().finally(() => process.exit(0));
  });
  // A terminal's Ctrl-C reaches the whole process group: the parent stops the run, through the channel.
  for (const signal of INTERRUPT_SIGNALS) process.on(signal, () => {});
  // Ready once every thread is loaded: the run's resident set at a hold's start includes them all.
  void warmEveryThread((task) => pool.run(task), spec.threads).then(() => send({ type: 'ready' }));
}
