/**
 * A NAT router's connection tracking, watched over a run (conntrack-tools and nft in the router's
 * namespace): `conntrack -S` before and after; an nft table of the run's own (watchRuleset) that
 * counts, in the kernel, every new entry by direction and, for the router's own host's connections,
 * whether the mapped port is the host's port (port preservation) or another (a clash, or random by
 * design); the event stream (`conntrack -E`) of 1 in N new entries, chosen in the kernel, counted as
 * it comes: the TCP states they entered; and the table's entry count read every 50 ms for its peak.
 * Parsing is pure; the monitor runs the commands.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { type Child, runChild, startChild } from '../core/childProcess.ts';
import type { PortRange } from '../core/types.ts';
import type { ConntrackStats } from './types.ts';

export const CONNTRACK_STAT_FIELDS = [
  'found',
  'invalid',
  'insert',
  'insert_failed',
  'drop',
  'early_drop',
  'error',
  'search_restart',
  'clash_resolve',
  'chaintoolong',
] as const;

/** `conntrack -S` output (one line per CPU, key=value), summed. */
export function parseConntrackStats(text: string): ConntrackStats {
  const stats = Object.fromEntries(
    CONNTRACK_STAT_FIELDS.map((field) => [field, 0]),
  ) as unknown as ConntrackStats;
  for (const match of text.matchAll(/\b([a-z_]+)=(\d+)/g)) {
    const field = match[1] as keyof ConntrackStats;
    if (field in stats) stats[field] += Number(match[2]);
  }
  return stats;
}

/** After minus before, field by field. */
export function statsDelta(before: ConntrackStats, after: ConntrackStats): ConntrackStats {
  return Object.fromEntries(
    CONNTRACK_STAT_FIELDS.map((field) => [field, after[field] - before[field]]),
  ) as unknown as ConntrackStats;
}

/** What the watch showed. */
export interface EventCounts {
  /** Watched entries that entered each TCP state. */
  statesSeen: Record<string, number>;
  /** Every new entry (nft counters, exact): made by the router's host's connections, and from the WAN. */
  newFromLan: number;
  newFromWan: number;
  /** Of newFromLan: mapped to the host's own port, and to another (nft counters, exact). */
  portPreserved: number;
  portChanged: number;
  /** New entries whose events were delivered (1 in N of all, chosen in the kernel; nft counter). */
  entriesWatched: number;
  /** New entries the event stream showed (awk; equals entriesWatched when nothing was lost). */
  newEventsSeen: number;
  /** Events conntrack said it showed. */
  events: number;
  /** The kernel dropped events (the listener's buffer was full): the states are then lower bounds. */
  eventsLost: boolean;
  /** What conntrack said on stderr that was not a known notice. */
  warnings: string[];
}

/** The run's nft table in each router's namespace. */
export const WATCH_TABLE = 'simopen-watch';

/**
 * The watch's nft table, in the router's postrouting after its NAT and before conntrack confirms a
 * new entry (priority 300: the entry is about to be made, with its mapping): named counters of new
 * TCP entries from its LAN and from its WAN, and of those from its LAN whose mapped port (the packet's
 * source port after SNAT) equals the host's port (`ct original proto-src`), by a lookup in a set
 * holding `p . p` for every port p of the run's range (nft compares a field with constants only).
 * A new entry is one not yet confirmed (its first packet): `ct state new` would also match the
 * retransmitted SYNs of an entry that has seen no reply.
 * With `sampleEvery` N > 1, every Nth new entry (numgen: the 1st, the N+1th, ...) keeps its event
 * mask and is counted as watched; the others get an empty one (`ct event set 0`): the kernel builds
 * no event for them at all. N = 1: every entry is watched; N = 0: none (no event stream).
 */
