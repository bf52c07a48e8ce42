import { describe, expect, it } from 'vitest';
import {
  LOOPBACK_ADDRESS_COUNT,
  loopbackAddress,
  PLAN_ADDRESS_COUNT,
  pairEndpoints,
  planPairs,
  warmupCapacity,
  warmupPlan,
} from '../../lib/stress/planPairs.ts';

describe('planPairs', () => {
  it('maps the loopback pool, skipping 127.0.0.x and the .0/.255 of each /24', () => {
    expect(loopbackAddress(0)).toBe('127.0.1.1');
    expect(loopbackAddress(253)).toBe('127.0.1.254');
    expect(loopbackAddress(254)).toBe('127.0.2.1');
    expect(loopbackAddress(LOOPBACK_ADDRESS_COUNT - 1)).toBe('127.255.255.254');
    expect(() => loopbackAddress(LOOPBACK_ADDRESS_COUNT)).toThrow(RangeError);
  });

  it('never reuses a local endpoint or a 4-tuple within the plan', () => {
    const plan = planPairs(undefined, { ports: { first: 21_000, last: 21_009 }, addresses: 7 });
    expect(plan.capacity).toBe(30); // 10 ports x 3 address pairs (the 7th address is unused)
    const locals = new Set<string>();
    const tuples = new Set<string>();
    for (let id = 0; id < plan.capacity; id += 1) {
      const { a, b } = pairEndpoints(plan, id);
      expect(a.port).toBe(b.port);
      expect(a.host).not.toBe(b.host);
      locals.add(`${a.host}:${a.port}`);
      locals.add(`${b.host}:${b.port}`);
      tuples.add(`${a.host}:${a.port}-${b.host}:${b.port}`);
    }
    expect(locals.size).toBe(2 * plan.capacity);
    expect(tuples.size).toBe(plan.capacity);
    // Consecutive pairs (those in flight together) use different ports.
    expect(pairEndpoints(plan, 0).a.port).not.toBe(pairEndpoints(plan, 1).a.port);
    expect(() => pairEndpoints(plan, plan.capacity)).toThrow(RangeError);
  });

  it('holds millions of pairs by default and refuses more than it can hold', () => {
    const plan = planPairs(1_000_000, { ports: { first: 1024, last: 65_535 } });
    expect(plan.capacity).toBeGreaterThan(1e11);
    expect(() => planPairs(31, { ports: { first: 21_000, last: 21_009 }, addresses: 6 })).toThrow(
      /--pairs 31 exceeds .* 30/,
    );
  });

  it('keeps the warm-up pairs on an address pair no run plan uses', () => {
    const ports = { first: 1024, last: 65_535 };
    const widest = planPairs(undefined, { ports, addresses: PLAN_ADDRESS_COUNT });
    const warm = warmupPlan(widest);
    // Same keys, in the same order, and the same capacity as the run plan: one hidden class in the worker.
    expect(Object.keys(warm)).toEqual(Object.keys(widest));
    expect(warm.capacity).toBe(widest.capacity);
    expect(warmupCapacity(widest)).toBe(widest.portCount);
    const lastRun = pairEndpoints(widest, widest.capacity - 1);
    for (const id of [0, 1, warmupCapacity(widest) - 1]) {
      const { a, b } = pairEndpoints(warm, id);
      expect([a.host, b.host]).toEqual([
        loopbackAddress(LOOPBACK_ADDRESS_COUNT - 2),
        loopbackAddress(LOOPBACK_ADDRESS_COUNT - 1),
      ]);
      expect([lastRun.a.host, lastRun.b.host]).not.toContain(a.host);
      expect([lastRun.a.host, lastRun.b.host]).not.toContain(b.host);
    }
    expect(() => planPairs(undefined, { ports, addresses: LOOPBACK_ADDRESS_COUNT })).toThrow(/--addresses/);
  });

  it('starts at the round offset and wraps', () => {
    const plan = planPairs(undefined, { ports: { first: 100, last: 101 }, addresses: 6, roundOffset: 2 });
    expect(pairEndpoints(plan, 0).a.host).toBe(loopbackAddress(4));
    expect(pairEndpoints(plan, 2).a.host).toBe(loopbackAddress(0));
  });
});
