/**
 * Runs scripts/stress.ts with a small, private disk: a tmpfs mounted in a mount namespace of its own
 * (the host's mounts are untouched, and it vanishes with the run). Files on it are copied out when the
 * script ends, so a test can read what a run left on a full disk.
 */
import { execFileSync } from 'node:child_process';
import { type Child, startChild } from '../../lib/core/childProcess.ts';
import { repoRoot } from './runScript.ts';

export interface SmallDiskRun extends Child {
  /** The stress.ts process (a child of the shell that holds the mount). */
  scriptPid: () => Promise<number>;
}

const SCRIPT = `mount -t tmpfs -o size="$SIZE" simopen-test "$DISK" || exit 99
node --import tsx scripts/stress.ts "$@"
code=$?
cp -a "$DISK"/. "$OUT"/
exit $code`;

/** `disk` is an empty directory (the mount point), `out` where its files are copied at the end. */
export function runStressOnSmallDisk(size: string, disk: string, out: string, args: string[]): SmallDiskRun {
  const child = startChild(
    'unshare',
    ['-m', '--propagation', 'private', '--', 'sh', '-c', SCRIPT, 'sh', ...args],
    {
      cwd: repoRoot,
      env: { ...process.env, SIZE: size, DISK: disk, OUT: out },
      stdin: 'ignore',
    },
  );
  const scriptPid = async () => {
    for (let attempt = 0; attempt < 200; attempt += 1) {
      // The shell's other children (mount, cp) come and go: the script is the one running stress.ts.
      const pid = childPids(child.pid as number, 'scripts/stress.ts')[0];
      if (pid) return pid;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error('stress.ts did not start');
  };
  return Object.assign(child, { scriptPid });
}

/** The direct children of a process, those whose command line holds `command` if given. */
export function childPids(pid: number, command = ''): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.includes(command))
      .map((line) => Number.parseInt(line.trim(), 10))
      .filter((child) => child > 0);
  } catch {
    return []; // ps exits 1 when there is none
  }
}
