/**
 * Where a stress run goes: in the sandbox (a private network namespace; the script re-executes itself
 * there), or in race mode on the host loopback, asked for or as the fallback when no sandbox can be
 * made. Pure apart from what the context gives it, so a test can call it in process with any probe.
 */
import { ExitError, UsageError } from '../core/errors.ts';
import { heldLinkRuleset } from '../core/heldLink.ts';
import { DROP_EARLY_RST_RULESET, type SandboxProbe } from '../core/sandbox.ts';
import { CROSS_FINS_RTO_MIN_MS, crossFinsRuleset } from './finCrossing.ts';
import { parseStressOptions } from './options.ts';
import type { AddressPlan, StressOptions } from './types.ts';

/** --mode sandbox asked for, but no private network namespace can be made here. */
export const EXIT_NO_SANDBOX = 3;

/** The re-executed child learns from this why it runs in the sandbox (for the report). */
export const MODE_REASON_ENV = 'SIMOPEN_STRESS_MODE_REASON';

/**
 * glibc's malloc gives the threads of a process up to 8 arenas per core, each keeping the memory its
 * threads freed. A hold keeps thousands of sockets' native memory for its whole length: with two
 * arenas the held run's resident set stays lower (docs/stress.md, holding pairs).
 */
export const HOLD_MALLOC_ARENA_MAX = '2';

export interface ModeContext {
  /** Default worker count. */
  cores: number;
  /** True in the process that reexecInSandbox started. */
  insideSandbox: boolean;
  /** Can a sandbox be made here (lib/core/sandbox.ts probeSandbox)? Called only when needed. */
  probe: () => SandboxProbe;
  /** A random first address pair for runs on a shared loopback, or traced ones (the tracepoint is global). */
  randomRound: () => number;
  /** The reason the parent put into MODE_REASON_ENV, inside the sandbox. */
  reasonFromParent?: string;
  /** This process's open-files limit (lib/core/processLimits.ts): a --hold that needs more is refused. */
  openFilesLimit?: number;
}

/** The sandbox's network as the run needs it: the nft ruleset, for crossing FINs a minimum RTO, for --open crossed and skew the held link. */
export interface SandboxNetwork {
  ruleset: string;
  rtoMinMs?: number;
  heldLink?: boolean;
}

/** How the SYNs meet, for the mode line of the report. */
export function describeOpen(options: StressOptions): string {
  if (options.open === 'one-sided') return 'early RSTs dropped by nft';
  return `SYNs held on a veth link${options.open === 'skew' && options.earlySyn === 'drop' ? ', early RSTs dropped by nft' : ''}`;
}

/** The network a run in the sandbox needs. */
export function sandboxNetwork(options: StressOptions): SandboxNetwork {
  // On loopback the first FIN arrives inside the shutdown() that sends it: held, the FINs cross.
  if (options.close === 'simultaneous')
    return { ruleset: crossFinsRuleset(), rtoMinMs: CROSS_FINS_RTO_MIN_MS };
  if (options.open === 'one-sided') return { ruleset: DROP_EARLY_RST_RULESET };
  // crossed: no SYN is early, so no RST to drop (one would mean a pair missed its hold: it fails, visibly).
  return { ruleset: heldLinkRuleset(options.open === 'skew' && options.earlySyn === 'drop'), heldLink: true };
}

export type ModeChoice =
  | { action: 'help' }
  /** Re-run this script in the sandbox; the child reports `reason`; `env`: what else it needs (reexecEnv). */
  | { action: 'reexec'; reason: string; env?: Record<string, string> }
  | {
      action: 'run';
      options: StressOptions;
      plan: AddressPlan;
      modeReason: string;
      /** Inside the sandbox: what to set up before the first pair. */
      network?: SandboxNetwork;
      /** The fallback to race mode: one line for stderr. */
      warning?: string;
    };

/**
 * Parses the arguments and decides. Usage errors are UsageError (exit 2); --mode sandbox where no
 * sandbox can be made is an ExitError with EXIT_NO_SANDBOX.
 */
export function chooseMode(args: string[], context: ModeContext): ModeChoice {
  const { cores, openFilesLimit } = context;
  const first = parseStressOptions(args, { cores, openFilesLimit });
  if (first.help) return { action: 'help' };
  const { options } = first;
  if (options.mode === 'race') {
    // A random first address pair: TIME_WAITs of an earlier run on the shared loopback are elsewhere.
    const parsed = parseStressOptions(args, {
      cores,
      openFilesLimit,
      mode: 'race',
      roundOffset: context.randomRound(),
    });
    if (parsed.help) return { action: 'help' };
    return {
      action: 'run',
      ...parsed,
      modeReason: 'asked for; host loopback, sides retry from different threads',
    };
  }
  if (context.insideSandbox) {
    // The tracepoint sees other namespaces' sockets too: a random address block keeps our 4-tuples apart.
    const parsed = options.trace
      ? parseStressOptions(args, { cores, openFilesLimit, roundOffset: context.randomRound() })
      : first;
    if (parsed.help) return { action: 'help' };
    return {
      action: 'run',
      options: parsed.options,
      plan: parsed.plan,
      modeReason:
        context.reasonFromParent ??
        `private network namespace, ${options.open === 'one-sided' ? 'early RSTs dropped' : describeOpen(options)}`,
      network: sandboxNetwork(options),
    };
  }
  const probe = context.probe();
  if (probe.ok) {
    const held = options.close === 'simultaneous' ? ', FINs held until both sides sent theirs' : '';
    return {
      action: 'reexec',
      reason: `${options.modeExplicit ? 'asked for' : 'default'}; ${probe.reason}, ${describeOpen(options)}${held}`,
      ...(options.holdMs > 0 ? { env: { MALLOC_ARENA_MAX: HOLD_MALLOC_ARENA_MAX } } : {}),
    };
  }
  if (options.modeExplicit)
    throw new ExitError(`--mode sandbox is not possible here: ${probe.reason}`, EXIT_NO_SANDBOX);
  let parsed: ReturnType<typeof parseStressOptions>;
  try {
    parsed = parseStressOptions(args, {
      cores,
      openFilesLimit,
      mode: 'race',
      roundOffset: context.randomRound(),
    });
  } catch (error) {
    // Valid for the sandbox, not for the fallback (e.g. --workers 1): say why race mode came into it.
    if (error instanceof UsageError)
      throw new UsageError(
        `no sandbox (${probe.reason}), and the race-mode fallback refuses: ${error.message}`,
      );
    throw error;
  }
  if (parsed.help) return { action: 'help' };
  return {
    action: 'run',
    options: parsed.options,
    plan: parsed.plan,
    modeReason: `fallback: no sandbox (${probe.reason})`,
    warning:
      `no sandbox (${probe.reason}); falling back to race mode on the host loopback, ` +
      'which opens tens to hundreds of pairs per second where the sandbox opens tens of thousands. ' +
      'For the sandbox: npm run setup as root (installs nftables, util-linux, iproute2), ' +
      'then run this again (as root if user namespaces are disabled)',
  };
}

/** The sandboxed child's environment: the mode's reason, and the choice's variables the user has not set. */
export function reexecEnv(
  choice: { reason: string; env?: Record<string, string> },
  inherited: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const env: Record<string, string> = { [MODE_REASON_ENV]: choice.reason };
  for (const [name, value] of Object.entries(choice.env ?? {}))
    if (inherited[name] === undefined) env[name] = value;
  return env;
}
