/**
 * Child processes of the benchmark: run one, collect its output, and stop every running one when the
 * benchmark is interrupted, so nothing outlives it.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { exitCodeOf } from '../lib/core/childProcess.ts';

const running = new Set<ChildProcess>();

export interface ChildRun {
  /** Exit code, or 128 + signal number. */
  code: number;
  stdout: string;
  stderr: string;
  pid: number;
}

export interface ChildOptions {
  env?: NodeJS.ProcessEnv;
  /** Pass the child's stderr through to ours as it comes (progress lines). */
  passStderr?: boolean;
}

export function runChild(command: string, args: string[], options: ChildOptions = {}): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
      if (options.passStderr) process.stderr.write(text);
    });
    child.once('error', (error) => {
      running.delete(child);
      reject(error);
    });
    child.once('close', (code, signal) => {
      running.delete(child);
      resolve({
        code: exitCodeOf(code, signal),
        stdout,
        stderr,
        pid: child.pid ?? 0,
      });
    });
  });
}

/** Forwards a signal to every running child (stress.ts cleans up its own namespace on SIGINT/SIGTERM). */
export function signalChildren(signal: NodeJS.Signals): number {
  for (const child of running) child.kill(signal);
  return running.size;
}
