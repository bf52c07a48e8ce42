/** Waiting for child processes: their exit code the shell's way, and relaying our signals to them. */
import type { ChildProcess } from 'node:child_process';
import { constants } from 'node:os';

/** A child's exit code, or 128 + the signal's number when a signal ended it (as a shell reports it). */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  return code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
}

const RELAYED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Relays SIGINT/SIGTERM/SIGHUP to a child in its own process group (a re-executed copy of this script)
 * until it exits, and resolves with its exit code. A child ended by a signal (SIGKILL from outside, or
 * the OOM killer) printed nothing about it: `label` then names it on stderr, so the code is not silent. npm/npx/tsx wrappers relay the terminal's signal to
 * us as well: the same signal twice within 500 ms is forwarded once, so a second one cannot interrupt
 * the child's cleanup.
 */
export function waitRelayingSignals(child: ChildProcess, label?: string): Promise<number> {
  let last = { signal: '', at: 0 };
  const forward = (signal: NodeJS.Signals) => {
    const now = Date.now();
    if (last.signal === signal && now - last.at < 500) return;
    last = { signal, at: now };
    child.kill(signal);
  };
  for (const signal of RELAYED) process.on(signal, forward);
  const stopRelaying = () => {
    for (const signal of RELAYED) process.off(signal, forward);
  };
  return new Promise((resolve, reject) => {
    child.once('error', (error) => {
      stopRelaying();
      reject(error);
    });
    child.once('exit', (code, signal) => {
      stopRelaying();
      const exitCode = exitCodeOf(code, signal);
      if (signal && label)
        process.stderr.write(
          `${label} (pid ${child.pid}) was killed by ${signal}: no report (exit ${exitCode})\n`,
        );
      resolve(exitCode);
    });
  });
}
