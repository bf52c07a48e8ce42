/**
 * A lab's janitor: a small shell, in a session of its own, that removes a root lab (`lab.ts down ID`)
 * when the process that built it ends without removing it (SIGKILL, the OOM killer): it waits on a
 * pipe from that process, whose end closes however the process ends. The builder dismisses it when
 * it removes the lab itself. A user-namespace lab needs none: it ends with the process holding it.
 */
import { REPO_ROOT, scriptCommand, startChild } from '../core/childProcess.ts';

/** `read` returns the dismissal, or fails at the end of the pipe: then the lab goes. */
const JANITOR_SCRIPT = 'read word; [ "$word" = dismissed ] && exit 0; exec "$@"';

export interface LabJanitor {
  /** The builder removes the lab itself: the janitor ends without doing anything. */
  dismiss(): void;
}

export function startLabJanitor(labId: string): LabJanitor {
  const child = startChild(
    'sh',
    ['-c', JANITOR_SCRIPT, 'janitor', ...scriptCommand('scripts/lab.ts', ['down', labId])],
    {
      cwd: REPO_ROOT,
      stdin: 'pipe',
      // Nothing of it is read: the lab's removal, if it comes, runs after we are gone.
      output: 'ignore',
      // Not in our process group: a terminal's Ctrl-C is ours to handle, not the janitor's.
      detached: true,
    },
  );
  // Nothing of ours waits for it.
  child.process.unref();
  const stdin = child.process.stdin as (NodeJS.WritableStream & { unref?: () => void }) | null;
  stdin?.on('error', () => {});
  // The pipe must not keep us alive: it only has to close when we end.
  stdin?.unref?.();
  return {
    dismiss: () => {
      stdin?.end('dismissed\n');
    },
  };
}
