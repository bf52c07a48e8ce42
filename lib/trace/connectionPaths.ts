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
  type TraceCounts,
  type TracedItem,
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
 * Has this side's socket gone (no further transition can come)? At CLOSED, or at a TIME_WAIT the
 * kernel handed to a mini-socket. A sampled TIME_WAIT is still a socket in the table: it ends at CLOSED.
 */
export function pathHasEnded(path: ConnectionPath): boolean {
  const last = path.steps.at(-1);
  return last?.state === 'CLOSED' || last?.inferred === true;
}

export interface PathBuilderOptions {
  /** Keep every path in `paths` (default true). Without it a path is let go once it has ended. */
  retain?: boolean;
  /**
   * A path is over: it has ended, or a new path replaced it on its 4-tuple before it ended (an event
   * that does not continue it, after lost events say). Called before the event that ended it returns.
   */
  onEnd?: (path: ConnectionPath) => void;
}

/**
 * Builds paths as events arrive (in time order, as trace_pipe delivers them): add() returns the
 * path the event extended, or undefined for a reset note. Only paths that have not ended are held
 * per 4-tuple; with `retain: false` nothing else is.
 */
export class PathBuilder {
  readonly paths: ConnectionPath[] = [];
  private readonly current = new Map<string, ConnectionPath>();
  private readonly retain: boolean;

  /** originUs is the zero of the offsets (default: the first event's time). */
  constructor(
    private originUs?: number,
    private readonly options: PathBuilderOptions = {},
  ) {
    this.retain = options.retain ?? true;
  }

  /** Paths that have not ended. */
  get openCount(): number {
    return this.current.size;
  }

  /** The paths that have not ended, oldest first. */
  openPaths(): IterableIterator<ConnectionPath> {
    return this.current.values();
  }

  /** The path on this side key that has not ended, if any. */
  openPath(key: string): ConnectionPath | undefined {
    return this.current.get(key);
  }

  /** Lets go of the oldest path that has not ended (without calling onEnd) and returns it. */
  letGoOldest(): ConnectionPath | undefined {
    const first = this.current.entries().next();
    if (first.done) return undefined;
    this.current.delete(first.value[0]);
    return first.value[1];
  }

  /** Lets go of every path that has not ended, oldest first (without calling onEnd). */
  letGoAll(): ConnectionPath[] {
    const open = Array.from(this.current.values());
    this.current.clear();
    return open;
  }

