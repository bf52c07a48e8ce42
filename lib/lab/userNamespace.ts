/**
 * The lab for an ordinary user, as patchbay does it: the whole lab command runs inside one new user,
 * network and mount namespace in which we are root. A tmpfs on /run (visible only in that mount
 * namespace) gives `ip netns` a /run/netns to write. Everything the lab builds lives inside and
 * disappears when the command's process ends; other terminals reach it with nsenter.
 */

import { spawnSync } from 'node:child_process';
import { reexecSelf } from '../core/childProcess.ts';

export const USERNS_ENV = 'SIMOPEN_LAB_USERNS';

export function insideLabUserNamespace(): boolean {
  return process.env[USERNS_ENV] === '1';
}

const UNSHARE = ['unshare', '--user', '--map-root-user', '--net', '--mount', '--propagation', 'private'];
// $0 is the program to exec after /run is replaced: keeps argv quoting intact.
const PREPARE = 'mount -t tmpfs -o mode=0755 simopen-lab /run && mkdir -p /run/netns && exec "$0" "$@"';

/** Can this user make the namespaces (unprivileged user namespaces enabled, unshare, ip and nft present)? */
export function probeUserNamespace(): { ok: boolean; reason: string } {
  const result = spawnSync(
    UNSHARE[0] as string,
    [...UNSHARE.slice(1), '--', 'sh', '-c', `${PREPARE}`, 'nft', 'list', 'tables'],
    {
      encoding: 'utf8',
      timeout: 10_000,
    },
  );
  if (result.error) return { ok: false, reason: `unshare failed: ${result.error.message}` };
  if (result.status !== 0)
    return {
      ok: false,
      reason: `cannot make a user+network+mount namespace: ${(result.stderr ?? '').trim().split('\n')[0] || `exit ${result.status}`}`,
    };
  return { ok: true, reason: 'unprivileged, inside a user+network+mount namespace' };
}

/**
 * Re-runs this script inside the namespaces and resolves with its exit code. The child gets its own
 * process group, so a terminal's Ctrl-C reaches only us and is forwarded exactly once (a second
 * SIGINT would interrupt the child's cleanup); it is tied to us, so it ends (and its namespaces with
 * it) if we die, even by SIGKILL.
 */
export function reexecInLabUserNamespace(): Promise<number> {
  return reexecSelf(
    [...UNSHARE, '--', 'sh', '-c', PREPARE],
    { [USERNS_ENV]: '1', [`${USERNS_ENV}_OUTER_UID`]: String(process.getuid?.()) },
    'lab: the run inside the user namespace',
  );
}

/** argv that runs `command` inside the namespaces held by process `pid` (a foreground `lab.ts up`). */
export function enterLabUserNamespace(pid: number, command: string[]): string[] {
  return ['nsenter', '--preserve-credentials', '-U', '-m', '-n', '-t', String(pid), '--', ...command];
}
