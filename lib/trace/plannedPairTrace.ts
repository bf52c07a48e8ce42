/**
 * The kernel's view of a run of planned pairs (stress.ts --trace): trace while the pairs run, then
 * classify each planned pair by how it opened (both sides through SYN_RECEIVED, one side only, or
 * not a simultaneous open at all) and how each side closed, and count the kinds. Only the planned 4-tuples count: the tracepoint also sees every other namespace.
 */
import { isIP } from 'node:net';
import type { Endpoint, PortRange } from '../core/types.ts';
import { classifyClose, classifyOpen, sideKey, sideOpen } from './connectionPaths.ts';
import { formatSourceLabel } from './formatPaths.ts';
import { type SourceChoice, startStateTrace } from './startTrace.ts';
import {
  type ConnectionPath,
  PAIR_OPEN_KINDS,
  type PairKinds,
  type PairOpenKind,
  type PlannedPair,
  SIDE_CLOSE_KINDS,
  type SideCloseKind,
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

/**
 * Classifies planned pairs from traced paths. A side's path is the one on its 4-tuple that reached
 * ESTABLISHED (a failed connect() retry on the same 4-tuple is not the connection).
 */
export function classifyPlannedPairs(
  paths: readonly ConnectionPath[],
  pairs: Iterable<PlannedPair>,
  source: TraceSource = 'kernel',
): PairClassification {
  // A side the sampler did not see may still have opened and closed between two samples.
  const unseen = source === 'sampled' ? 'unknown' : 'not-established';
  const established = new Map<string, ConnectionPath>();
  for (const path of paths) {
    const open = sideOpen(path);
    if (open !== 'failed' && open !== 'listener' && path.states.includes('ESTABLISHED'))
      established.set(sideKey(path), path);
  }
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
    const sideA = established.get(keyOf(pair.a, pair.b));
    const sideB = established.get(keyOf(pair.b, pair.a));
    const first = sideA ?? sideB;
    const open: PairOpenKind = first ? classifyOpen(first, sideA ? sideB : undefined) : unseen;
    const close: [SideCloseKind, SideCloseKind] = [
      sideA ? classifyClose(sideA) : unseen,
      sideB ? classifyClose(sideB) : unseen,
    ];
    kinds.set(pair.id, { open, close });
    openKinds[open] += 1;
    closeKinds[close[0]] += 1;
    closeKinds[close[1]] += 1;
  }
  return { kinds, openKinds, closeKinds };
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

/** Starts tracing for a run of pairs (the kernel tracepoint, or sampling with the reason in the label). */
export function startPairTrace(options: PairTraceOptions): PairTrace {
  const trace = startStateTrace({
    portRange: options.portRange,
    ...(options.hosts ? { hosts: options.hosts } : {}),
    ...(options.source ? { source: options.source } : {}),
    retainEvents: false,
  });
  return {
    label: trace.label,
    async stop(pairs) {
      // The final ACKs of the last closes can follow the sockets' 'close' events by a moment.
      const until = Date.now() + 2000;
      while (Date.now() < until && trace.drain().length > 0)
        await new Promise((resolve) => setTimeout(resolve, 50));
      const paths = await trace.stop();
      return {
        label: trace.label,
        lostEvents: trace.lostEvents,
        ...classifyPlannedPairs(paths, pairs, trace.label.source),
      };
    },
    async abort() {
      await trace.stop();
    },
  };
}

function counts(record: Record<string, number>): string {
  const entries = Object.entries(record).filter(([, count]) => count > 0);
  return entries.length
    ? entries.map(([kind, count]) => `${kind} ${count.toLocaleString('en-US')}`).join(', ')
    : 'none';
}

/** Report lines: the counts of each kind and where they came from. */
export function formatPairKinds(result: PairTraceResult, indent = '  '): string[] {
  return [
    `${indent}open kinds     ${counts(result.openKinds)}`,
    `${indent}close kinds    ${counts(result.closeKinds)} (per side)`,
    `${indent}trace          ${formatSourceLabel(result.label).replace(/^source: /, '')}${result.lostEvents ? `; ${result.lostEvents} events LOST (ring buffer full)` : ''}`,
  ];
}