  add(event: TraceEvent): ConnectionPath | undefined {
    const key = sideKey(event);
    let path = this.current.get(key);
    if (event.type === 'reset') {
      if (path) path.resetReceived = true;
      return undefined;
    }
    this.originUs ??= event.timestampUs;
    const origin = this.originUs;
    if (path && path.states.at(-1) !== event.from) {
      // Not a continuation: that path is over as it is (it has not ended, or it would be gone).
      this.current.delete(key);
      this.options.onEnd?.(path);
      path = undefined;
    }
    if (!path) {
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
      if (this.retain) this.paths.push(path);
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
    // A path ends at CLOSED; after an inferred TIME_WAIT the next event (from CLOSED) starts a new one too.
    if (pathHasEnded(path)) {
      this.current.delete(key);
      this.options.onEnd?.(path);
    }
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
  return openKindOf(sideOpen(a), b ? sideOpen(b) : undefined);
}

/** The same from how each side opened. */
export function openKindOf(a: SideOpen, b?: SideOpen): OpenKind {
  const kinds = [a, b];
  // A passive open anywhere means a listener took part: not a simultaneous open at all.
  if (kinds.includes('passive')) return 'not-simultaneous';
  if (kinds[0] === 'syn-received' && kinds[1] === 'syn-received') return 'both-syn-received';
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

/** A connection's item: its sides in order of their start, classified. */
function connectionItem(a: ConnectionPath, b?: ConnectionPath): TracedItem {
  const [first, second] = b && b.startUs < a.startUs ? [b, a] : [a, b];
  return {
    kind: 'connection',
    pair: {
      sides: [first, second],
      open: classifyOpen(first, second),
      close: [classifyClose(first), second ? classifyClose(second) : undefined],
    },
  };
}

/** The item a path is on its own: a listener, a failed attempt, or a connection of which one side was seen. */
function singleItem(path: ConnectionPath): TracedItem {
  const open = sideOpen(path);
  if (open === 'listener') return { kind: 'listener', path };
  if (open === 'failed') return { kind: 'failed-attempt', path };
  return connectionItem(path);
}

/**
 * Pairs the two sides of each connection as their paths end, so that a connection is given out as
 * soon as it is over and nothing of it is kept afterwards. A side that ends while the other side
 * (the swapped 4-tuple) is still open waits for it; a side whose peer is neither open nor waiting
 * was the only side traced (the peer is on another host, or outside the filter).
 */
export class ConnectionPairer {
  private readonly waiting = new Map<string, ConnectionPath>();

  constructor(
    /** The path on a side key that has not ended, if any. */
    private readonly openPath: (key: string) => ConnectionPath | undefined,
    private readonly emit: (item: TracedItem) => void,
  ) {}

  /** Ended sides waiting for their peer to end. */
  get waitingCount(): number {
    return this.waiting.size;
  }

  /** A path is over. mayWait false: give it out now even if its peer is still open. */
  ended(path: ConnectionPath, mayWait = true): void {
    const peer = this.waiting.get(peerKey(path));
    const item = singleItem(path);
    if (item.kind !== 'connection') {
      this.emit(item);
      // A side waiting for this 4-tuple waited for a path that turned out not to be its peer.
      if (peer) this.releaseWaiting(peer);
      return;
    }
    if (peer) {
      this.waiting.delete(peerKey(path));
      this.emit(connectionItem(peer, path));
      return;
    }
    const open = this.openPath(peerKey(path));
    if (!mayWait || !open || sideOpen(open) === 'listener') {
      this.emit(item);
      return;
    }
    const earlier = this.waiting.get(sideKey(path));
    if (earlier) this.releaseWaiting(earlier);
    this.waiting.set(sideKey(path), path);
  }

  /** The end of the trace: the paths still open, each paired with its open or waiting peer. */
  finish(open: readonly ConnectionPath[]): void {
    const remaining = new Map<string, ConnectionPath>();
    for (const path of open) remaining.set(sideKey(path), path);
    for (const path of open) {
      const key = sideKey(path);
      if (remaining.get(key) !== path) continue;
      remaining.delete(key);
      const item = singleItem(path);
      const waiting = this.waiting.get(peerKey(path));
      const openPeer = remaining.get(peerKey(path));
      if (item.kind === 'connection' && waiting) {
        this.waiting.delete(peerKey(path));
        this.emit(connectionItem(waiting, path));
      } else if (item.kind === 'connection' && openPeer && singleItem(openPeer).kind === 'connection') {
        remaining.delete(peerKey(path));
        this.emit(connectionItem(path, openPeer));
      } else this.emit(item);
    }
    for (const path of Array.from(this.waiting.values())) this.releaseWaiting(path);
  }

  private releaseWaiting(path: ConnectionPath): void {
    this.waiting.delete(sideKey(path));
    this.emit(connectionItem(path));
  }
}

export function emptyCounts(): TraceCounts {
  return {
    paths: 0,
    connections: 0,
    listeners: 0,
    failedAttempts: 0,
    openKinds: Object.fromEntries(OPEN_KINDS.map((kind) => [kind, 0])) as Record<OpenKind, number>,
    closeKinds: Object.fromEntries(CLOSE_KINDS.map((kind) => [kind, 0])) as Record<CloseKind, number>,
  };
}

/** Adds an item to the totals (openKinds per connection, closeKinds per side). */
export function countItem(counts: TraceCounts, item: TracedItem): void {
  if (item.kind === 'listener') counts.listeners += 1;
  else if (item.kind === 'failed-attempt') counts.failedAttempts += 1;
  if (item.kind !== 'connection') {
    counts.paths += 1;
    return;
  }
  counts.connections += 1;
  counts.openKinds[item.pair.open] += 1;
  for (const [index, side] of item.pair.sides.entries()) {
    if (!side) continue;
    counts.paths += 1;
    const kind = item.pair.close[index];
    if (kind) counts.closeKinds[kind] += 1;
  }
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

/** The items of a finished set of paths, in order of their (first side's) start. */
export function itemsOfPaths(paths: readonly ConnectionPath[]): TracedItem[] {
  // Replays the paths' starts and ends in time order through the pairer a streaming trace uses.
  const moments: { us: number; start: boolean; path: ConnectionPath }[] = [];
  for (const path of paths) {
    moments.push({ us: path.startUs, start: true, path });
    if (pathHasEnded(path)) moments.push({ us: path.endUs, start: false, path });
  }
  // At the same microsecond a start comes first: sides that touch overlap.
  moments.sort((x, y) => x.us - y.us || Number(y.start) - Number(x.start));
  const open = new Map<string, ConnectionPath>();
  const items: TracedItem[] = [];
  const pairer = new ConnectionPairer(
    (key) => open.get(key),
    (item) => items.push(item),
  );
  for (const { start, path } of moments) {
    const key = sideKey(path);
    const current = open.get(key);
    if (start) {
      if (current) {
        open.delete(key);
        pairer.ended(current);
      }
      open.set(key, path);
    } else if (current === path) {
      open.delete(key);
      pairer.ended(path);
    }
  }
  pairer.finish(Array.from(open.values()));
  const startOf = (item: TracedItem) => (item.kind === 'connection' ? item.pair.sides[0] : item.path).startUs;
  return items.sort((x, y) => startOf(x) - startOf(y));
}

/**
 * Pairs the two sides of each connection (swapped 4-tuples whose lifetimes overlap), classifies
 * them, and counts the kinds (openKinds per connection, closeKinds per side).
 */
export function summarizeConnections(paths: readonly ConnectionPath[]): ConnectionSummary {
  const counts = emptyCounts();
  const summary: ConnectionSummary = {
    pairs: [],
    listeners: [],
    failedAttempts: [],
    openKinds: counts.openKinds,
    closeKinds: counts.closeKinds,
  };
  for (const item of itemsOfPaths(paths)) {
    countItem(counts, item);
    if (item.kind === 'connection') summary.pairs.push(item.pair);
    else if (item.kind === 'listener') summary.listeners.push(item.path);
    else summary.failedAttempts.push(item.path);
  }
  return summary;
}