export function watchRuleset(ports: PortRange, sampleEvery: number): string {
  const newEntry = 'ct status & confirmed == 0 meta l4proto tcp';
  const same: string[] = [];
  for (let port = ports.first; port <= ports.last; port += 1) same.push(`${port} . ${port}`);
  const sampling =
    sampleEvery > 1
      ? [
          `    ${newEntry} numgen inc mod ${sampleEvery} vmap { 0 : jump watched, 1-${sampleEvery - 1} : jump quiet }`,
        ]
      : sampleEvery === 1
        ? [`    ${newEntry} counter name "watched"`]
        : [];
  return [
    `table ip ${WATCH_TABLE} {`,
    '  counter lan {',
    '  }',
    '  counter preserved {',
    '  }',
    '  counter wan {',
    '  }',
    '  counter watched {',
    '  }',
    '  set same {',
    '    type inet_service . inet_service',
    `    elements = { ${same.join(', ')} }`,
    '  }',
    '  chain lan {',
    '    counter name "lan"',
    '    tcp sport . ct original proto-src @same counter name "preserved"',
    '  }',
    '  chain watched {',
    '    counter name "watched"',
    '  }',
    '  chain quiet {',
    '    ct event set 0',
    '  }',
    '  chain new {',
    '    type filter hook postrouting priority 300; policy accept;',
    `    ${newEntry} iifname "lan" jump lan`,
    `    ${newEntry} iifname "wan" counter name "wan"`,
    ...sampling,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** `nft -j list counters table ...` -> the named counters' packets. */
export function parseWatchCounters(json: string): Record<string, number> {
  const counters: Record<string, number> = {};
  const parsed = JSON.parse(json) as { nftables?: { counter?: { name?: string; packets?: number } }[] };
  for (const entry of parsed.nftables ?? [])
    if (entry.counter?.name !== undefined) counters[entry.counter.name] = entry.counter.packets ?? 0;
  return counters;
}

/**
 * Counts `conntrack -E -p tcp -o id` lines, in awk (mawk does a line in about half a microsecond, a
 * tenth of what parsing it in the coordinator's JavaScript costs): an entry is counted once per state
 * it enters (an UPDATE that only changes status flags is not a new state), by its id, and NEW events
 * are counted. An event shows the entry's state when the kernel built it, which can already be the
 * next one: a NEW event showing SYN_SENT2 counts SYN_SENT too. Prints one summary line per figure at
 * the end of its input.
 */
export const EVENT_COUNT_AWK = `
$1 == "[NEW]" || $1 == "[UPDATE]" {
  # The state follows the timeout; an event of an entry without a timeout has none before it.
  state = ""
  for (i = 4; i <= 5; i++) if ($i ~ /^[A-Z][A-Z_0-9]*$/) { state = $i; break }
  if (state == "") next
  id = $NF
  if ($1 == "[NEW]") {
    newSeen++
    # Only a SYN opens an entry (the routers drop any other first packet): it entered SYN_SENT even
    # when its NEW event, built a moment after the peer's SYN crossed it, shows SYN_SENT2.
    if (state != "SYN_SENT") { seen["SYN_SENT"]++; last[id] = "SYN_SENT" }
  }
  if (last[id] != state) seen[state]++
  if (state == "TIME_WAIT" || state == "CLOSE") delete last[id]; else last[id] = state
}
END {
  for (s in seen) print "state", s, seen[s]
  print "new", newSeen + 0
}
`;

/** The awk program's summary, and conntrack's own stderr, as counts (the nft counters are added later). */
export function parseEventSummary(summary: string, conntrackStderr: string): EventCounts {
  const counts: EventCounts = {
    statesSeen: {},
    newFromLan: 0,
    newFromWan: 0,
    portPreserved: 0,
    portChanged: 0,
    entriesWatched: 0,
    newEventsSeen: 0,
    events: 0,
    eventsLost: false,
    warnings: [],
  };
  for (const line of summary.split('\n')) {
    const [key, first, second] = line.trim().split(/\s+/);
    if (key === 'state' && first && second !== undefined) counts.statesSeen[first] = Number(second);
    else if (key === 'new') counts.newEventsSeen = Number(first);
  }
  for (const line of conntrackStderr.split('\n').map((text) => text.trim())) {
    const shown = /(\d+) flow events have been shown/.exec(line);
    if (shown) counts.events = Number(shown[1]);
    else if (/ENOBUFS/.test(line)) counts.eventsLost = true;
    else if (
      line &&
      !/^NOTICE:|losing events|buffer size is too small|--buffer-size/.test(line) &&
      counts.warnings.length < 5
    )
      counts.warnings.push(line);
  }
  return counts;
}

/** Runs a command in a namespace and returns its stdout; throws with its stderr's first line. */
export async function execIn(namespace: string, command: string[]): Promise<string> {
  const run = await runChild('ip', ['netns', 'exec', namespace, ...command]);
  if (run.code !== 0)
    throw new Error(
      `${command.join(' ')} in ${namespace}: ${run.stderr.trim().split('\n')[0] || `exit ${run.code}`}`,
    );
  return run.stdout;
}

export async function readConntrackStats(namespace: string): Promise<ConntrackStats> {
  return parseConntrackStats(await execIn(namespace, ['conntrack', '-S']));
}

/** A running watch of one router's events and entry count. */
export interface ConntrackWatch {
  /** Stops the commands, reads the counters, removes the table and returns what they showed. */
  stop(): Promise<EventCounts & { peakEntries: number }>;
}

/** What to watch: the run's ports (for the port-preservation set) and 1 in how many entries' events. */
export interface WatchPlan {
  ports: PortRange;
  /** 0: no event stream (--conntrack-events off); 1: every entry; N: 1 in N (the default). */
  sampleEvery: number;
}

function nftIn(namespace: string, args: string[], input?: string): string {
  try {
    return execFileSync('ip', ['netns', 'exec', namespace, 'nft', ...args], {
      input,
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
      maxBuffer: 1 << 20,
    });
  } catch (error) {
    const stderr = String((error as { stderr?: string }).stderr ?? error).trim();
    throw new Error(`nft ${args.join(' ')} in ${namespace}: ${stderr.split('\n')[0]}`);
  }
}

/**
 * Reads nf_conntrack_count every 50 ms in the namespace, keeping the peak. One bash, no command per
 * reading: `read` opens the sysctl file and reads it whole (bash reads a seekable file in blocks; a
 * sysctl file answers only a read at offset 0), and the pause is `read -t` on its stdin, a pipe this
 * process never writes to: a timeout goes on, end of file (this process gone) ends the loop.
 */
function startEntrySampler(namespace: string): { child: Child; peak: () => number } {
  let peak = 0;
  const child = startChild(
    'ip',
    [
      'netns',
      'exec',
      namespace,
      'bash',
      '-c',
      'while :; do read -r n < /proc/sys/net/netfilter/nf_conntrack_count && echo "$n"; read -r -t 0.05; [ $? -gt 128 ] || exit 0; done',
    ],
    { stdin: 'pipe', output: 'stream' },
  );
  eachLine(child, (line) => {
    const count = Number(line);
    if (count > peak) peak = count;
  });
  return { child, peak: () => peak };
}

/** Lines of a child's stdout as they come, without keeping them. */
function eachLine(child: Child, onLine: (line: string) => void): void {
  let partial = '';
  child.process.stdout?.setEncoding('utf8');
  child.process.stdout?.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
  child.process.stdout?.on('end', () => {
    if (partial) onLine(partial);
  });
}

/** conntrack -E is given this long to subscribe before the run goes on without waiting more. */
const SUBSCRIBE_TIMEOUT_MS = 10_000;
/** NETLINK_NETFILTER, the protocol column of /proc/net/netlink for conntrack's event sockets. */
const NETLINK_NETFILTER = '12';

/**
 * Resolves once a conntrack event listener is subscribed in the network namespace of process `pid`
 * (a netfilter netlink socket there with event groups, in /proc/PID/net/netlink), false if none is by
 * `timeoutMs` or the process is gone.
 */
async function eventsSubscribed(pid: number | undefined, timeoutMs: number): Promise<boolean> {
  const until = performance.now() + timeoutMs;
  while (pid !== undefined && performance.now() < until) {
    let table: string;
    try {
      table = readFileSync(`/proc/${pid}/net/netlink`, 'utf8');
    } catch {
      return false;
    }
    const subscribed = table.split('\n').some((line) => {
      const [, protocol, , groups] = line.trim().split(/\s+/);
      return (
        protocol === NETLINK_NETFILTER &&
        /^[0-9a-f]+$/.test(groups ?? '') &&
        Number.parseInt(groups as string, 16) !== 0
      );
    });
    if (subscribed) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

/**
 * Starts watching a router: the watch table (watchRuleset), then, unless `sampleEvery` is 0,
 * `conntrack -E` (NEW and UPDATE events of TCP, a large socket buffer) piped straight into awk
 * (EVENT_COUNT_AWK: the events never pass through this process), both at nice 19 when sampled: they
 * need little CPU then, and yielding to the pairs makes them wake less often and take more events at
 * a time (the socket buffer holds what waits; were any lost, the report says so); and a loop reading
 * nf_conntrack_count every 50 ms for the peak. Resolves once they run.
 */
export async function watchConntrack(namespace: string, plan: WatchPlan): Promise<ConntrackWatch> {
  nftIn(namespace, ['-f', '-'], watchRuleset(plan.ports, plan.sampleEvery));
  const children: Child[] = [];
  let stderr = '';
  let counter: Child | undefined;
  if (plan.sampleEvery > 0) {
    const conntrack = [
      'conntrack',
      '-E',
      '-p',
      'tcp',
      '-e',
      'NEW,UPDATE',
      '-o',
      'id',
      '-b',
      String(64 << 20),
    ];
    // Sampled, they need little CPU and can yield; every entry's stream needs all it can get.
    const nice = plan.sampleEvery > 1 ? ['nice', '-n', '19'] : [];
    const events = startChild('ip', ['netns', 'exec', namespace, ...nice, ...conntrack], {
      stdin: 'ignore',
      output: 'stream',
    });
    events.process.stderr?.setEncoding('utf8');
    events.process.stderr?.on('data', (chunk: string) => {
      if (stderr.length < 64 * 1024) stderr += chunk;
    });
    const eventsOut = events.process.stdout as NodeJS.ReadableStream;
    const [awk = 'awk', ...awkArgs] = [...nice, 'awk', EVENT_COUNT_AWK];
    counter = startChild(awk, awkArgs, { stdin: eventsOut });
    // awk holds the pipe now; our copy of its reading end is not needed.
    events.process.stdout?.destroy();
    children.push(events);
  }
  const entries = startEntrySampler(namespace);
  children.push(entries.child);
  // The first pair's events must find conntrack subscribed: wait until it is (on a loaded machine
  // that takes longer than any fixed moment), and give the sampler a moment too.
  await new Promise((resolve) => setTimeout(resolve, 100));
  if (plan.sampleEvery > 0) await eventsSubscribed(children[0]?.pid, SUBSCRIBE_TIMEOUT_MS);
  for (const child of [...children, ...(counter ? [counter] : [])])
    if (!child.running()) {
      await Promise.all([...children, ...(counter ? [counter] : [])].map((each) => each.stop('SIGKILL')));
      nftIn(namespace, ['delete', 'table', 'ip', WATCH_TABLE]);
      throw new Error(
        `conntrack watch in ${namespace} ended at once: ${stderr.trim() || counter?.stderr().trim() || entries.child.stderr().trim()}`,
      );
    }
  return {
    async stop() {
      await Promise.all(children.map((child) => child.stop('SIGTERM')));
      // conntrack has ended: awk reads to the end of the pipe, prints its summary and exits.
      if (counter) await counter.exited;
      const counts = parseEventSummary(counter?.stdout() ?? '', stderr);
      const counters = parseWatchCounters(
        nftIn(namespace, ['-j', 'list', 'counters', 'table', 'ip', WATCH_TABLE]),
      );
      nftIn(namespace, ['delete', 'table', 'ip', WATCH_TABLE]);
      counts.newFromLan = counters.lan ?? 0;
      counts.newFromWan = counters.wan ?? 0;
      counts.portPreserved = counters.preserved ?? 0;
      counts.portChanged = counts.newFromLan - counts.portPreserved;
      counts.entriesWatched = counters.watched ?? 0;
      return { ...counts, peakEntries: entries.peak() };
    },
  };
}
