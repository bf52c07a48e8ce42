/**
 * Runs the NAT matrix: one lab (alice and bob behind their routers, a rendezvous server on the
 * "internet"), one punch agent per host, and for each row the routers reconfigured and N punches run
 * at once (each on its own ports, so they do not interfere). The lab is removed at the end, on error,
 * and on Ctrl-C (teardownOnExit).
 */

import { startScript } from '../core/childProcess.ts';
import { applyLab, reconfigureRouter, teardownLab, teardownOnExit } from './buildLab.ts';
import { SKEW_MS, summarizeRow } from './matrixRows.ts';
import { PunchAgentHandle } from './punchAgent.ts';
import { DEFAULT_BEHAVIOUR, namespaceName, planLab, RENDEZVOUS_ADDRESS } from './topology.ts';
import type { LabPlan, MatrixRow, PunchOutcome, RowSummary } from './types.ts';

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

export async function startPunchLab(labId: string = String(process.pid)): Promise<PunchLab> {
  const plan = planLab(labId, {
    hosts: ['alice', 'bob'].map((name) => ({ name, router: DEFAULT_BEHAVIOUR })),
  });
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

/** One hole punch between alice and bob through the lab's rendezvous server. */
export async function punchOnce(
  lab: PunchLab,
  options: { deadlineMs: number; retryIntervalMs: number; timing: 'sync' | 'skew' },
): Promise<[PunchOutcome, PunchOutcome]> {
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
    singleAttempt: options.timing === 'skew',
  };
  return Promise.all([
    lab.alice.punch({ ...common, extraDelayMs: 0 }),
    lab.bob.punch({ ...common, extraDelayMs: options.timing === 'skew' ? SKEW_MS : 0 }),
  ]);
}

/** A punch counts as direct only if both sides connected and each read the other's line. */
function combine(pair: [PunchOutcome, PunchOutcome]): PunchOutcome {
  const [a, b] = pair;
  if (a.ok && b.ok)
    return {
      ...a,
      elapsedMs: Math.max(a.elapsedMs, b.elapsedMs),
      attempts: Math.max(a.attempts, b.attempts),
    };
  const failed = a.ok ? b : a;
  return { ...failed, ok: false, attempts: Math.max(a.attempts, b.attempts) };
}

/** Rows whose success is a matter of timing (SYNs crossing, lost packets) get more time to find it. */
export function deadlineFor(row: MatrixRow, deadlineMs: number): number {
  return row.expect === 'some' ? deadlineMs * TIMING_ROW_DEADLINE_FACTOR : deadlineMs;
}

export const TIMING_ROW_DEADLINE_FACTOR = 3;

export async function runNatMatrix(options: MatrixOptions): Promise<RowSummary[]> {
  const lab = await startPunchLab(options.labId);
  const summaries: RowSummary[] = [];
  try {
    for (const [index, row] of options.rows.entries()) {
      options.signal?.throwIfAborted();
      reconfigureRouter(lab.plan, 'alice', row.alice);
      reconfigureRouter(lab.plan, 'bob', row.bob);
      const pairs = await Promise.all(
        Array.from({ length: options.punches }, () =>
          punchOnce(lab, {
            deadlineMs: deadlineFor(row, options.deadlineMs),
            retryIntervalMs: options.retryIntervalMs,
            timing: row.timing,
          }),
        ),
      );
      const summary = summarizeRow(row, pairs.map(combine));
      summaries.push(summary);
      options.onRow?.(summary, index);
    }
  } finally {
    await lab.close();
  }
  return summaries;
}
