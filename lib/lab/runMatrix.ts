/**
 * Runs the NAT matrix: one lab (alice and bob behind their routers, a rendezvous server on the
 * "internet"), one punch agent per host, and for each row the routers reconfigured and N punches run
 * at once (each on its own ports, so they do not interfere). The lab is removed at the end, on error,
 * and on Ctrl-C (teardownOnExit).
 */

import { startScript } from '../core/childProcess.ts';
import { applyLab, reconfigureRouter, teardownLab, teardownOnExit } from './buildLab.ts';
import { skewOf, summarizeRow } from './matrixRows.ts';
import { PunchAgentHandle } from './punchAgent.ts';
import { DEFAULT_BEHAVIOUR, namespaceName, planLab, RENDEZVOUS_ADDRESS } from './topology.ts';
import type { LabPlan, Layout, MatrixRow, PunchOutcome, RowSummary, Timing, Topology } from './types.ts';

export const RENDEZVOUS_PORT = 3478;

export interface MatrixOptions {
  /** The lab's id (its namespaces' names): this process's pid by default. */
  labId?: string;
  rows: MatrixRow[];
  punches: number;
  deadlineMs: number;
  retryIntervalMs: number;
  onRow?: (summary: RowSummary, index: number) => void;
  signal?: AbortSignal;
}

/** A running two-peer lab with a rendezvous server and punch agents: the matrix and the tests share it. */
export interface PunchLab {
  plan: LabPlan;
  alice: PunchAgentHandle;
  bob: PunchAgentHandle;
  /** The rendezvous server's log so far (one line per event). */
  serverLog: string[];
  close(): Promise<void>;
}

/** The topology a row's layout needs (its routers are set per row). */
export function layoutTopology(layout: Layout): Topology {
  const host = (name: string) => ({ name, router: DEFAULT_BEHAVIOUR });
  if (layout === 'one-nat') return { hosts: [host('alice'), { ...host('bob'), sharesRouterWith: 'alice' }] };
  if (layout === 'double-nat')
    return { hosts: [{ ...host('alice'), cgnat: DEFAULT_BEHAVIOUR }, host('bob')] };
  return { hosts: [host('alice'), host('bob')] };
}

export async function startPunchLab(
  labId: string = String(process.pid),
  layout: Layout = 'two-nats',
): Promise<PunchLab> {
  const plan = planLab(labId, layoutTopology(layout));
  applyLab(plan);
  const disarm = teardownOnExit(plan);
  // Tied to us: if we die (even by SIGKILL, when teardownOnExit cannot run) they end too.
  const inHost = (host: string, script: string, args: string[]) =>
    startScript(script, args, { netns: namespaceName(labId, host) });
  const processes = [
    inHost('rv', 'scripts/rendezvous.ts', [
      '--listen',
      `${RENDEZVOUS_ADDRESS}:${RENDEZVOUS_PORT}`,
      '--pair-timeout',
      '20s',
    ]),
    inHost('alice', 'scripts/lab.ts', ['agent', '--name', 'alice']),
    inHost('bob', 'scripts/lab.ts', ['agent', '--name', 'bob']),
  ] as const;
  const close = async () => {
    await Promise.all(processes.map((child) => child.stop()));
    disarm();
    teardownLab(plan);
  };
  try {
    const [server, aliceProcess, bobProcess] = processes;
    const alice = new PunchAgentHandle(aliceProcess);
    const bob = new PunchAgentHandle(bobProcess);
    await Promise.all([server.waitForLine(/ listening /, 60_000), alice.ready(), bob.ready()]);
    return { plan, alice, bob, serverLog: server.output, close };
  } catch (error) {
    await close();
    throw error;
  }
}

let nextPort = 40_000;
let nextSession = 1;

export interface PunchTiming {
  deadlineMs: number;
  retryIntervalMs: number;
  timing: Timing;
  predict?: number;
  quietMs?: number;
  keepAliveMs?: number;
}

