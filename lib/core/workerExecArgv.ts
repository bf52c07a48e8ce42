import { Worker } from 'node:worker_threads';
import { END_WITH_PARENT_PRELOAD } from './childProcess.ts';

/** Flags (and the value after them) that worker threads take, so no probe is needed for them. */
const WORKER_SAFE = /^(--import|--require|-r|--loader|--experimental-loader|--conditions|-C)(=.*)?$/;
const WORKER_SAFE_ALONE = new Set(['--no-warnings', '--enable-source-maps']);

let cached: string[] | undefined;

/**
 * Node flags for worker threads that load TypeScript modules: the parent's own flags, plus the tsx
 * loader when the parent did not come up through it (vitest, or plain node with another loader).
 * The preload that ties a child process to its parent is left out: it belongs to the process. So are
 * flags a worker refuses (V8 and per-process ones, such as --expose-gc or --max-old-space-size=N:
 * `node --expose-gc stress.ts` would otherwise fail to start its pool); Node itself says which, when
 * a probe worker is made with them, and stderr says what was left out.
 */
export function workerExecArgv(): string[] {
  if (cached) return [...cached];
  const inherited = process.execArgv.filter(
    (flag, index, all) => flag !== END_WITH_PARENT_PRELOAD && all[index + 1] !== END_WITH_PARENT_PRELOAD,
  );
  const accepted = withoutRefused(inherited);
  const hasTsx = accepted.some((flag) => /[\\/]tsx[\\/]|^tsx$/.test(flag));
  cached = hasTsx ? accepted : [...accepted, '--import', import.meta.resolve('tsx')];
  return [...cached];
}

function withoutRefused(flags: string[]): string[] {
  const needsProbe = flags.some(
    (flag, index) =>
      !WORKER_SAFE.test(flag) &&
      !WORKER_SAFE_ALONE.has(flag) &&
      !WORKER_SAFE.test(flags[index - 1] ?? '') /* the value of a flag before it */,
  );
  if (!needsProbe) return flags;
  let refused: string[] = [];
  try {
    const probe = new Worker('', { eval: true, execArgv: flags });
    probe.unref();
    void probe.terminate();
    return flags;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw error;
    // "Initiated Worker with invalid execArgv flags: --expose-gc, --max-old-space-size=256"
    refused = ((error as Error).message.split(': ')[1] ?? '').split(', ').filter(Boolean);
  }
  const kept = flags.filter((flag) => !refused.includes(flag));
  process.stderr.write(
    `simopen: worker threads do not take ${refused.join(', ')}: left out of their flags (the main thread keeps ${refused.length === 1 ? 'it' : 'them'})\n`,
  );
  return kept;
}
