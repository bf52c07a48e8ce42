/**
 * The kernel's view of a run of planned pairs (stress.ts --trace): trace while the pairs run, then
 * classify each planned pair by how it opened (both sides through SYN_RECEIVED, one side only, or
 * not a simultaneous open at all) and how each side closed, and count the kinds. Only the planned 4-tuples count: the tracepoint also sees every other namespace.
 */
import { isIP } from 'node:net';
import type { Endpoint, PortRange } from '../core/types.ts';
import { classifyClose, openKindOf, PathBuilder, sideKey, sideOpen } from './connectionPaths.ts';
import { formatKindCounts, formatSourceLabel } from './formatPaths.ts';
import { type SourceChoice, startStateTrace } from './startTrace.ts';
import {
  type CloseKind,
  type ConnectionPath,
  PAIR_OPEN_KINDS,
  type PairKinds,
  type PairOpenKind,
  type PlannedPair,
  SIDE_CLOSE_KINDS,
  type SideCloseKind,
  type SideOpen,
  type SourceLabel,
  type TraceSource,
} from './types.ts';

export interface PairClassification {
  /** Kinds per planned pair id. */
  kinds: Map<number, PairKinds>;
  /** Pairs per open kind. */
  openKinds: Record<PairOpenKind, number>;
  /** Sides per close kind (two per pair). */
  closeKinds: Record<SideCloseKind, number>;
}

function keyOf(local: Endpoint, remote: Endpoint): string {
  return sideKey({ family: isIP(local.host) === 6 ? 6 : 4, local, remote });
}

/** How one side of a connection that reached ESTABLISHED opened and closed, by its 4-tuple's side key. */
type EstablishedSides = Map<string, { open: SideOpen; close: CloseKind }>;

/** Notes a path if it is a side that reached ESTABLISHED (a failed connect() retry on the same 4-tuple is not the connection). */
function noteSide(sides: EstablishedSides, path: ConnectionPath): void {
  const open = sideOpen(path);
  if (open !== 'failed' && open !== 'listener' && path.states.includes('ESTABLISHED'))
    sides.set(sideKey(path), { open, close: classifyClose(path) });
}

function classifySides(
  sides: EstablishedSides,
  pairs: Iterable<PlannedPair>,
  source: TraceSource,
): PairClassification {
  // A side the sampler did not see may still have opened and closed between two samples.
  const unseen = source === 'sampled' ? 'unknown' : 'not-established';
  const kinds = new Map<number, PairKinds>();
  const openKinds = Object.fromEntries(PAIR_OPEN_KINDS.map((kind) => [kind, 0])) as Record<
    PairOpenKind,
    number
  >;
  const closeKinds = Object.fromEntries(SIDE_CLOSE_KINDS.map((kind) => [kind, 0])) as Record<
    SideCloseKind,
    number
  >;
  for (const pair of pairs) {
    const sideA = sides.get(keyOf(pair.a, pair.b));
    const sideB = sides.get(keyOf(pair.b, pair.a));
    const first = sideA ?? sideB;
    const open: PairOpenKind = first ? openKindOf(first.open, sideA ? sideB?.open : undefined) : unseen;
    const close: [SideCloseKind, SideCloseKind] = [sideA?.close ?? unseen, sideB?.close ?? unseen];
    kinds.set(pair.id, { open, close });
    openKinds[open] += 1;
    closeKinds[close[0]] += 1;
    closeKinds[close[1]] += 1;
  }
  return { kinds, openKinds, closeKinds };
}

/**
 * Classifies planned pairs from traced paths. A side's path is the one on its 4-tuple that reached
 * ESTABLISHED (the last one, if the 4-tuple was used more than once).
 */
export function classifyPlannedPairs(
  paths: readonly ConnectionPath[],
  pairs: Iterable<PlannedPair>,
  source: TraceSource = 'kernel',
): PairClassification {
  const sides: EstablishedSides = new Map();
  for (const path of paths) noteSide(sides, path);
  return classifySides(sides, pairs, source);
}

export interface PairTraceResult extends PairClassification {
  label: SourceLabel;
  /** Events the kernel dropped (ring buffer full): kinds of some pairs may then be 'unknown'. */
  lostEvents: number;
}

export interface PairTrace {
  readonly label: SourceLabel;
  /** Waits until the last closes have been traced (quiet for a moment, bounded), stops, classifies. */
  stop(pairs: Iterable<PlannedPair>): Promise<PairTraceResult>;
  /** Stops without classifying (on failure paths). */
  abort(): Promise<void>;
}

export interface PairTraceOptions {
  portRange: PortRange;
  /** User-side address filter (the plan's addresses, when there are few). */
  hosts?: string[];
  source?: SourceChoice;
}

/**
 * Starts tracing for a run of pairs (the kernel tracepoint, or sampling with the reason in the label).
 * Paths are noted as they end and let go: what is kept is one small entry per established side.
 */
export function startPairTrace(options: PairTraceOptions): PairTrace {
  const sides: EstablishedSides = new Map();
  let builder: PathBuilder | undefined;
  const trace = startStateTrace({
    portRange: options.portRange,
    ...(options.hosts ? { hosts: options.hosts } : {}),
    ...(options.source ? { source: options.source } : {}),
    retainEvents: false,
    retainPaths: false,
    onEvent: (event) => builder?.add(event),
  });
  builder = new PathBuilder(trace.startedUs, { retain: false, onEnd: (path) => noteSide(sides, path) });
  const paths = builder;
  return {
    label: trace.label,
    async stop(pairs) {
      // The final ACKs of the last closes can follow the sockets' 'close' events by a moment.
      const until = Date.now() + 2000;
      while (Date.now() < until && trace.drain().length > 0)
        await new Promise((resolve) => setTimeout(resolve, 50));
      await trace.stop();
      for (const path of paths.letGoAll()) noteSide(sides, path);
      return {
        label: trace.label,
        lostEvents: trace.lostEvents,
        ...classifySides(sides, pairs, trace.label.source),
      };
    },
    async abort() {
      await trace.stop();
    },
  };
}

/** Report lines: the counts of each kind and where they came from. */
export function formatPairKinds(result: PairTraceResult, indent = '  '): string[] {
  return [
    `${indent}open kinds     ${formatKindCounts(result.openKinds)}`,
    `${indent}close kinds    ${formatKindCounts(result.closeKinds)} (per side)`,
    `${indent}trace          ${formatSourceLabel(result.label).replace(/^source: /, '')}${result.lostEvents ? `; ${result.lostEvents} events LOST (ring buffer full)` : ''}`,
  ];
}
