/**
 * The impure half of `npm run setup`: look at this machine (which packages' commands or files exist,
 * whether tracefs is mounted) and run the commands the plan (systemPackages.ts) chose.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { waitRelayingSignals } from '../core/childProcess.ts';
import { SYSTEM_PACKAGES, TRACEFS_DIR } from './systemPackages.ts';
import type { SystemFacts, SystemPackage } from './types.ts';

// An ordinary user's PATH often lacks the sbin directories where nft, ip and conntrack live.
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

function exists(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

export function commandExists(name: string): boolean {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  return dirs.some((dir) => exists(join(dir, name), constants.X_OK));
}

export function isInstalled(pkg: SystemPackage): boolean {
  return 'command' in pkg.provides
    ? commandExists(pkg.provides.command)
    : exists(pkg.provides.file, constants.R_OK);
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

/** From /proc (readable by anyone; /sys/kernel/tracing itself is root-only). */
function tracefsState(): SystemFacts['tracefs'] {
  const mounts = readOr('/proc/mounts', '');
  return {
    mounted: mounts.split('\n').some((line) => {
      const [, where, type] = line.split(' ');
      return where === TRACEFS_DIR && type === 'tracefs';
    }),
    inKernel: /\ttracefs$/m.test(readOr('/proc/filesystems', '')),
  };
}

export function probeSystem(packages: readonly SystemPackage[] = SYSTEM_PACKAGES): SystemFacts {
  return {
    isRoot: process.getuid?.() === 0,
    hasAptGet: commandExists('apt-get'),
    hasSudo: commandExists('sudo'),
    missing: packages.filter((pkg) => !isInstalled(pkg)),
    tracefs: tracefsState(),
  };
}

export interface CommandOutcome {
  ok: boolean;
  /** The command's exit code (128 + N when signal N ended it). */
  code: number;
  /** We got SIGINT, SIGTERM or SIGHUP meanwhile (relayed to the command). */
  interrupted: boolean;
}

/**
 * Runs one command of the plan, quietly on stdout (its errors reach our stderr), relaying our signals
 * to it: an apt-get stopped halfway is its own to clean up.
 */
export async function runPlanCommand(argv: readonly string[]): Promise<CommandOutcome> {
  let interrupted = false;
  const note = () => {
    interrupted = true;
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, note);
  try {
    const child = spawn(argv[0] ?? '', argv.slice(1), {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      detached: true,
    });
    const code = await waitRelayingSignals(child);
    return { ok: code === 0, code, interrupted };
  } catch {
    return { ok: false, code: 127, interrupted };
  } finally {
    for (const signal of signals) process.off(signal, note);
  }
}
