/**
 * From state-change events to paths: one path per side of each connection (a 4-tuple seen from one
 * socket; a reused 4-tuple starts a new path), the TIME_WAIT that Linux hands off to a mini-socket
 * made visible, the two sides of a connection paired, and the open and close kinds classified.
 */
import type { Endpoint } from '../core/types.ts';
import {
  CLOSE_KINDS,
  type CloseKind,
  type ConnectionPair,
  type ConnectionPath,
  OPEN_KINDS,
  type OpenKind,
  type SideOpen,
  type TcpState,
  type TraceEvent,
} from './types.ts';

/** "family|local|remote": one side of one connection (a 4-tuple can be reused by later sockets). */
export function sideKey(side: { family: 4 | 6; local: Endpoint; remote: Endpoint }): string {
  return `${side.family}|${side.local.host}|${side.local.port}|${side.remote.host}|${side.remote.port}`;
}

/** The key of the other side of the same connection. */
export function peerKey(side: { family: 4 | 6; local: Endpoint; remote: Endpoint }): string {
  return sideKey({ family: side.family, local: side.remote, remote: side.local });
}

const ENDED: ReadonlySet<TcpState> = new Set(['CLOSED', 'TIME_WAIT']);

/**
 * Builds paths as events arrive (in time order, as trace_pipe delivers them): add() returns the
 * path the event extended, or undefined for a reset note.
 */
export class PathBuilder {
  readonly paths: ConnectionPath[] = [];
  private readonly current = new Map<string, ConnectionPath>();

  /** originUs is the zero of the offsets (default: the first event's time). */
  constructor(private originUs?: number) {}

  add(event: TraceEvent): ConnectionPath | undefined {
    const key = sideKey(event);
    let path = this.current.get(key);
    if (event.type === 'reset') {
      if (path) path.resetReceived = true;
      return undefined;
    }
    this.originUs ??= event.timestampUs;
    const origin = this.originUs;
    const last = path?.states.at(-1);
    // A path ends at CLOSED; after an inferred TIME_WAIT the next event (from CLOSED) starts a new one too.
    if (!path || last === undefined || last === 'CLOSED' || last !== event.from) {
      path = {
        source: event.source,
        family: event.family,
        local: event.local,
        remote: event.remote,
        states: [event.from],
        steps: [{ state: event.from, timestampUs: event.timestampUs, offsetUs: event.timestampUs - origin }],
        startUs: event.timestampUs,
        endUs: event.timestampUs,
        resetReceived: false,
      };
      this.current.set(key, path);
      this.paths.push(path);
    }
    const handOff =
      event.source === 'kernel' &&
      event.to === 'CLOSED' &&
      (event.from === 'FIN_WAIT_2' || event.from === 'CLOSING') &&
      !path.resetReceived;
    const state: TcpState = handOff ? 'TIME_WAIT' : event.to;
    path.states.push(state);
    path.steps.push({
      state,
      timestampUs: event.timestampUs,
      offsetUs: event.timestampUs - origin,
      ...(handOff ? { inferred: true as const } : {}),
    });
    path.endUs = event.timestampUs;
    return path;
  }
}

/**
 * Groups events into paths. Events need not be sorted (a stable sort by time is applied).
 * originUs is the zero of the offsets (default: the first event).
 */
export function buildConnectionPaths(events: readonly TraceEvent[], originUs?: number): ConnectionPath[] {
  const sorted = [...events].sort((a, b) => a.timestampUs - b.timestampUs);
  const builder = new PathBuilder(originUs);
  for (const event of sorted) builder.add(event);
  return builder.paths;
}

/** Does `states` contain `sequence` as consecutive elements? */
export function containsSequence(states: readonly TcpState[], sequence: readonly TcpState[]): boolean {
  outer: for (let start = 0; start + sequence.length <= states.length; start++) {
    for (let i = 0; i < sequence.length; i++) if (states[start + i] !== sequence[i]) continue outer;
    return true;
  }
  return false;
}

export function isListener(path: ConnectionPath): boolean {
  return path.remote.port === 0;
}

export function sideOpen(path: ConnectionPath): SideOpen {
  if (isListener(path)) return 'listener';
  const established = path.states.indexOf('ESTABLISHED');
  if (established < 0) return path.states.includes('SYN_SENT') ? 'failed' : 'unknown';
  const before = path.states[established - 1];
  if (before === 'SYN_SENT') return 'direct';
  if (before === 'SYN_RECEIVED') {
    const first = path.states[established - 2];
    if (first === 'SYN_SENT') return 'syn-received';
    if (first === 'LISTEN') return 'passive';
  }
  return 'unknown';
}

