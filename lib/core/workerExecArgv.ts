/**
 * Node flags for worker threads that load TypeScript modules: the parent's own flags, plus the tsx
 * loader when the parent did not come up through it (vitest, or plain node with another loader).
 */
export function workerExecArgv(): string[] {
  const inherited = process.execArgv;
  const hasTsx = inherited.some((flag) => /[\\/]tsx[\\/]|^tsx$/.test(flag));
  return hasTsx ? [...inherited] : [...inherited, '--import', import.meta.resolve('tsx')];
}
