/**
 * The kernel's view of a run of planned pairs (stress.ts --trace): trace while the pairs run, then
 * classify each planned pair by how it opened (both sides through SYN_RECEIVED, one side only, or
 * not a simultaneous open at all) and how each side closed, count the kinds, and annotate the
 * NDJSON pair log. Only the planned 4-tuples count: the tracepoint also sees every other namespace.
 */
import fs from 'node:fs';
import { isIP } from 'node:net';
import readline from 'node:readline';
import type { Endpoint } from '../peer/dialSimultaneous.ts';
import { type AddressPlan, loopbackAddress, pairEndpoints } from '../stress/planPairs.ts';
import {
  CLOSE_KINDS,
  type CloseKind,
  type ConnectionPath,
  classifyClose,
  classifyOpen,
  type OpenKind,
  sideOpen,
} from './connectionPaths.ts';
import { formatSourceLabel, type SourceLabel } from './formatPaths.ts';
import type { PortRange } from './kernelTracepoint.ts';
import { type SourceChoice, startStateTrace } from './startTrace.ts';
import { sideKey, type TraceSource } from './types.ts';

export interface PlannedPair {
  id: number;
  a: Endpoint;
  b: Endpoint;
}

/** A pair's open kind ('not-established': no side reached ESTABLISHED) and each side's close kind. */
export type PairOpenKind = OpenKind | 'not-established';
export type SideCloseKind = CloseKind | 'not-established';

export interface PairKinds {
  open: PairOpenKind;
  close: [SideCloseKind, SideCloseKind];
}

export const PAIR_OPEN_KINDS: readonly PairOpenKind[] = [
  'both-syn-received',
  'one-sided',
  'not-simultaneous',
  'unknown',
  'not-established',
];
export const SIDE_CLOSE_KINDS: readonly SideCloseKind[] = [...CLOSE_KINDS, 'not-established'];

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

/**
 * Adds "openKind" and "closeKinds" to each record of an NDJSON pair log (records carry their "id"),
 * rewriting the file through a temporary one.
 */
export async function annotatePairLog(file: string, kinds: ReadonlyMap<number, PairKinds>): Promise<void> {
  const temporary = `${file}.trace-${process.pid}.tmp`;
  const output = fs.createWriteStream(temporary);
  try {
    const lines = readline.createInterface({
      input: fs.createReadStream(file),
      crlfDelay: Number.POSITIVE_INFINITY,
    });
    for await (const line of lines) {
      if (!line.trim()) continue;
      const record = JSON.parse(line) as { id: number };
      const pair = kinds.get(record.id);
      const annotated = { ...record, openKind: pair?.open ?? null, closeKinds: pair?.close ?? null };
      if (!output.write(`${JSON.stringify(annotated)}\n`))
        await new Promise<void>((resolve) => output.once('drain', () => resolve()));
    }
    await new Promise<void>((resolve, reject) => {
      output.once('error', reject);
      output.end(() => resolve());
    });
    fs.renameSync(temporary, file);
  } catch (error) {
    output.destroy();
    fs.rmSync(temporary, { force: true });
    throw error;
  }
}

/** The planned pairs 0..count-1 of a stress address plan. */
export function* pairsOfPlan(plan: AddressPlan, count: number): Generator<PlannedPair> {
  for (let id = 0; id < Math.min(count, plan.capacity); id += 1) yield { id, ...pairEndpoints(plan, id) };
}

/**
 * What to trace for a stress plan: its ports in the kernel filter and, when the run uses few address
 * pairs (pairs known up front), those addresses in the user-side filter.
 */
export function traceOptionsForPlan(plan: AddressPlan, pairs: number | undefined): PairTraceOptions {
  // Pair n uses port first + n % portCount: a run of fewer pairs than ports uses the low ports only.
  const portsUsed = pairs === undefined ? plan.portCount : Math.min(pairs, plan.portCount);
  const portRange = { from: plan.ports.first, to: plan.ports.first + portsUsed - 1 };
  const rounds = pairs === undefined ? Number.POSITIVE_INFINITY : Math.ceil(pairs / plan.portCount);
  if (rounds > 64) return { portRange };
  const hosts: string[] = [];
  for (let round = 0; round < rounds; round += 1) {
    const index = (plan.roundOffset + round) % plan.rounds;
    hosts.push(loopbackAddress(2 * index), loopbackAddress(2 * index + 1));
  }
  return { portRange, hosts };
}
