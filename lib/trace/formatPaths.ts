/**
 * Text output of traced paths: one line per connection side (endpoints, then the states with their
 * microsecond offsets), failed connect() attempts on one 4-tuple collapsed into one line, and the
 * labels that say where the record came from.
 */
import { formatEndpoint } from '../core/endpoint.ts';
import { itemsOfPaths } from './connectionPaths.ts';
import type { ConnectionPath, SourceLabel, TracedItem } from './types.ts';

export const TIME_WAIT_NOTE =
  'TIME_WAIT* = inferred: Linux reports FIN_WAIT_2/CLOSING -> CLOSE when it hands the connection to a TIME_WAIT mini-socket (it then lives 60 s, untraced, and ends CLOSED)';

export function formatEndpoints(path: Pick<ConnectionPath, 'local' | 'remote'>): string {
  return `${formatEndpoint(path.local)} > ${formatEndpoint(path.remote)}`;
}

/** "CLOSED → SYN_SENT +0µs → SYN_RECEIVED +1002311µs → ESTABLISHED +1002330µs". */
export function formatStates(path: ConnectionPath): string {
  return path.steps
    .map((step, index) =>
      index === 0
        ? step.state
        : `${step.state}${step.inferred ? '*' : ''} ${step.offsetUs >= 0 ? '+' : ''}${step.offsetUs}µs`,
    )
    .join(' → ');
}

export function formatPath(path: ConnectionPath): string {
  return `${formatEndpoints(path)}  ${formatStates(path)}`;
}

/** The first line of a report: which record this is and, for sampling, what that means. */
export function formatSourceLabel(label: SourceLabel): string {
  if (label.source === 'kernel')
    return 'source: kernel tracepoint sock:inet_sock_set_state (every transition)';
  return `source: SAMPLED /proc/net/tcp and /proc/net/tcp6 every ${label.sampleIntervalMs ?? '?'} ms (short-lived states are missed; first and last states are when a socket appeared and disappeared)${label.reason ? `; exact source unavailable: ${label.reason}` : ''}`;
}

/** "one-sided 4,998, unknown 2" (kinds with a count of 0 left out), or "none". */
export function formatKindCounts(record: Record<string, number>): string {
  const entries = Object.entries(record).filter(([, count]) => count > 0);
  return entries.length
    ? entries.map(([kind, count]) => `${kind} ${count.toLocaleString('en-US')}`).join(', ')
    : 'none';
}

/** Failed connect() attempts on one 4-tuple with the same states share a line until they pause this long. */
const COLLAPSE_IDLE_US = 1_000_000;

interface AttemptGroup {
  tuple: string;
  count: number;
  first: ConnectionPath;
  last: ConnectionPath;
}

function formatAttempts({ count, first, last }: AttemptGroup): string {
  return count === 1
    ? `${formatPath(first)}  (attempt failed)`
    : `${formatEndpoints(first)}  ${first.states.join(' → ')}  x${count} failed attempts, +${first.steps[0]?.offsetUs ?? 0}µs..+${last.steps.at(-1)?.offsetUs ?? 0}µs`;
}

/**
 * The text report, written as the trace goes: the source label, then one line per connection side as
 * each connection is over (its two sides together), and the TIME_WAIT note at the end if needed.
 * Failed attempts on one 4-tuple with the same states share a line, written when the 4-tuple's
 * connection is, when they pause for a second (trace time), or at the end.
 */
export class TextTraceReport {
  /** Open attempt groups, least recently extended first. */
  private readonly groups = new Map<string, AttemptGroup>();
  /** Group keys per 4-tuple ("local > remote"). */
  private readonly byTuple = new Map<string, Set<string>>();
  private lines = 0;
  private inferred = false;

  constructor(private readonly write: (line: string) => void) {}

  start(label: SourceLabel): void {
    this.write(formatSourceLabel(label));
  }

  item(item: TracedItem): void {
    if (item.kind === 'failed-attempt') {
      this.addAttempt(item.path);
      return;
    }
    const sides = item.kind === 'connection' ? item.pair.sides : [item.path];
    for (const side of sides) {
      if (!side) continue;
      this.flushIdle(side.endUs);
      this.flushTuple(formatEndpoints(side));
      if (side.steps.some((step) => step.inferred)) this.inferred = true;
      this.line(`${formatPath(side)}${side.untracked ? '  (untracked from here: too many open sides)' : ''}`);
    }
  }

  /** Writes the attempt groups that have paused since nowUs - 1 s. */
  tick(nowUs: number): void {
    this.flushIdle(nowUs);
  }

  /** Any line to write in its place in the stream (socket table checks, say). */
  note(line: string): void {
    this.line(line);
  }

  /** Writes what is held, and the closing lines. */
  end(): void {
    for (const group of Array.from(this.groups.values())) this.flushGroup(group);
    if (this.lines === 0) this.line('no TCP state changes seen');
    if (this.inferred) this.line(TIME_WAIT_NOTE);
  }

  private line(text: string): void {
    this.lines += 1;
    this.write(text);
  }

  private addAttempt(path: ConnectionPath): void {
    this.flushIdle(path.endUs);
    const tuple = formatEndpoints(path);
    const key = `${tuple} ${path.states.join(' ')}`;
    const group = this.groups.get(key);
    if (group) {
      group.count += 1;
      group.last = path;
      // Re-inserted: the map stays ordered by the last attempt.
      this.groups.delete(key);
      this.groups.set(key, group);
      return;
    }
    this.groups.set(key, { tuple, count: 1, first: path, last: path });
    const keys = this.byTuple.get(tuple) ?? new Set<string>();
    keys.add(key);
    this.byTuple.set(tuple, keys);
  }

  private flushIdle(nowUs: number): void {
    for (const group of this.groups.values()) {
      if (group.last.endUs > nowUs - COLLAPSE_IDLE_US) break;
      this.flushGroup(group);
    }
  }

  private flushTuple(tuple: string): void {
    const keys = this.byTuple.get(tuple);
    if (!keys) return;
    for (const key of Array.from(keys)) {
      const group = this.groups.get(key);
      if (group) this.flushGroup(group);
    }
  }

  private flushGroup(group: AttemptGroup): void {
    const key = `${group.tuple} ${group.first.states.join(' ')}`;
    this.groups.delete(key);
    const keys = this.byTuple.get(group.tuple);
    keys?.delete(key);
    if (keys?.size === 0) this.byTuple.delete(group.tuple);
    this.line(formatAttempts(group));
  }
}

/** The whole text report of a finished set of paths: source label, one line per connection side, the TIME_WAIT note if needed. */
export function formatTraceReport(paths: readonly ConnectionPath[], label: SourceLabel): string[] {
  const lines: string[] = [];
  const report = new TextTraceReport((line) => lines.push(line));
  report.start(label);
  for (const item of itemsOfPaths(paths)) report.item(item);
  report.end();
  return lines;
}
