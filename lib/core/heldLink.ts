/**
 * The held link: a veth pair inside the sandbox that keeps SYNs in the kernel's neighbour queue until
 * they are released together, so that the two SYNs of a pair cross in flight (stress --open crossed
 * and skew:D).
 *
 * Side A's addresses (10.98.0.0/16) and side B's (10.99.0.0/16) are local to the namespace through
 * AnyIP routes on lo, as 127/8 is. Policy rules send locally generated traffic from A's block to B's
 * out of simA and the reverse out of simB, instead of over lo; it comes in at the other end and is
 * delivered locally. ARP is dropped (an nft arp table), so no neighbour entry resolves by itself: a
 * packet to an address without an entry waits in the entry's unresolved queue. A permanent entry
 * (`ip neigh replace ... nud permanent`) sends what is queued at once; deleting it holds the next
 * packets again. Each address pair has entries of its own, so each wave of pairs has a hold of its
 * own. Everything lives in the sandbox's namespace and vanishes with it.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { type Child, startChild } from './childProcess.ts';
import { applyNft, DROP_EARLY_RST_RULE, insideSandbox, SANDBOX_TABLE } from './sandbox.ts';

/** The two ends of the veth pair: side A's traffic leaves by the first, side B's by the second. */
export const LINK_DEVICES = ['simA', 'simB'] as const;
/** Fixed (locally administered) MACs: a release names the peer's, no lookup needed. */
const LINK_MACS = ['02:73:69:6d:00:0a', '02:73:69:6d:00:0b'] as const;
/** Side A's and side B's address blocks. */
export const LINK_PREFIXES = ['10.98.0.0/16', '10.99.0.0/16'] as const;
/** Routing tables of the two directions, and the preferences of their rules. */
const LINK_TABLES = [198, 199] as const;
const LINK_RULE_PREFS = [10, 11] as const;
/** The `local` table's rule, moved below ours (at 0 it would send A-to-B traffic over lo). */
const LOCAL_RULE_PREF = 100;
/** Address pairs of the link (10.98.x.y with 10.99.x.y). */
export const LINK_ADDRESS_PAIRS = 65_536;
/**
 * An unresolved entry gives up after 3 probes of this interval (then drops its queue and the
 * connects fail EHOSTUNREACH): holds up to about 30 s. A hold lasts from a wave's first connect to
 * its release, or one --delay in skew mode.
 */
export const NEIGHBOUR_RETRANS_MS = 10_000;
export const MAX_HOLD_MS = 3 * NEIGHBOUR_RETRANS_MS;
/** Room in each entry's queue for the packets of the largest wave. */
const UNRESOLVED_QUEUE_BYTES = 64 * 1024 * 1024;
/** The nft table that drops ARP inside the sandbox. */
const NOARP_TABLE = 'arp simopen_noarp';

/** Address `index` (0..65535) of side A (0) or side B (1). */
export function linkAddress(side: 0 | 1, index: number): string {
  return `10.${98 + side}.${index >> 8}.${index & 255}`;
}

/** ip -batch lines that send what is queued for address pair `index`, A's SYNs first. */
export function releaseCommands(index: number): string {
  return (
    `neigh replace ${linkAddress(1, index)} lladdr ${LINK_MACS[1]} dev ${LINK_DEVICES[0]} nud permanent\n` +
    `neigh replace ${linkAddress(0, index)} lladdr ${LINK_MACS[0]} dev ${LINK_DEVICES[1]} nud permanent\n`
  );
}

/**
 * ip -batch lines that hold the next packets of address pair `index` again: each entry is made
 * permanent (what is queued goes) and then deleted, one command each. Deleting an entry that still
 * holds packets would fail them (the kernel reports EHOSTUNREACH to their sockets), and `neigh flush`
 * repeats its dump-and-delete until nothing matches, so a packet queued between its rounds is failed
 * that way: a single `neigh del` of a permanent entry fails nothing.
 */
export function holdCommands(index: number): string {
  const toB = `${linkAddress(1, index)} dev ${LINK_DEVICES[0]}`;
  const toA = `${linkAddress(0, index)} dev ${LINK_DEVICES[1]}`;
  return (
    `neigh replace ${toB.replace(' dev', ` lladdr ${LINK_MACS[1]} dev`)} nud permanent\n` +
    `neigh del ${toB}\n` +
    `neigh replace ${toA.replace(' dev', ` lladdr ${LINK_MACS[0]} dev`)} nud permanent\n` +
    `neigh del ${toA}\n`
  );
}

/**
 * The sandbox's nft rules for a run over the held link: the early-RST rule on lo and, with
 * `dropEarlyRst`, the RST that answers an early SYN dropped on the link too (a NAT); without it that
 * RST reaches the side that sent the SYN (a plain host). (ARP is dropped by setupHeldLink.)
 */
export function heldLinkRuleset(dropEarlyRst: boolean): string {
  const linkRst = dropEarlyRst
    ? `\n    ${DROP_EARLY_RST_RULE.replace('oifname "lo"', `oifname { "${LINK_DEVICES[0]}", "${LINK_DEVICES[1]}" }`)}`
    : '';
  return `
table ${SANDBOX_TABLE} {
  chain out {
    type filter hook output priority 0;
    ${DROP_EARLY_RST_RULE}${linkRst}
  }
}
`;
}

/** No neighbour entry may resolve by itself: every ARP packet is dropped. */
const NOARP_RULESET = `
table ${NOARP_TABLE} {
  chain arpin {
    type filter hook input priority 0; policy drop;
  }
}
`;

