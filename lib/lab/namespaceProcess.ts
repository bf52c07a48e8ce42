/**
 * Starts a simopen script inside a lab namespace (`ip netns exec`), with the tsx loader, and lets the
 * caller read its output line by line. The child ends with us: lab teardown also kills whatever is
 * left in the namespaces, but a child that outlives a crashed parent is stopped by its stdin closing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface LabProcess {
  child: ChildProcess;
  /** Every line of stdout and stderr so far. */
  output: string[];
  /** Resolves with the first line matching, rejects if the process exits first. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Calls back for every later line. */
  onLine(listener: (line: string) => void): void;
  exited: Promise<number>;
  stop(): Promise<number>;
}

export function spawnInNamespace(namespace: string, script: string, args: string[]): LabProcess {
  const child = spawn(
    'ip',
    ['netns', 'exec', namespace, process.execPath, '--import', 'tsx', script, ...args],
    { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const output: string[] = [];
  const listeners = new Set<(line: string) => void>();
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on('line', (line) => {
      output.push(line);
      for (const listener of listeners) listener(line);
    });
  }
  const exited = new Promise<number>((resolve) => {
    child.once('close', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : 143)));
  });
  const waitForLine = (pattern: RegExp, timeoutMs = 30_000) =>
    new Promise<string>((resolve, reject) => {
      const earlier = output.find((line) => pattern.test(line));
      if (earlier !== undefined) return resolve(earlier);
      const timer = setTimeout(() => {
        listeners.delete(listener);
        reject(new Error(`${script} in ${namespace}: no line matching ${pattern} within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (line: string) => {
        if (!pattern.test(line)) return;
        clearTimeout(timer);
        listeners.delete(listener);
        resolve(line);
      };
      listeners.add(listener);
      exited.then((code) => {
        if (!listeners.has(listener)) return;
        clearTimeout(timer);
        listeners.delete(listener);
        reject(new Error(`${script} in ${namespace} exited ${code}: ${output.slice(-5).join(' | ')}`));
      });
    });
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return exited;
  };
  const onLine = (listener: (line: string) => void) => {
    listeners.add(listener);
  };
  return { child, output, waitForLine, onLine, exited, stop };
}
