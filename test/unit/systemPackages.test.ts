/**
 * npm run setup, the pure part: which packages are missing decides which command is run or printed,
 * and what happens to tracefs.
 */
import { describe, expect, it } from 'vitest';
import {
  installCommands,
  MOUNT_TRACEFS,
  planSetup,
  rootCommand,
  SYSTEM_PACKAGES,
} from '../../lib/setup/systemPackages.ts';
import type { SystemFacts, SystemPackage } from '../../lib/setup/types.ts';

const byName = (...names: string[]): SystemPackage[] =>
  names.map((name) => {
    const pkg = SYSTEM_PACKAGES.find((entry) => entry.name === name);
    if (!pkg) throw new Error(`no package ${name} in the list`);
    return pkg;
  });

const facts = (overrides: Partial<SystemFacts>): SystemFacts => ({
  isRoot: false,
  hasAptGet: true,
  hasSudo: false,
  missing: [],
  tracefs: { mounted: true, inKernel: true },
  ...overrides,
});

describe('the system package list', () => {
  it('holds what CI installs and what the next features need, each with its reason and a probe', () => {
    expect(SYSTEM_PACKAGES.map((pkg) => pkg.name).sort()).toEqual(
      [
        'chromium',
        'conntrack',
        'gcc',
        'iproute2',
        'libc6-dev',
        'nftables',
        'socat',
        'tcpdump',
        'util-linux',
      ].sort(),
    );
    for (const pkg of SYSTEM_PACKAGES) {
      expect(pkg.neededBy.length).toBeGreaterThan(10);
      expect('command' in pkg.provides || 'file' in pkg.provides).toBe(true);
    }
    expect(byName('nftables')[0]?.provides).toEqual({ command: 'nft' });
    expect(byName('util-linux')[0]?.provides).toEqual({ command: 'unshare' });
  });
});

describe('planSetup', () => {
  it('does nothing when nothing is missing and tracefs is mounted, root or not', () => {
    for (const isRoot of [true, false])
      expect(planSetup(facts({ isRoot }))).toEqual({
        missing: [],
        packages: { action: 'none' },
        tracefs: { action: 'none' },
      });
  });

  it('as root installs exactly the missing packages with apt-get, update first', () => {
    const plan = planSetup(facts({ isRoot: true, missing: byName('nftables', 'socat') }));
    expect(plan.packages).toEqual({
      action: 'install',
      commands: [
        ['apt-get', 'update', '-qq'],
        ['apt-get', 'install', '-y', '-qq', '--no-install-recommends', 'nftables', 'socat'],
      ],
    });
    expect(plan.missing.map((pkg) => pkg.name)).toEqual(['nftables', 'socat']);
  });

  it('without root prints the one command to run: su without sudo, sudo with it', () => {
    const missing = byName('conntrack', 'chromium');
    expect(planSetup(facts({ missing })).packages).toEqual({
      action: 'print',
      command: "su -c 'apt-get update && apt-get install -y --no-install-recommends conntrack chromium'",
    });
    expect(planSetup(facts({ missing, hasSudo: true })).packages).toEqual({
      action: 'print',
      command: 'sudo apt-get update && sudo apt-get install -y --no-install-recommends conntrack chromium',
    });
  });

  it('--check as root prints instead of installing, and mounts nothing', () => {
    const plan = planSetup(
      facts({
        isRoot: true,
        missing: byName('gcc', 'libc6-dev'),
        tracefs: { mounted: false, inKernel: true },
      }),
      true,
    );
    expect(plan.packages).toEqual({
      action: 'print',
      command: "su -c 'apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev'",
    });
    expect(plan.tracefs.action).toBe('note');
  });

  it('without apt-get names the packages and runs nothing', () => {
    expect(planSetup(facts({ isRoot: true, hasAptGet: false, missing: byName('tcpdump') })).packages).toEqual(
      {
        action: 'by-hand',
      },
    );
  });

  it('mounts tracefs as root when the kernel has it and nobody mounted it; otherwise says what to do', () => {
    expect(planSetup(facts({ isRoot: true, tracefs: { mounted: false, inKernel: true } })).tracefs).toEqual({
      action: 'mount',
      command: MOUNT_TRACEFS,
    });
    expect(MOUNT_TRACEFS).toEqual(['mount', '-t', 'tracefs', 'nodev', '/sys/kernel/tracing']);
    const userNote = planSetup(facts({ tracefs: { mounted: false, inKernel: true } })).tracefs;
    expect(userNote).toEqual({ action: 'note', text: expect.stringContaining(MOUNT_TRACEFS.join(' ')) });
    const noKernel = planSetup(facts({ isRoot: true, tracefs: { mounted: false, inKernel: false } })).tracefs;
    expect(noKernel).toEqual({ action: 'note', text: expect.stringContaining('no tracefs') });
  });
});

describe('the commands themselves', () => {
  it('installCommands and rootCommand name the packages in order', () => {
    expect(installCommands(['a', 'b']).at(-1)?.slice(-2)).toEqual(['a', 'b']);
    expect(rootCommand(['x'], true)).toBe(
      'sudo apt-get update && sudo apt-get install -y --no-install-recommends x',
    );
  });
});