function ip(args: string[], input?: string): string {
  try {
    return execFileSync('ip', args, {
      input,
      encoding: 'utf8',
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
  } catch (error) {
    const stderr = String((error as { stderr?: string }).stderr ?? error).trim();
    throw new Error(`held link setup: ip ${args.join(' ')}: ${stderr.split('\n').slice(0, 2).join('; ')}`);
  }
}

/** Removes the link, its rules and the ARP table if an earlier run of this process left them. */
export function clearHeldLink(): void {
  const teardown = [
    `link del ${LINK_DEVICES[0]}`,
    ...LINK_RULE_PREFS.map((pref) => `rule del pref ${pref}`),
    ...LINK_PREFIXES.map((prefix) => `route del local ${prefix} dev lo table local`),
  ];
  try {
    // -force: go on past what is not there (the usual case); its complaints are expected.
    execFileSync('ip', ['-force', '-batch', '-'], { input: `${teardown.join('\n')}\n`, stdio: 'pipe' });
  } catch {}
  try {
    execFileSync('nft', ['-f', '-'], {
      input: `table ${NOARP_TABLE}\ndelete table ${NOARP_TABLE}\n`,
      stdio: 'pipe',
    });
  } catch {}
}

function sysctl(path: string, value: number): void {
  writeFileSync(`/proc/sys/net/ipv4/${path}`, `${value}\n`);
}

/**
 * Inside the sandbox: the veth pair, the address blocks, the policy routing and the neighbour settings
 * of the held link (its nft rules come with the sandbox's ruleset, heldLinkRuleset). Idempotent.
 */
export function setupHeldLink(): void {
  if (!insideSandbox()) throw new Error('setupHeldLink must run inside the sandbox (see reexecInSandbox)');
  clearHeldLink();
  const [devA, devB] = LINK_DEVICES;
  const [prefixA, prefixB] = LINK_PREFIXES;
  const commands = [
    `link add ${devA} address ${LINK_MACS[0]} type veth peer name ${devB} address ${LINK_MACS[1]}`,
    `link set ${devA} up`,
    `link set ${devB} up`,
    `route add local ${prefixA} dev lo table local`,
    `route add local ${prefixB} dev lo table local`,
    `route add ${prefixB} dev ${devA} table ${LINK_TABLES[0]}`,
    `route add ${prefixA} dev ${devB} table ${LINK_TABLES[1]}`,
    `rule add pref ${LINK_RULE_PREFS[0]} iif lo from ${prefixA} to ${prefixB} lookup ${LINK_TABLES[0]}`,
    `rule add pref ${LINK_RULE_PREFS[1]} iif lo from ${prefixB} to ${prefixA} lookup ${LINK_TABLES[1]}`,
  ];
  const rules = ip(['rule', 'show']);
  if (!new RegExp(`^${LOCAL_RULE_PREF}:\\s+from all lookup local`, 'm').test(rules))
    commands.push(`rule add pref ${LOCAL_RULE_PREF} lookup local`);
  if (/^0:\s+from all lookup local/m.test(rules)) commands.push('rule del pref 0');
  ip(['-batch', '-'], `${commands.join('\n')}\n`);
  applyNft(NOARP_RULESET);
  // The packets come in on the other end with a local source address: accept them.
  for (const conf of ['all', devA, devB]) {
    sysctl(`conf/${conf}/rp_filter`, 0);
    sysctl(`conf/${conf}/accept_local`, 1);
  }
  for (const dev of LINK_DEVICES) {
    sysctl(`neigh/${dev}/unres_qlen_bytes`, UNRESOLVED_QUEUE_BYTES);
    sysctl(`neigh/${dev}/retrans_time_ms`, NEIGHBOUR_RETRANS_MS);
  }
}

/**
 * A long-lived `ip -batch -` child: neighbour commands without a fork each. `sync` appends a command
 * that prints one line and calls back when that line arrives, so the caller knows everything written
 * before it is done. Commands run in the order written; their errors are reported, not fatal.
 */
export class IpBatch {
  private readonly child: Child;
  /** Callbacks of the acknowledgements not yet seen, in order. */
  private readonly acks: (() => void)[] = [];
  private closed = false;

  constructor(private readonly onError: (message: string) => void) {
    // -brief: the acknowledging command prints one line; -force: an error does not end the child.
    this.child = startChild('ip', ['-brief', '-force', '-batch', '-'], { retain: false });
    this.child.onLine((line, stream) => {
      if (stream === 'stdout') this.acknowledged();
      else if (line.trim()) this.onError(`ip -batch: ${line.trim()}`);
    });
    this.child.process.stdin?.on('error', (error) => this.onError(`ip -batch: ${error.message}`));
    this.child.exited.then(
      (code) => {
        if (!this.closed) this.onError(`ip -batch exited (code ${code}) while still needed`);
      },
      (error: Error) => this.onError(`ip -batch could not start: ${error.message}`),
    );
  }

  /** Writes commands (lines, each ending in a newline). */
  run(commands: string): void {
    this.child.process.stdin?.write(commands);
  }

  /** Writes commands, then calls `done` once they have all been carried out. */
  sync(commands: string, done: () => void): void {
    this.acks.push(done);
    this.run(`${commands}link show dev lo\n`);
  }

  private acknowledged(): void {
    // A handful at most are outstanding: shift() is cheap here.
    this.acks.shift()?.();
  }

  /** Ends the child (it exits at the end of its input). */
  close(): void {
    this.closed = true;
    this.child.process.stdin?.end();
  }
}
