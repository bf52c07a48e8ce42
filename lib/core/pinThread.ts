/**
 * Pins the calling thread to one CPU (sched_setaffinity through taskset on its thread id). Used by
 * stress workers for --close simultaneous in the sandbox: TCP timers are queued on the CPU that arms
 * them, and the two held FINs of a pair cross only if both timers fire in one timer run, which
 * timers on two CPUs' wheels (ticks skewed apart) do not. A thread that stays on one CPU keeps both
 * timers of each of its pairs on that CPU's wheel.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { threadId } from 'node:worker_threads';

/** CPU numbers of a list such as "0-3,6". */
export function parseCpuList(text: string): number[] {
  const cpus: number[] = [];
  for (const part of text.trim().split(',')) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!match?.[1]) continue;
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    for (let cpu = first; cpu <= last; cpu += 1) cpus.push(cpu);
  }
  return cpus;
}

let pinned: number | undefined;

/**
 * Pins this thread to one of the CPUs the process may use, spreading threads by their id. Returns the
 * CPU, or undefined (with the reason on stderr once) when that is not possible here.
 */
export function pinThisThread(): number | undefined {
  if (pinned !== undefined) return pinned;
  try {
    const allowed = /^Cpus_allowed_list:\s*(.+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    const cpus = parseCpuList(allowed ?? '');
    if (cpus.length === 0) throw new Error('no Cpus_allowed_list in /proc/self/status');
    // /proc/thread-self -> "PID/task/TID"
    const tid = readlinkSync('/proc/thread-self').split('/').at(-1) ?? '';
    const cpu = cpus[threadId % cpus.length] as number;
    execFileSync('taskset', ['-p', '-c', String(cpu), tid], { stdio: ['ignore', 'ignore', 'pipe'] });
    pinned = cpu;
  } catch (error) {
    pinned = -1;
    process.stderr.write(`stress: could not pin a worker thread to a CPU (${(error as Error).message})\n`);
  }
  return pinned >= 0 ? pinned : undefined;
}
