/**
 * The coordinator's exact merge and its joins: agents' statistics cross the control channel encoded
 * (frames, JSON) and are added, never averaged, so the merged percentiles are those of one histogram
 * fed every sample; the two halves of a pair join as the issue says (a lost agent's half is a failure
 * with agent-lost); conntrack's outputs parse; stress --lab's options are checked before any work.
 */
import { describe, expect, it } from 'vitest';
import { asAgentMessage, encodeFrame, FrameDecoder } from '../../lib/agent/controlCodec.ts';
import { AGENT_LOST, MAX_FRAME_BYTES, RECORD_FIELDS } from '../../lib/agent/types.ts';
import { breakdownOf } from '../../lib/coordinator/breakdown.ts';
import {
  parseConntrackStats,
  parseEventSummary,
  parseWatchCounters,
  statsDelta,
  watchRuleset,
} from '../../lib/coordinator/conntrack.ts';
import { joinPair } from '../../lib/coordinator/joinSides.ts';
import {
  CONNTRACK_SAMPLE_EVERY,
  defaultWorkersPerAgent,
  isLabRun,
  parseLabRunOptions,
} from '../../lib/coordinator/labOptions.ts';
import { UsageError } from '../../lib/core/errors.ts';
import { mergeStats, PairStats } from '../../lib/stress/pairStats.ts';

/** A deterministic spread of latencies (µs): a long tail, like real connects. */
function* samples(count: number, seed: number): Generator<number> {
  let state = seed;
  for (let index = 0; index < count; index += 1) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const uniform = state / 2 ** 31;
    yield Math.round(200 + 50_000 * uniform ** 6);
  }
}

/** An agent's stats message, through a real frame and the agent-message checks, as the coordinator reads it. */
function overTheWire(stats: PairStats) {
  const frame = encodeFrame({
    type: 'stats',
    stats: stats.encode(),
    peakRssBytes: 1,
    cpu: { userMs: 1, systemMs: 1 },
  });
  const [decoded] = new FrameDecoder(MAX_FRAME_BYTES).push(frame);
  const message = asAgentMessage(decoded as Record<string, unknown>);
  if (message.type !== 'stats') throw new Error('not stats');
  return message.stats;
}

describe('exact merge of agents’ statistics', () => {
  it('merged percentiles equal those of one histogram fed every sample', () => {
    const all = new PairStats();
    const agents = [new PairStats(), new PairStats(), new PairStats()];
    let index = 0;
    for (const value of samples(30_000, 7)) {
      // Uneven shares: an agent with a slower path gets most of the tail.
      const agent = agents[value > 20_000 ? 2 : index % 2] as PairStats;
      for (const target of [all, agent]) {
        target.recordEstablished(value, value * 2 + 17, 'fin');
        target.recordAttempts(1 + (index % 3), (index % 2) as 0 | 1);
      }
      index += 1;
    }
    const merged = new PairStats();
    for (const agent of agents) mergeStats(merged, overTheWire(agent));
    expect(merged.established).toBe(30_000);
    for (const p of [0, 1, 25, 50, 75, 90, 99, 99.9, 99.99, 100]) {
      expect(merged.establishUs.getValueAtPercentile(p)).toBe(all.establishUs.getValueAtPercentile(p));
      expect(merged.pairUs.getValueAtPercentile(p)).toBe(all.pairUs.getValueAtPercentile(p));
      for (const side of [0, 1] as const)
        expect(merged.attempts[side].getValueAtPercentile(p)).toBe(
          all.attempts[side].getValueAtPercentile(p),
        );
    }
    expect(merged.establishUs.mean).toBe(all.establishUs.mean);
    // An encoded histogram keeps the max to its precision: the same as one histogram encoded whole.
    const whole = mergeStats(new PairStats(), overTheWire(all));
    expect(merged.establishUs.maxValue).toBe(whole.establishUs.maxValue);
    // Averaging the agents' p99s would not give it: the tail lives on one agent.
    const averaged =
      agents.reduce((sum, agent) => sum + agent.establishUs.getValueAtPercentile(99), 0) / agents.length;
    expect(averaged).not.toBe(all.establishUs.getValueAtPercentile(99));
  });

  it('an agent’s breakdown shows its own merged sides', () => {
    const stats = new PairStats();
    for (const value of samples(1000, 3)) stats.recordEstablished(value, value + 5, 'fin');
    stats.recordFailed('EPAIRTIMEOUT', 3);
    const merged = mergeStats(new PairStats(), overTheWire(stats));
    const client = {
      spec: {
        name: 'alice',
        where: 'here',
        control: { host: '198.18.0.10', port: 1 },
        bindAddress: '10.0.1.2',
        publicAddress: '203.0.113.1',
        sharedClock: true,
      },
      info: undefined,
      controlRttMs: 0.5,
      clockOffsetMs: 0,
      cpu: { userMs: 10, systemMs: 5 },
      peakRssBytes: 1024,
    };
    const breakdown = breakdownOf(client, merged, { a: 1003, b: 0 }, undefined);
    expect(breakdown.sides).toEqual({ established: 1000, failed: 3, cancelled: 0, notStarted: 0 });
    expect(breakdown.errors).toEqual({ EPAIRTIMEOUT: 3 });
    expect(breakdown.connectMs?.p99).toBe(Math.round(stats.establishUs.getValueAtPercentile(99)) / 1000);
    expect(breakdown.lost).toBeUndefined();
  });
});

