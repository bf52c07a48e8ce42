/** Runs a simopen script as a real child process (node + tsx loader) and watches its output. */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface ScriptRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves when stdout+stderr match, rejects if the process exits first. */
  waitFor: (pattern: RegExp) => Promise<void>;
  /** Resolves with the exit code (or 128+signal). */
  exited: Promise<number>;
}

export function runScript(script: string, args: string[], env: Record<string, string> = {}): ScriptRun {
  const child = spawn(process.execPath, ['--import', 'tsx', `scripts/${script}.ts`, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const watchers = new Set<() => void>();
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    for (const check of watchers) check();
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
    for (const check of watchers) check();
  });
  const exited = new Promise<number>((resolve) => {
    child.once('close', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : 128)));
  });
  const waitFor = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (pattern.test(out) || pattern.test(err)) {
          watchers.delete(check);
          resolve();
        }
      };
      watchers.add(check);
      check();
      exited.then((code) => {
        if (watchers.has(check)) {
          watchers.delete(check);
          reject(
            new Error(`${script} exited ${code} before printing ${pattern}\nstdout: ${out}\nstderr: ${err}`),
          );
        }
      });
    });
  return { child, stdout: () => out, stderr: () => err, waitFor, exited };
}
