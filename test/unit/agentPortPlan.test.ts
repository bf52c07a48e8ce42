/**
 * The ports of a distributed run's pairs (lib/agent/sidePlan.ts, lib/coordinator/planLinks.ts): no
 * (A port, B port) comes twice within a link's capacity, the pairs in flight together use different
 * ports on both sides, and every two agents form one link.
 */
import { describe, expect, it } from 'vitest';
import { linkCapacity, pairPorts } from '../../lib/agent/sidePlan.ts';
import { planCapacity, planLinks } from '../../lib/coordinator/planLinks.ts';

describe('port plan', () => {
  it('walks every (A port, B port) once in n² pairs', () => {
    const range = { first: 2000, last: 2030 };
    const capacity = linkCapacity(range);
    expect(capacity).toBe(31 * 31);
    for (const offset of [0, 7]) {
      const seen = new Set<string>();
      for (let index = 0; index < capacity; index += 1) {
        const [a, b] = pairPorts(range, index, offset);
        expect(a).toBeGreaterThanOrEqual(range.first);
        expect(b).toBeLessThanOrEqual(range.last);
        seen.add(`${a}:${b}`);
      }
      expect(seen.size).toBe(capacity);
    }
  });

  it('gives the pairs in flight together different ports on both sides', () => {
    const range = { first: 1024, last: 65_535 };
    const window = 4096;
    for (const start of [0, 64_500, 1_000_000]) {
      const a = new Set<number>();
      const b = new Set<number>();
      for (let index = start; index < start + window; index += 1) {
        const [portA, portB] = pairPorts(range, index, 0);
        a.add(portA);
        b.add(portB);
      }
      expect(a.size).toBe(window);
      expect(b.size).toBe(window);
    }
  });

  it('makes one link per two agents, their ports starting apart', () => {
    const range = { first: 1024, last: 65_535 };
    expect(planLinks(2, range)).toHaveLength(1);
    const links = planLinks(4, range);
    expect(links.map((link) => [link.a, link.b])).toEqual([
      [0, 1],
      [0, 2],
      [0, 3],
      [1, 2],
      [1, 3],
      [2, 3],
    ]);
    expect(new Set(links.map((link) => link.portOffset)).size).toBe(6);
    expect(planCapacity(6, range)).toBe(6 * 64_512 * 64_512);
  });
});
