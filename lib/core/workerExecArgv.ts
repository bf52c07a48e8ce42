import { END_WITH_PARENT_PRELOAD } from './childProcess.ts';

/**
 * Node flags for worker threads that load TypeScript modules: the parent's own flags, plus the tsx
 * loader when the parent did not come up through it (vitest, or plain node with another loader).
 * The preload that ties a child process to its parent is left out: it belongs to the process.
 */
export function workerExecArgv(): string[] {
  const inherited = process.execArgv.filter(
    (flag, index, all) => flag !== END_WITH_PARENT_PRELOAD && all[index + 1] !== END_WITH_PARENT_PRELOAD,
  );
  const hasTsx = inherited.some((flag) => /[\\/]tsx[\\/]|^tsx$/.test(flag));
  return hasTsx ? inherited : [...inherited, '--import', import.meta.resolve('tsx')];
}
