/** Runs a simopen script (scripts/NAME.ts) as a real child process, tied to the test (lib/core/childProcess.ts). */
import { type Child, type ChildOptions, REPO_ROOT, startScript } from '../../lib/core/childProcess.ts';

export const repoRoot = REPO_ROOT;

/** `env` adds to ours. */
export function runScript(
  name: string,
  args: string[],
  env: Record<string, string> = {},
  options: ChildOptions = {},
): Child {
  return startScript(`scripts/${name}.ts`, args, { ...options, env: { ...process.env, ...env } });
}
