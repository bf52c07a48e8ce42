/**
 * The per-agent part of a distributed report: each agent's sides, from the statistics it sent
 * (histograms decoded and added exactly, lib/stress/pairStats.ts), and how it fared on the control
 * channel; and the lines that print it. Pure but for reading the client's fields.
 */
import type { Histogram } from 'hdr-histogram-js';
import { percentilesMs, round } from '../stress/aggregateResult.ts';
import { newHistogram, type PairStats } from '../stress/pairStats.ts';
import type { AgentClient } from './agentClient.ts';
import type { AgentBreakdown, LinkSummary } from './types.ts';

export function breakdownOf(
  client: Pick<AgentClient, 'spec' | 'info' | 'controlRttMs' | 'clockOffsetMs' | 'cpu' | 'peakRssBytes'>,
  stats: PairStats | undefined,
  sides: { a: number; b: number },
  lost: { reason: string; atMs: number } | undefined,
): AgentBreakdown {
  // An agent's sides may be A on one link and B on another: its attempts are of both.
  let attempts: Histogram | undefined;
  if (stats) {
    attempts = newHistogram();
    attempts.add(stats.attempts[0]);
    attempts.add(stats.attempts[1]);
  }
  const attemptFigures =
    attempts && attempts.totalCount > 0
      ? {
          p50: attempts.getValueAtPercentile(50),
          p99: attempts.getValueAtPercentile(99),
          max: attempts.maxValue,
          mean: round(attempts.mean, 2),
        }
      : null;
  attempts?.destroy();
  return {
    name: client.spec.name,
    where: client.spec.where,
    sidesA: sides.a,
    sidesB: sides.b,
    workers: client.info?.workers ?? null,
    sockets: client.info?.sockets ?? null,
    sides: stats
      ? {
          established: stats.established,
          failed: stats.failed,
          cancelled: stats.cancelled,
          notStarted: stats.notStarted,
        }
      : null,
    errors: stats ? Object.fromEntries(Object.entries(stats.errors).sort((x, y) => y[1] - x[1])) : {},
    connectMs: stats ? percentilesMs(stats.establishUs) : null,
    sideMs: stats ? percentilesMs(stats.pairUs) : null,
    attempts: attemptFigures,
    bytesVerified: stats?.bytesVerified ?? 0,
    cpu: client.cpu ? { userMs: round(client.cpu.userMs, 0), systemMs: round(client.cpu.systemMs, 0) } : null,
    peakRssBytes: client.peakRssBytes ?? null,
    controlRttMs: client.controlRttMs === null ? null : round(client.controlRttMs),
    clockOffsetMs: client.clockOffsetMs === null ? null : round(client.clockOffsetMs),
    ...(lost ? { lost: { reason: lost.reason, atMs: round(lost.atMs, 1) } } : {}),
  };
}

function n(value: number): string {
  return value.toLocaleString('en-US');
}

function counts(record: Record<string, number>): string {
  const entries = Object.entries(record);
  return entries.length ? entries.map(([code, count]) => `${code} ${n(count)}`).join(', ') : 'none';
}

/** Report lines: one block per agent, then one line per link. */
export function formatBreakdown(agents: readonly AgentBreakdown[], links: readonly LinkSummary[]): string[] {
  const lines = ['  agents'];
  const width = Math.max(...agents.map((agent) => agent.name.length), 5);
  for (const agent of agents) {
    const head = `    ${agent.name.padEnd(width)}  ${agent.where}`;
    lines.push(
      agent.lost
        ? `${head}  LOST ${(agent.lost.atMs / 1000).toFixed(2)} s into the run: ${agent.lost.reason}`
        : head,
    );
    const indent = `    ${' '.repeat(width)}  `;
    const role = `side A of ${n(agent.sidesA)} pairs, side B of ${n(agent.sidesB)}`;
    lines.push(
      `${indent}${role}${agent.workers ? `, ${agent.workers} worker${agent.workers === 1 ? '' : 's'}` : ''}`,
    );
    if (agent.sides) {
      const { established, failed, cancelled, notStarted } = agent.sides;
      lines.push(
        `${indent}sides: established ${n(established)}  failed ${n(failed)}  cancelled ${n(cancelled)}  not started ${n(notStarted)}${failed ? ` (${counts(agent.errors)})` : ''}`,
      );
    } else lines.push(`${indent}sides: no statistics (lost before it sent them)`);
    if (agent.connectMs)
      lines.push(
        `${indent}connect  p50 ${agent.connectMs.p50} ms  p99 ${agent.connectMs.p99} ms  max ${agent.connectMs.max} ms; side p50 ${agent.sideMs?.p50 ?? '-'} ms  p99 ${agent.sideMs?.p99 ?? '-'} ms; attempts p99 ${agent.attempts?.p99 ?? '-'}`,
      );
    const cpu = agent.cpu ? `; CPU ${((agent.cpu.userMs + agent.cpu.systemMs) / 1000).toFixed(2)} s` : '';
    if (agent.controlRttMs !== null)
      lines.push(`${indent}control  round trip ${agent.controlRttMs} ms${cpu}`);
  }
  if (links.length > 1 || links.some((link) => link.expect)) {
    lines.push('  links');
    for (const link of links) {
      const expected = link.expect
        ? `; NAT matrix expects ${link.expect === 'all' ? 'all to connect' : link.expect === 'none' ? 'none to connect' : 'some to connect'}: ${link.notJudged ? `not judged (${link.notJudged})` : link.matches ? 'matches' : 'MISMATCH'}`
        : '';
      lines.push(
        `    ${link.agents[0]} -> ${link.agents[1]}  planned ${n(link.planned)}  established ${n(link.established)}  failed ${n(link.failed)}${link.failed ? ` (${counts(link.errors)})` : ''}${expected}`,
      );
    }
  }
  return lines;
}
