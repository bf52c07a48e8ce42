/**
 * A NAT router's connection tracking, watched over a run (conntrack-tools in the router's namespace):
 * `conntrack -S` before and after; the event stream (`conntrack -E`), counted as it comes: entries
 * per TCP state they entered, new entries by direction, and for the router's own host's connections
 * whether the mapped port is the host's port (port preservation) or another (a clash, or random by
 * design); and the table's entry count sampled every 50 ms for its peak. Parsing is pure; the
 * monitor runs the commands.
 */
import { type Child, runChild, startChild } from '../core/childProcess.ts';
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

/** What the event stream showed. */
export interface EventCounts {
  statesSeen: Record<string, number>;
  newFromLan: number;
  newFromWan: number;
  portPreserved: number;
  portChanged: number;
  /** Events conntrack said it showed. */
  events: number;
  /** The kernel dropped events (the listener's buffer was full): the counts are then lower bounds. */
  eventsLost: boolean;
  /** What conntrack said on stderr that was not a known notice. */
  warnings: string[];
}

/**
 * Counts `conntrack -E -p tcp -o id` lines, in awk (mawk does a line in about half a microsecond, a
 * tenth of what parsing it in the coordinator's JavaScript costs, and the coordinator is busy joining
 * pairs): an entry is counted once per state it enters (an UPDATE that only changes status flags is
 * not a new state), by its id; a NEW entry whose original source is in the router's LAN (`lan`, a
 * prefix such as "10.0.1.") is its host's own connection, and its reply tuple's destination port is
 * the port the router mapped it to. Prints one summary line per figure at the end of its input.
 */
export const EVENT_COUNT_AWK = `
$1 == "[NEW]" || $1 == "[UPDATE]" {
  # The state follows the timeout; an event of an entry without a timeout has none before it.
  state = ""; src = 0
  for (i = 4; i <= 5; i++) if ($i ~ /^[A-Z][A-Z_0-9]*$/) { state = $i; break }
  if (state == "") next
  id = $NF
  if ($1 == "[NEW]") {
    sport = ""; mapped = ""
    for (i = 4; i < NF; i++) {
      if (substr($i, 1, 4) == "src=") { if (!src) src = i }
      else if (substr($i, 1, 6) == "sport=") { if (sport == "") sport = substr($i, 7) }
      else if (substr($i, 1, 6) == "dport=") mapped = substr($i, 7)
    }
    if (src && index($src, "src=" lan) == 1) { lanNew++; if (mapped == sport) preserved++; else changed++ }
    else wanNew++
  }
  if (last[id] != state) seen[state]++
  if (state == "TIME_WAIT" || state == "CLOSE") delete last[id]; else last[id] = state
}
END {
  for (s in seen) print "state", s, seen[s]
  print "new-lan", lanNew + 0
  print "new-wan", wanNew + 0
  print "preserved", preserved + 0
  print "changed", changed + 0
}
`;

/** The awk program's summary, and conntrack's own stderr, as counts. */
export function parseEventSummary(summary: string, conntrackStderr: string): EventCounts {
  const counts: EventCounts = {
    statesSeen: {},
    newFromLan: 0,
    newFromWan: 0,
    portPreserved: 0,
    portChanged: 0,
    events: 0,
    eventsLost: false,
    warnings: [],
  };
  for (const line of summary.split('\n')) {
    const [key, first, second] = line.trim().split(/\s+/);
    if (key === 'state' && first && second !== undefined) counts.statesSeen[first] = Number(second);
    else if (key === 'new-lan') counts.newFromLan = Number(first);
    else if (key === 'new-wan') counts.newFromWan = Number(first);
    else if (key === 'preserved') counts.portPreserved = Number(first);
    else if (key === 'changed') counts.portChanged = Number(first);
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
  /** Stops both commands and returns what they showed. */
  stop(): Promise<EventCounts & { peakEntries: number }>;
}

/** The entry count's peak only (no event stream: --conntrack-events off). */
async function watchEntries(namespace: string): Promise<ConntrackWatch> {
  const sampler = startEntrySampler(namespace);
  await new Promise((resolve) => setTimeout(resolve, 100));
  if (!sampler.child.running()) throw new Error(`the conntrack entry count in ${namespace} cannot be read`);
  return {
    async stop() {
      await sampler.child.stop('SIGTERM');
      return { ...parseEventSummary('', ''), peakEntries: sampler.peak() };
    },
  };
}

/** Reads nf_conntrack_count every 50 ms in the namespace, keeping the peak. */
function startEntrySampler(namespace: string): { child: Child; peak: () => number } {
  let peak = 0;
  const child = startChild(
    'ip',
    [
      'netns',
      'exec',
      namespace,
      'sh',
      '-c',
      // A sysctl file answers only a read at offset 0: read it whole (cat), not byte by byte (read).
      'while :; do cat /proc/sys/net/netfilter/nf_conntrack_count; sleep 0.05; done',
    ],
    { stdin: 'ignore', output: 'stream' },
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

/**
 * Starts watching a router: `conntrack -E` (NEW and UPDATE events of TCP, a large socket buffer)
 * piped straight into awk (EVENT_COUNT_AWK: the events never pass through this process), and a
 * loop reading nf_conntrack_count every 50 ms for the peak. Resolves once they run. Without
 * `watchEvents` (--conntrack-events off: the event stream costs as much CPU as the pairs), only the loop.
 */
export async function watchConntrack(
  namespace: string,
  lanPrefix: string,
  watchEvents = true,
): Promise<ConntrackWatch> {
  if (!watchEvents) return watchEntries(namespace);
  const conntrack = ['conntrack', '-E', '-p', 'tcp', '-e', 'NEW,UPDATE', '-o', 'id', '-b', String(64 << 20)];
  const events = startChild('ip', ['netns', 'exec', namespace, ...conntrack], {
    stdin: 'ignore',
    output: 'stream',
  });
  let stderr = '';
  events.process.stderr?.setEncoding('utf8');
  events.process.stderr?.on('data', (chunk: string) => {
    if (stderr.length < 64 * 1024) stderr += chunk;
  });
  const eventsOut = events.process.stdout as NodeJS.ReadableStream;
  const counter = startChild('awk', ['-v', `lan=${lanPrefix}`, EVENT_COUNT_AWK], { stdin: eventsOut });
  // awk holds the pipe now; our copy of its reading end is not needed.
  events.process.stdout?.destroy();
  const entries = startEntrySampler(namespace);
  const sampler = entries.child;
  // conntrack subscribes at once; give it a moment to be in place before the first pair.
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (const child of [events, counter, sampler])
    if (!child.running()) {
      await Promise.all([events.stop('SIGKILL'), counter.stop('SIGKILL'), sampler.stop('SIGKILL')]);
      throw new Error(
        `conntrack watch in ${namespace} ended at once: ${stderr.trim() || counter.stderr().trim()}`,
      );
    }
  return {
    async stop() {
      await Promise.all([events.stop('SIGTERM'), sampler.stop('SIGTERM')]);
      // conntrack has ended: awk reads to the end of the pipe, prints its summary and exits.
      await counter.exited;
      return { ...parseEventSummary(counter.stdout(), stderr), peakEntries: entries.peak() };
    },
  };
}
