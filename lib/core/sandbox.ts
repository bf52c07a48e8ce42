/**
 * The private network namespace that makes simultaneous open deterministic: the script re-executes
 * itself under unshare, brings lo up and installs nft rules that exist only in that namespace.
 * Nothing on the host's own network or firewall is touched, and it all vanishes with the process.
 */

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { waitRelayingSignals } from './childProcess.ts';

const SANDBOX_ENV = 'SIMOPEN_SANDBOX';
const PARENT_FD_ENV = 'SIMOPEN_SANDBOX_PARENT_FD';

/**
 * Drops the RST a closed (bound, not yet connecting) port sends back to an early SYN, as a NAT or a
 * stateful firewall drops an unsolicited SYN. Such a RST carries sequence number 0 (RFC 9293: the SYN
 * had no ACK to take it from); a RST from an abortive close does not, so resets still work.
 */
export const DROP_EARLY_RST_RULESET = `
table inet simopen_sandbox {
  chain out {
    type filter hook output priority 0;
    oifname "lo" tcp flags & (rst) == rst tcp sequence 0 drop
  }
}
`;

/**
 * How long the cross-FINs rules hold a FIN at most. Its tries come at about 0, 0.3, 0.9, 2.1 and 4.5 s
 * (see below): the last one passes whatever happened, well within the default 10 s pair timeout.
 */
export const FIN_HOLD_LIMIT_MS = 3000;
/**
 * Minimum RTO on the sandbox's loopback routes while FINs are held. A held FIN is retried from the
 * probe timer, max(RTO, 200 ms) later: 300 ms puts that timer in the timer wheel's second level
 * (64 jiffies and more at HZ >= 250), whose 8-jiffy granularity makes two timers armed a jiffy apart
 * still expire together. At 200 ms (first level, exact) about 1 pair in 4,000 did not cross.
 */
export const CROSS_FINS_RTO_MIN_MS = 300;
/** An IPv4 flow as the FIN sets key it (stress plans use 127.0.0.0/8 only), and its reverse. */
const FLOW = 'ip saddr . tcp sport . ip daddr . tcp dport';
const REVERSE_FLOW = 'ip daddr . tcp dport . ip saddr . tcp sport';

/**
 * DROP_EARLY_RST_RULESET plus rules that make the two FINs of a connection cross (stress --close
 * simultaneous). On loopback a FIN is delivered inside the shutdown() that sends it, so the peer is in
 * CLOSE_WAIT before it shuts down: an active/passive close, whatever the program does. FINs cross only
 * when both leave before either arrives, which on loopback means in one softirq run: two TCP timers
 * that expire together.
 *
 * A FIN dropped here stays unsent in its socket (FIN_WAIT_1), and the kernel tries it again from a
 * probe timer (max(RTO, 200 ms), then doubling). Every FIN is dropped until both directions of the
 * flow were tried on the same jiffy (fin_recent lives one jiffy): their timers were then armed on
 * that jiffy and expire together, so the next tries both pass (fin_go) in one timer run, and cross.
 * A FIN held for FIN_HOLD_LIMIT_MS without that happening passes (that close is then
 * active/passive, as --trace shows). Use with setLoopbackRtoMin(CROSS_FINS_RTO_MIN_MS).
 */
export function crossFinsRuleset(): string {
  const flowSet = (name: string, timeout: string) => `
  set ${name} {
    type ipv4_addr . inet_service . ipv4_addr . inet_service
    size 1048576
    flags dynamic, timeout
    timeout ${timeout}
  }`;
  return `
table inet simopen_sandbox {${flowSet('fin_recent', '1ms')}${flowSet('fin_go', '10s')}${flowSet('fin_seen', '10s')}${flowSet('fin_held', `${FIN_HOLD_LIMIT_MS}ms`)}
  chain out {
    type filter hook output priority 0;
    oifname "lo" tcp flags & (rst) == rst tcp sequence 0 drop
    oifname "lo" tcp flags & (fin) == fin ${FLOW} @fin_go delete @fin_go { ${FLOW} } accept
    oifname "lo" tcp flags & (fin) == fin ${FLOW} @fin_seen ${FLOW} != @fin_held accept
    oifname "lo" tcp flags & (fin) == fin add @fin_seen { ${FLOW} } add @fin_held { ${FLOW} } continue
    oifname "lo" tcp flags & (fin) == fin update @fin_recent { ${FLOW} } ${REVERSE_FLOW} @fin_recent add @fin_go { ${FLOW} } add @fin_go { ${REVERSE_FLOW} } drop
    oifname "lo" tcp flags & (fin) == fin drop
  }
}
`;
}

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
 * Re-runs the current script (same node flags, so the tsx loader comes along) in a new network
 * namespace and resolves with its exit code (128+N for a signal). The child gets its own process
 * group, so a terminal's Ctrl-C reaches only us and is forwarded once; the child watches a pipe
 * from us and ends itself if we die.
 */
export function reexecInSandbox(extraEnv: Record<string, string> = {}): Promise<number> {
  const probe = probeSandbox();
  if (!probe.ok || !cachedFlags) return Promise.reject(new Error(`no sandbox: ${probe.reason}`));
  const child = spawn(
    'unshare',
    [...cachedFlags, '--', process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    {
      stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
      detached: true,
      env: { ...process.env, ...extraEnv, [SANDBOX_ENV]: '1', [PARENT_FD_ENV]: '3' },
    },
  );
  return waitRelayingSignals(child);
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

/** Inside the namespace: lo up, the ruleset in place, and an exit when the parent goes away. */
export function setupSandboxNetwork(ruleset: string = DROP_EARLY_RST_RULESET): void {
  if (!insideSandbox())
    throw new Error('setupSandboxNetwork must run inside the sandbox (see reexecInSandbox)');
  execFileSync('ip', ['link', 'set', 'lo', 'up'], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (ruleset.trim()) applyNft(ruleset);
  watchParent();
}

let watchingParent = false;

function watchParent(): void {
  const fd = Number(process.env[PARENT_FD_ENV]);
  if (watchingParent || !Number.isInteger(fd) || fd < 3) return;
  watchingParent = true;
  try {
    const pipe = new net.Socket({ fd, readable: true, writable: false });
    pipe.on('error', () => {});
    // EOF on the pipe means the parent is gone: end as if told to.
    pipe.once('close', () => process.kill(process.pid, 'SIGTERM'));
    pipe.resume();
    pipe.unref();
  } catch {
    // No pipe (run by hand with the env set): nothing to watch.
  }
}