/** One side record: outcome index, error index, attempts, establishUs, startUs, durationUs, bytes, close. */
function record(fields: number[]): { records: number[]; errors: string[] } {
  expect(fields).toHaveLength(RECORD_FIELDS);
  return { records: fields, errors: ['EPAIRTIMEOUT'] };
}

describe('joining the two sides of a pair', () => {
  const t0 = 1_000_000;
  it('established only if both sides are; times relative to the earlier start', () => {
    const a = record([0, -1, 1, 900, 100, 2000, 64, 1]);
    const b = record([0, -1, 1, 700, 400, 1800, 64, 1]);
    const pair = joinPair(a, b, 0, t0);
    expect(pair).toMatchObject({ notStarted: false, outcome: 'established', attempts: [1, 1] });
    if (pair.notStarted) throw new Error('unreachable');
    expect(pair.establishUs[0]).toBeCloseTo(900, 3);
    expect(pair.establishUs[1]).toBeCloseTo(1000, 3);
    expect(pair.bytesVerified).toBe(128);
  });

  it('a failed side fails the pair with its reason', () => {
    const a = record([1, 0, 2, -1, 0, 2_000_000, 0, 0]);
    const b = record([0, -1, 1, 500, 0, 1000, 64, 1]);
    expect(joinPair(a, b, 0, t0)).toMatchObject({ outcome: 'failed', error: 'EPAIRTIMEOUT' });
  });

  it('the half of a lost agent makes the pair failed with agent-lost', () => {
    const b = record([0, -1, 1, 500, 0, 1000, 64, 1]);
    expect(joinPair({ lost: 'closed' }, b, 0, t0)).toMatchObject({ outcome: 'failed', error: AGENT_LOST });
    expect(joinPair(b, { lost: 'silent' }, 0, t0)).toMatchObject({ outcome: 'failed', error: AGENT_LOST });
  });

  it('two sides that never started are a pair not started', () => {
    const never = record([3, -1, 0, -1, 0, -1, 0, 0]);
    expect(joinPair(never, never, 0, t0)).toEqual({ notStarted: true });
  });
});

describe('conntrack outputs', () => {
  it('sums conntrack -S over CPUs and takes after minus before', () => {
    const before = parseConntrackStats(
      'cpu=0   \tfound=1 invalid=2 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 search_restart=4\n' +
        'cpu=1   \tfound=3 invalid=0 insert=0 insert_failed=1 drop=0 early_drop=0 error=0 search_restart=0\n',
    );
    expect(before).toMatchObject({
      found: 4,
      invalid: 2,
      insert_failed: 1,
      search_restart: 4,
      clash_resolve: 0,
    });
    const after = parseConntrackStats(
      'cpu=0 found=10 invalid=2 insert=0 insert_failed=1 drop=5 early_drop=0',
    );
    expect(statsDelta(before, after)).toMatchObject({ found: 6, invalid: 0, insert_failed: 0, drop: 5 });
  });

  it('reads the event counter’s summary and conntrack’s own notices', () => {
    const counts = parseEventSummary(
      'state SYN_SENT 10\nstate ESTABLISHED 9\nnew 10\n',
      'conntrack v1.4.8 (conntrack-tools): 120 flow events have been shown.\n' +
        'WARNING: We have hit ENOBUFS! We are losing events.\nsomething odd\n',
    );
    expect(counts).toMatchObject({
      statesSeen: { SYN_SENT: 10, ESTABLISHED: 9 },
      newEventsSeen: 10,
      events: 120,
      eventsLost: true,
      warnings: ['something odd'],
    });
  });
});

describe('the routers’ watch table', () => {
  it('samples 1 in N new entries in the kernel, counts directions and preserved ports for all', () => {
    const sampled = watchRuleset({ first: 2000, last: 2002 }, 16);
    expect(sampled).toContain('elements = { 2000 . 2000, 2001 . 2001, 2002 . 2002 }');
    expect(sampled).toContain('tcp sport . ct original proto-src @same counter name "preserved"');
    expect(sampled).toContain('numgen inc mod 16 vmap { 0 : jump watched, 1-15 : jump quiet }');
    expect(sampled).toContain('ct event set 0');
    const all = watchRuleset({ first: 2000, last: 2000 }, 1);
    expect(all).not.toContain('numgen');
    expect(all).toContain('ct status & confirmed == 0 meta l4proto tcp counter name "watched"');
    const off = watchRuleset({ first: 2000, last: 2000 }, 0);
    expect(off).not.toContain('numgen');
    expect(off).not.toContain('l4proto tcp counter name "watched"');
    // An entry is counted once, at its first packet: not again at a retransmitted SYN.
    expect(off).toContain('ct status & confirmed == 0 meta l4proto tcp iifname "lan" jump lan');
    expect(off).toContain('counter name "lan"');
  });

  it('reads the named counters from nft -j', () => {
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: '1.0.6' } },
        {
          counter: { family: 'ip', name: 'lan', table: 'simopen-watch', handle: 1, packets: 10, bytes: 600 },
        },
        {
          counter: {
            family: 'ip',
            name: 'preserved',
            table: 'simopen-watch',
            handle: 2,
            packets: 9,
            bytes: 540,
          },
        },
        { counter: { family: 'ip', name: 'wan', table: 'simopen-watch', handle: 3, packets: 0, bytes: 0 } },
      ],
    });
    expect(parseWatchCounters(json)).toEqual({ lan: 10, preserved: 9, wan: 0 });
  });
});

