/**
 * The private network namespace that makes simultaneous open deterministic: the script re-executes
 * itself under unshare, brings lo up and installs nft rules that exist only in that namespace.
 * Nothing on the host's own network or firewall is touched, and it all vanishes with the process.
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { basename } from 'node:path';
import { reexecSelf } from './childProcess.ts';

const SANDBOX_ENV = 'SIMOPEN_SANDBOX';

/**
 * Drops the RST a closed (bound, not yet connecting) port sends back to an early SYN, as a NAT or a
 * stateful firewall drops an unsolicited SYN. Such a RST carries sequence number 0 (RFC 9293: the SYN
 * had no ACK to take it from); a RST from an abortive close does not, so resets still work.
 */
export const DROP_EARLY_RST_RULE = 'oifname "lo" tcp flags & (rst) == rst tcp sequence 0 drop';

/** The nft table that holds the sandbox's rules (DROP_EARLY_RST_RULESET, stress's crossFinsRuleset). */
export const SANDBOX_TABLE = 'inet simopen_sandbox';

/** The sandbox's nft table: DROP_EARLY_RST_RULE in the output hook. */
export const DROP_EARLY_RST_RULESET = `
table ${SANDBOX_TABLE} {
  chain out {
    type filter hook output priority 0;
    ${DROP_EARLY_RST_RULE}
  }
}
`;

/**
 * Inside the namespace: a minimum RTO on the IPv4 loopback routes (a route metric, so any kernel
 * with iproute2 takes it; the tcp_rto_min_us sysctl is newer).
 */
export function setLoopbackRtoMin(ms: number): void {
  if (!insideSandbox())
    throw new Error('setLoopbackRtoMin must run inside the sandbox (see reexecInSandbox)');
  for (const prefix of ['127.0.0.0/8', '127.0.0.1']) {
    const route = ['local', prefix, 'dev', 'lo', 'table', 'local', 'proto', 'kernel', 'scope', 'host'];
    execFileSync('ip', ['route', 'replace', ...route, 'src', '127.0.0.1', 'rto_min', `${ms}ms`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  }
}

export interface SandboxProbe {
  ok: boolean;
  /** Why not, or which unshare flags work. */
  reason: string;
}

function unshareFlagSets(): string[][] {
  // root gets a plain network namespace; anyone else needs a user namespace to hold CAP_NET_ADMIN.
  return process.getuid?.() === 0 ? [['-n'], ['-r', '-n']] : [['-r', '-n']];
}

let cachedFlags: string[] | undefined;
let cachedProbe: SandboxProbe | undefined;

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}

/** Can this machine give us a private network namespace in which nft works? Tries it for real. */
export function probeSandbox(): SandboxProbe {
  if (cachedProbe) return cachedProbe;
  let reason = '';
  for (const flags of unshareFlagSets()) {
    const result = spawnSync('unshare', [...flags, '--', 'nft', 'add', 'table', 'inet', 'simopen_probe'], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    if (result.error) {
      const code = (result.error as NodeJS.ErrnoException).code;
      reason =
        code === 'ENOENT'
          ? 'unshare (util-linux) is not installed'
          : `unshare failed: ${result.error.message}`;
      break;
    }
    if (result.status === 0) {
      cachedFlags = flags;
      cachedProbe = { ok: true, reason: `private network namespace via unshare ${flags.join(' ')}` };
      return cachedProbe;
    }
    const stderr = firstLine(result.stderr ?? '');
    if (/nft.*No such file|failed to execute nft/i.test(stderr)) reason = 'nft (nftables) is not installed';
    else if (/Operation not permitted|Permission denied/i.test(stderr))
      reason = `cannot create a network namespace (unshare ${flags.join(' ')}: ${stderr}); user namespaces may be disabled`;
    else reason = `unshare ${flags.join(' ')} with nft failed: ${stderr || `exit ${result.status}`}`;
  }
  cachedProbe = { ok: false, reason };
  return cachedProbe;
}

/** True in the process that reexecInSandbox started. */
export function insideSandbox(): boolean {
  return process.env[SANDBOX_ENV] === '1';
}

/**
 * Re-runs the current script in a new network namespace and resolves with its exit code (128+N for a
 * signal). The child gets its own process group, so a terminal's Ctrl-C reaches only us and is
 * forwarded once; it is tied to us, so it ends itself if we die (childProcess.ts reexecSelf).
 */
export function reexecInSandbox(extraEnv: Record<string, string> = {}): Promise<number> {
  const probe = probeSandbox();
  if (!probe.ok || !cachedFlags) return Promise.reject(new Error(`no sandbox: ${probe.reason}`));
  return reexecSelf(
    ['unshare', ...cachedFlags, '--'],
    { ...extraEnv, [SANDBOX_ENV]: '1' },
    `${scriptName()}: the run inside the sandbox`,
  );
}

/** The running script's name ("stress" for scripts/stress.ts), for messages. */
function scriptName(): string {
  return basename(process.argv[1] ?? 'simopen').replace(/\.[cm]?[jt]s$/, '');
}

/** Writes an nft ruleset (nft -f -); throws with nft's first error line. */
export function applyNft(ruleset: string): void {
  try {
    execFileSync('nft', ['-f', '-'], { input: ruleset, stdio: ['pipe', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? String(error);
    throw new Error(`nft failed: ${firstLine(stderr)}`);
  }
}

/** Removes the sandbox's rules if there are any (declaring the table first makes the delete safe). */
export function clearSandboxRules(): void {
  applyNft(`table ${SANDBOX_TABLE}\ndelete table ${SANDBOX_TABLE}\n`);
}

/** Inside the namespace: lo up and the ruleset in place. */
export function setupSandboxNetwork(ruleset: string = DROP_EARLY_RST_RULESET): void {
  if (!insideSandbox())
    throw new Error('setupSandboxNetwork must run inside the sandbox (see reexecInSandbox)');
  execFileSync('ip', ['link', 'set', 'lo', 'up'], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (ruleset.trim()) applyNft(ruleset);
}
