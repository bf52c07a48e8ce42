/**
 * Peak resident memory of a process tree, from /proc: every process's VmHWM (its own high-water
 * mark) sampled while it runs. stress.ts re-executes itself under unshare, so the process doing the
 * work is a grandchild of the one we spawn; the figure is the largest VmHWM in the tree. Growth in the
 * last sampling interval before a process exits can be missed.
 */
import { readdirSync, readFileSync } from 'node:fs';

function parentOf(pid: string): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name in parentheses may contain spaces: fields resume after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
  } catch {
    return undefined;
  }
}

function highWaterKb(pid: string): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** The pid and all its descendants now alive. */
function processTree(root: number): string[] {
  const children = new Map<string, string[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const parent = parentOf(entry);
    if (parent === undefined) continue;
    const list = children.get(parent);
    if (list) list.push(entry);
    else children.set(parent, [entry]);
  }
  const tree: string[] = [];
  const queue = [String(root)];
  while (queue.length > 0) {
    const pid = queue.shift() as string;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

export interface PeakRssSampler {
  /** Largest VmHWM seen in the tree, in bytes (0 when /proc gave nothing). */
  stop(): number;
}

export function samplePeakRss(root: number, intervalMs = 250): PeakRssSampler {
  let peakKb = 0;
  const sample = () => {
    for (const pid of processTree(root)) peakKb = Math.max(peakKb, highWaterKb(pid));
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      return peakKb * 1024;
    },
  };
}
