/**
 * The one list of system packages simopen needs (Debian names), what needs each, and the pure decision
 * of what `npm run setup` does about the missing ones. .ci/run installs through this too.
 */
import type { PackagePlan, SetupPlan, SystemFacts, SystemPackage, TracefsPlan } from './types.ts';

export const SYSTEM_PACKAGES: readonly SystemPackage[] = [
  {
    name: 'nftables',
    provides: { command: 'nft' },
    neededBy: 'the sandbox of stress.ts and the bench (drops early RSTs), the NAT lab routers, trace demos',
  },
  {
    name: 'util-linux',
    provides: { command: 'unshare' },
    neededBy: 'private network namespaces (stress.ts, bench, trace demos, unprivileged labs)',
  },
  {
    name: 'iproute2',
    provides: { command: 'ip' },
    neededBy: 'the sandbox loopback and the NAT lab (ip netns, veth links, routes)',
  },
  {
    name: 'socat',
    provides: { command: 'socat' },
    neededBy: 'the interoperability test (an independent peer)',
  },
  { name: 'gcc', provides: { command: 'cc' }, neededBy: "the bench's C reference (bench/simopen_ref.c)" },
  {
    name: 'libc6-dev',
    provides: { file: '/usr/include/stdio.h' },
    neededBy: "the bench's C reference (C library headers)",
  },
  {
    name: 'conntrack',
    provides: { command: 'conntrack' },
    neededBy: 'conntrack figures of the NAT routers (conntrack-tools)',
  },
  {
    name: 'tcpdump',
    provides: { command: 'tcpdump' },
    neededBy: 'lab tests that watch packets at the routers',
  },
  {
    name: 'chromium',
    provides: { command: 'chromium' },
    neededBy: 'the HTML report tests (headless browser)',
  },
];

export const TRACEFS_DIR = '/sys/kernel/tracing';
export const MOUNT_TRACEFS = ['mount', '-t', 'tracefs', 'nodev', TRACEFS_DIR];

const APT_INSTALL = ['apt-get', 'install', '-y', '-qq', '--no-install-recommends'];

/** The apt-get commands that install these packages, as argv lists (run as root). */
export function installCommands(names: readonly string[]): string[][] {
  return [
    ['apt-get', 'update', '-qq'],
    [...APT_INSTALL, ...names],
  ];
}

/** The one line a user without root runs: through sudo when there is one, else su. */
export function rootCommand(names: readonly string[], hasSudo: boolean): string {
  const install = `apt-get install -y --no-install-recommends ${names.join(' ')}`;
  return hasSudo ? `sudo apt-get update && sudo ${install}` : `su -c 'apt-get update && ${install}'`;
}

function planPackages(facts: SystemFacts, checkOnly: boolean): PackagePlan {
  const names = facts.missing.map((pkg) => pkg.name);
  if (names.length === 0) return { action: 'none' };
  if (!facts.hasAptGet) return { action: 'by-hand' };
  if (facts.isRoot && !checkOnly) return { action: 'install', commands: installCommands(names) };
  return { action: 'print', command: rootCommand(names, facts.hasSudo) };
}

function planTracefs(facts: SystemFacts, checkOnly: boolean): TracefsPlan {
  const { mounted, inKernel } = facts.tracefs;
  if (mounted) return { action: 'none' };
  if (!inKernel)
    return {
      action: 'note',
      text: 'this kernel has no tracefs: trace.ts and --trace will sample /proc/net/tcp',
    };
  if (facts.isRoot && !checkOnly) return { action: 'mount', command: MOUNT_TRACEFS };
  return {
    action: 'note',
    text: `tracefs is not mounted (the kernel trace reads it); as root: ${MOUNT_TRACEFS.join(' ')}`,
  };
}

/** What setup does on a machine like this; --check (checkOnly) changes nothing. */
export function planSetup(facts: SystemFacts, checkOnly = false): SetupPlan {
  return {
    missing: facts.missing,
    packages: planPackages(facts, checkOnly),
    tracefs: planTracefs(facts, checkOnly),
  };
}
