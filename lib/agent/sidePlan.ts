/**
 * Which ports the two sides of a link's pair N use. Pure: the agents and the coordinator compute the
 * same endpoints from the same numbers.
 *
 * A pair's connection is the 4-tuple (A's address, port a, B's public address, port b), and through a
 * NAT the one on the WAN as well: it must not be reused while an earlier one lingers (TIME_WAIT in
 * the hosts, in the routers' conntrack tables). With one address per host the link walks the port
 * pairs (a, b) of its range: slot s = N mod n gives a = s, and round r = N div n gives b = s + r
 * (mod n). Every (a, b) comes once in n * n pairs; consecutive pairs (those in flight together) use
 * different ports on both sides.
 */
import type { PortRange } from '../core/types.ts';

function portCount(range: PortRange): number {
  return range.last - range.first + 1;
}

/** Pairs a link holds before a 4-tuple would come again. */
export function linkCapacity(range: PortRange): number {
  const n = portCount(range);
  return n * n;
}

/** The local ports of side A and side B of the link's pair `index` (0-based), shifted by `offset`. */
export function pairPorts(range: PortRange, index: number, offset: number): [a: number, b: number] {
  const n = portCount(range);
  const slot = ((index % n) + offset) % n;
  const round = Math.floor(index / n) % n;
  return [range.first + slot, range.first + ((slot + round) % n)];
}