/** One hole punch between alice and bob through the lab's rendezvous server. */
export async function punchOnce(lab: PunchLab, options: PunchTiming): Promise<[PunchOutcome, PunchOutcome]> {
  const localPort = nextPort;
  nextPort = nextPort >= 59_999 ? 40_000 : nextPort + 1;
  const id = nextSession++;
  const common = {
    id,
    session: `p${process.pid}-${id}`,
    secret: `secret-${id}`,
    server: { host: RENDEZVOUS_ADDRESS, port: RENDEZVOUS_PORT },
    localPort,
    deadlineMs: options.deadlineMs,
    retryIntervalMs: options.retryIntervalMs,
    singleAttempt: options.timing !== 'sync',
    ...(options.predict ? { predict: options.predict } : {}),
    ...(options.quietMs ? { quietMs: options.quietMs } : {}),
    ...(options.keepAliveMs ? { keepAliveMs: options.keepAliveMs } : {}),
  };
  return Promise.all([
    lab.alice.punch({ ...common, extraDelayMs: 0 }),
    lab.bob.punch({ ...common, extraDelayMs: skewOf(options.timing) }),
  ]);
}

/** A punch counts as direct only if both sides connected and each read the other's line. */
function combine(pair: [PunchOutcome, PunchOutcome]): PunchOutcome {
  const [a, b] = pair;
  const sockets = (a.sockets ?? 1) + (b.sockets ?? 1);
  if (a.ok && b.ok)
    return {
      ...a,
      elapsedMs: Math.max(a.elapsedMs, b.elapsedMs),
      attempts: Math.max(a.attempts, b.attempts),
      sockets,
    };
  const failed = a.ok ? b : a;
  return { ...failed, ok: false, attempts: Math.max(a.attempts, b.attempts), sockets };
}

/**
 * Rows whose success is a matter of timing (SYNs crossing, lost packets) get more time to find it;
 * a late start needs the deadline to reach past it; a quiet connection needs its quiet.
 */
export function deadlineFor(row: MatrixRow, deadlineMs: number): number {
  const base = row.expect === 'some' ? deadlineMs * TIMING_ROW_DEADLINE_FACTOR : deadlineMs;
  return base + skewOf(row.timing);
}

export const TIMING_ROW_DEADLINE_FACTOR = 3;

/** Applies a row's routers to a lab of its layout. */
function configureRow(lab: PunchLab, row: MatrixRow): void {
  reconfigureRouter(lab.plan, 'alice', row.alice);
  if ((row.layout ?? 'two-nats') !== 'one-nat') reconfigureRouter(lab.plan, 'bob', row.bob);
  if (row.layout === 'double-nat') reconfigureRouter(lab.plan, 'alice-cgnat', row.cgnat ?? DEFAULT_BEHAVIOUR);
}

export async function runNatMatrix(options: MatrixOptions): Promise<RowSummary[]> {
  const labs = new Map<Layout, PunchLab>();
  const summaries: RowSummary[] = [];
  const baseId = options.labId ?? String(process.pid);
  try {
    for (const [index, row] of options.rows.entries()) {
      options.signal?.throwIfAborted();
      const layout = row.layout ?? 'two-nats';
      let lab = labs.get(layout);
      if (!lab) {
        // One lab per layout, made when a row first needs it; ids stay within LAB_ID's 12 characters.
        const suffix = layout === 'two-nats' ? '' : layout === 'one-nat' ? 'h' : 'd';
        lab = await startPunchLab(`${baseId}${suffix}`.slice(-12), layout);
        labs.set(layout, lab);
      }
      configureRow(lab, row);
      const punch = () =>
        punchOnce(lab, {
          deadlineMs: deadlineFor(row, options.deadlineMs),
          retryIntervalMs: options.retryIntervalMs,
          timing: row.timing,
          ...(row.predict ? { predict: row.predict } : {}),
          ...(row.quietMs ? { quietMs: row.quietMs } : {}),
          ...(row.keepAliveMs ? { keepAliveMs: row.keepAliveMs } : {}),
        });
      // Punches at once share a sequential router's counter: predicted ports would go to each
      // other. Those rows punch one after another.
      const pairs: [PunchOutcome, PunchOutcome][] = [];
      if (row.predict) for (let i = 0; i < options.punches; i++) pairs.push(await punch());
      else pairs.push(...(await Promise.all(Array.from({ length: options.punches }, punch))));
      const summary = summarizeRow(row, pairs.map(combine));
      summaries.push(summary);
      options.onRow?.(summary, index);
    }
  } finally {
    for (const lab of labs.values()) await lab.close();
  }
  return summaries;
}
