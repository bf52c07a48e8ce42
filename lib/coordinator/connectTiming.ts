/**
 * Timed connects (`stress.ts --agents ... --rate N --timed-connects`): both sides of pair N connect at
 * its due time, t0 + N / rate, each on its own clock, the coordinator having moved t0 into each
 * agent's clock by the offset measured on the control channel (the pong's clock read half a round
 * trip before it arrived, from the ping with the shortest round trip: DCUtR's RTT/2). Without
 * --drop-early-rst a pair opens on the first try only if its two SYNs cross in flight, so the connects
 * must come closer together than the one-way delay. What this records per pair: how far apart the two
 * sides' connects were (their start times, each on the run's clock), which side went first, and whether
 * the pair opened on both sides' first connect (the SYNs crossed).
 */
import * as hdr from 'hdr-histogram-js';
import type { BatchHalf } from './joinSides.ts';
import { sideHalf } from './joinSides.ts';
import type { AgentBreakdown } from './types.ts';

export interface ConnectTiming {
  /** Pairs both of whose sides started (connected) during the run. */
  pairs: number;
  /** |A's connect - B's connect| in ms over those pairs. */
  skewMs: { p50: number; p90: number; p99: number; max: number; mean: number } | null;
  /** Of those pairs: A connected first, B connected first (equal counts as A). */
  aFirst: number;
  bFirst: number;
  /** Established with one connect() on each side: the two SYNs crossed. */
  crossed: number;
  /** Each agent's measured control round trip and clock offset (its clock minus the coordinator's). */
  agents: { name: string; controlRttMs: number | null; clockOffsetMs: number | null }[];
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

export class ConnectTimingRecorder {
  private readonly skewUs = hdr.build({
    lowestDiscernibleValue: 1,
    numberOfSignificantValueDigits: 3,
    autoResize: true,
  });
  private pairs = 0;
  private aFirst = 0;
  private crossed = 0;

  /** Pair `index` of a batch, from its two halves (records' start times are on the run's clock). */
  record(a: BatchHalf, b: BatchHalf, index: number, t0: number): void {
    const sideA = sideHalf(a, index, t0);
    const sideB = sideHalf(b, index, t0);
    if (!sideA.started || !sideB.started) return;
    this.pairs += 1;
    const skewMs = sideA.startedAt - sideB.startedAt;
    if (skewMs <= 0) this.aFirst += 1;
    // Sub-microsecond skews count as 1 µs (the histogram's floor).
    this.skewUs.recordValue(Math.max(1, Math.round(Math.abs(skewMs) * 1000)));
    if (
      sideA.outcome === 'established' &&
      sideB.outcome === 'established' &&
      sideA.attempts === 1 &&
      sideB.attempts === 1
    )
      this.crossed += 1;
  }

  result(agents: readonly AgentBreakdown[]): ConnectTiming {
    const h = this.skewUs;
    const ms = (us: number) => round(us / 1000);
    const timing: ConnectTiming = {
      pairs: this.pairs,
      skewMs:
        h.totalCount === 0
          ? null
          : {
              p50: ms(h.getValueAtPercentile(50)),
              p90: ms(h.getValueAtPercentile(90)),
              p99: ms(h.getValueAtPercentile(99)),
              max: ms(h.maxValue),
              mean: ms(h.mean),
            },
      aFirst: this.aFirst,
      bFirst: this.pairs - this.aFirst,
      crossed: this.crossed,
      agents: agents.map((agent) => ({
        name: agent.name,
        controlRttMs: agent.controlRttMs,
        clockOffsetMs: agent.clockOffsetMs,
      })),
    };
    h.destroy();
    return timing;
  }
}

function pct(part: number, whole: number): string {
  return whole ? `${((100 * part) / whole).toFixed(1)}%` : '-';
}

/** The report's lines for timed connects. */
export function formatConnectTiming(timing: ConnectTiming): string[] {
  const lines = ['  timed connects'];
  for (const agent of timing.agents)
    lines.push(
      `    ${agent.name}  control round trip ${agent.controlRttMs ?? '?'} ms, clock offset ${
        agent.clockOffsetMs === null
          ? '?'
          : `${agent.clockOffsetMs >= 0 ? '+' : ''}${round(agent.clockOffsetMs)}`
      } ms`,
    );
  const skew = timing.skewMs;
  lines.push(
    skew
      ? `    connect skew  |A - B| p50 ${skew.p50} ms  p90 ${skew.p90} ms  p99 ${skew.p99} ms  max ${skew.max} ms  (mean ${skew.mean} ms; A first in ${pct(timing.aFirst, timing.pairs)} of ${timing.pairs.toLocaleString('en-US')} pairs)`
      : '    connect skew  no pair had both sides connect',
    `    crossed       ${timing.crossed.toLocaleString('en-US')} of ${timing.pairs.toLocaleString('en-US')} pairs (${pct(timing.crossed, timing.pairs)}) opened on both sides' first connect: their SYNs crossed`,
  );
  return lines;
}
