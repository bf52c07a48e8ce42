/**
 * Text output of traced paths: one line per connection side (endpoints, then the states with their
 * microsecond offsets), failed connect() attempts on one 4-tuple collapsed into one line, and the
 * labels that say where the record came from.
 */
import { formatEndpoint } from '../core/endpoint.ts';
import { sideOpen, summarizeConnections } from './connectionPaths.ts';
import type { ConnectionPath, SourceLabel } from './types.ts';

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

/** One line per path, except that failed attempts from one 4-tuple with the same states share a line. */
export function formatPaths(paths: readonly ConnectionPath[]): string[] {
  const lines: string[] = [];
  const collapsed = new Map<
    string,
    { index: number; count: number; first: ConnectionPath; last: ConnectionPath }
  >();
  for (const path of paths) {
    if (sideOpen(path) !== 'failed') {
      lines.push(formatPath(path));
      continue;
    }
    const key = `${formatEndpoints(path)} ${path.states.join(' ')}`;
    const group = collapsed.get(key);
    if (group) {
      group.count += 1;
      group.last = path;
      continue;
    }
    collapsed.set(key, { index: lines.length, count: 1, first: path, last: path });
    lines.push('');
  }
  for (const { index, count, first, last } of collapsed.values()) {
    lines[index] =
      count === 1
        ? `${formatPath(first)}  (attempt failed)`
        : `${formatEndpoints(first)}  ${first.states.join(' → ')}  x${count} failed attempts, +${first.steps[0]?.offsetUs ?? 0}µs..+${last.steps.at(-1)?.offsetUs ?? 0}µs`;
  }
  return lines;
}

/** The first line of a report: which record this is and, for sampling, what that means. */
export function formatSourceLabel(label: SourceLabel): string {
  if (label.source === 'kernel')
    return 'source: kernel tracepoint sock:inet_sock_set_state (every transition)';
  return `source: SAMPLED /proc/net/tcp and /proc/net/tcp6 every ${label.sampleIntervalMs ?? '?'} ms (short-lived states are missed; first and last states are when a socket appeared and disappeared)${label.reason ? `; exact source unavailable: ${label.reason}` : ''}`;
}

/** Paths in order of their start, each connection's second side right after its first. */
export function pairedOrder(paths: readonly ConnectionPath[]): ConnectionPath[] {
  const peerOf = new Map<ConnectionPath, ConnectionPath>();
  for (const { sides } of summarizeConnections(paths).pairs) {
    const [a, b] = sides;
    if (!b) continue;
    peerOf.set(a, b);
    peerOf.set(b, a);
  }
  const ordered: ConnectionPath[] = [];
  const placed = new Set<ConnectionPath>();
  for (const path of paths) {
    if (placed.has(path)) continue;
    ordered.push(path);
    placed.add(path);
    const peer = peerOf.get(path);
    if (peer && !placed.has(peer)) {
      ordered.push(peer);
      placed.add(peer);
    }
  }
  return ordered;
}

/** The whole text report: source label, one line per connection side, and the TIME_WAIT note if needed. */
export function formatTraceReport(paths: readonly ConnectionPath[], label: SourceLabel): string[] {
  const lines = [formatSourceLabel(label)];
  if (paths.length === 0) lines.push('no TCP state changes seen');
  lines.push(...formatPaths(pairedOrder(paths)));
  if (paths.some((path) => path.steps.some((step) => step.inferred))) lines.push(TIME_WAIT_NOTE);
  return lines;
}