describe('stress --lab options', () => {
  it('knows a lab run by --lab before a --', () => {
    expect(isLabRun(['--pairs', '10', '--lab', 'eim:apdf:drop,eim:apdf:drop'])).toBe(true);
    expect(isLabRun(['--lab=eim:apdf:drop,eim:apdf:drop'])).toBe(true);
    expect(isLabRun(['--pairs', '10'])).toBe(false);
    expect(isLabRun(['--', '--lab'])).toBe(false);
  });

  it('takes the run’s flags as stress.ts does; --workers is per agent', () => {
    const parsed = parseLabRunOptions(
      ['--lab', 'eim:apdf:drop,eim:apdf:drop,eim:apdf:drop', '--pairs', '500'],
      2,
    );
    if (parsed.help) throw new Error('help');
    expect(parsed.topology.hosts).toHaveLength(3);
    expect(parsed.workersPerAgent).toBe(2);
    expect(parsed.options.pairs).toBe(500);
    const two = parseLabRunOptions(['--lab=eim:apdf:drop,eim:apdf:drop'], 2);
    if (two.help) throw new Error('help');
    expect(two.workersPerAgent).toBe(2);
    expect(two.options.concurrency).toBe(256);
    const four = parseLabRunOptions(['--lab=eim:apdf:drop,eim:apdf:drop', '--workers', '4'], 2);
    if (four.help) throw new Error('help');
    expect(four.workersPerAgent).toBe(4);
    expect(four.conntrackSample).toBe(CONNTRACK_SAMPLE_EVERY);
    const quiet = parseLabRunOptions(['--lab=eim:apdf:drop,eim:apdf:drop', '--conntrack-events=off'], 2);
    if (quiet.help) throw new Error('help');
    expect(quiet.conntrackSample).toBe(0);
    const all = parseLabRunOptions(['--lab=eim:apdf:drop,eim:apdf:drop', '--conntrack-events', 'all'], 2);
    if (all.help) throw new Error('help');
    expect(all.conntrackSample).toBe(1);
    expect(() =>
      parseLabRunOptions(['--lab=eim:apdf:drop,eim:apdf:drop', '--conntrack-events', 'some'], 2),
    ).toThrow(/--conntrack-events: 'some' is not on, all or off/);
  });

  it('gives each agent twice the cores shared among the hosts by default, at least 1 and at most the cores', () => {
    expect(defaultWorkersPerAgent(2, 2)).toBe(2);
    expect(defaultWorkersPerAgent(2, 3)).toBe(2);
    expect(defaultWorkersPerAgent(2, 4)).toBe(1);
    expect(defaultWorkersPerAgent(2, 6)).toBe(1);
    expect(defaultWorkersPerAgent(1, 2)).toBe(1);
    expect(defaultWorkersPerAgent(16, 2)).toBe(16);
    expect(defaultWorkersPerAgent(16, 6)).toBe(6);
  });

  it('refuses local-only flags, a missing topology and host counts outside 2..6, in one line', () => {
    const refuse = (args: string[], message: RegExp) => {
      expect(() => parseLabRunOptions(args, 2)).toThrow(UsageError);
      expect(() => parseLabRunOptions(args, 2)).toThrow(message);
    };
    refuse(['--lab', 'eim:apdf:drop,eim:apdf:drop', '--mode', 'race'], /--mode does not go with --lab/);
    refuse(['--lab', 'eim:apdf:drop,eim:apdf:drop', '--trace'], /--trace does not go with --lab/);
    refuse(['--lab'], /--lab: missing TOPOLOGY/);
    refuse(['--lab', 'eim:apdf:drop'], /2 to 6 routers/);
    refuse(['--lab', Array(7).fill('eim:apdf:drop').join(',')], /at most 6 hosts/);
    refuse(['--lab', 'eim:apdf:drop,eim:apdf:drop', '--lab', 'x'], /--lab given twice/);
    refuse(['--lab', 'eim:apdf:drop,eim:apdf:drop', '--conntrack-events', 'maybe'], /not on, all or off/);
  });
});