/** A connection's open kind from its sides (b missing when only one side was traced). */
export function classifyOpen(a: ConnectionPath, b?: ConnectionPath): OpenKind {
  const kinds = [sideOpen(a), b ? sideOpen(b) : undefined];
  // A passive open anywhere means a listener took part: not a simultaneous open at all.
  if (kinds.includes('passive')) return 'not-simultaneous';
  if (kinds[0] === 'syn-received' && kinds[1] === 'syn-received') return 'crossed';
  if (kinds.includes('syn-received') && kinds.includes('direct')) return 'one-sided';
  return 'unknown';
}

export function classifyClose(path: ConnectionPath): CloseKind {
  const established = path.states.indexOf('ESTABLISHED');
  const after = established < 0 ? path.states : path.states.slice(established);
  if (after.includes('CLOSING')) return 'simultaneous';
  if (after.includes('FIN_WAIT_1') || after.includes('FIN_WAIT_2')) return 'active';
  if (after.includes('CLOSE_WAIT') || after.includes('LAST_ACK')) return 'passive';
  const closed = ENDED.has(after.at(-1) ?? 'CLOSED') && after.length > 1;
  // Sampling misses the short states: a socket that went from ESTABLISHED to gone (or to TIME_WAIT) says nothing.
  if (path.source === 'sampled') return closed ? 'unknown' : 'open';
  if (closed) return path.resetReceived ? 'reset' : 'abort';
  return 'open';
}

export interface ConnectionSummary {
  /** Connections that reached ESTABLISHED on at least one traced side, with both sides paired. */
  pairs: ConnectionPair[];
  /** Paths of listening sockets. */
  listeners: ConnectionPath[];
  /** connect() attempts that never reached ESTABLISHED (refused, reset, timed out, still pending). */
  failedAttempts: ConnectionPath[];
  openKinds: Record<OpenKind, number>;
  closeKinds: Record<CloseKind, number>;
}

/** When a path stopped being live: a path that has not ended (at CLOSED or TIME_WAIT) is still live. */
function liveUntil(path: ConnectionPath): number {
  return ENDED.has(path.states.at(-1) ?? 'CLOSED') ? path.endUs : Number.POSITIVE_INFINITY;
}

function overlaps(a: ConnectionPath, b: ConnectionPath): boolean {
  return a.startUs <= liveUntil(b) && b.startUs <= liveUntil(a);
}

/**
 * Pairs the two sides of each connection (swapped 4-tuples whose lifetimes overlap), classifies
 * them, and counts the kinds (openKinds per connection, closeKinds per side).
 */
export function summarizeConnections(paths: readonly ConnectionPath[]): ConnectionSummary {
  const listeners: ConnectionPath[] = [];
  const failedAttempts: ConnectionPath[] = [];
  const opened: ConnectionPath[] = [];
  for (const path of paths) {
    const open = sideOpen(path);
    if (open === 'listener') listeners.push(path);
    else if (open === 'failed') failedAttempts.push(path);
    else opened.push(path);
  }
  const byKey = new Map<string, ConnectionPath[]>();
  for (const path of opened) {
    const key = sideKey(path);
    byKey.set(key, [...(byKey.get(key) ?? []), path]);
  }
  const used = new Set<ConnectionPath>();
  const pairs: ConnectionPair[] = [];
  for (const path of opened) {
    if (used.has(path)) continue;
    used.add(path);
    const peer = (byKey.get(peerKey(path)) ?? [])
      .filter((candidate) => !used.has(candidate) && overlaps(path, candidate))
      .sort((x, y) => Math.abs(x.startUs - path.startUs) - Math.abs(y.startUs - path.startUs))[0];
    if (peer) used.add(peer);
    pairs.push({
      sides: [path, peer],
      open: classifyOpen(path, peer),
      close: [classifyClose(path), peer ? classifyClose(peer) : undefined],
    });
  }
  const openKinds = Object.fromEntries(OPEN_KINDS.map((kind) => [kind, 0])) as Record<OpenKind, number>;
  const closeKinds = Object.fromEntries(CLOSE_KINDS.map((kind) => [kind, 0])) as Record<CloseKind, number>;
  for (const pair of pairs) {
    openKinds[pair.open] += 1;
    for (const kind of pair.close) if (kind) closeKinds[kind] += 1;
  }
  return { pairs, listeners, failedAttempts, openKinds, closeKinds };
}
