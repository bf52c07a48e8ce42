/**
 * The pairs of a distributed run, planned across agents: every two agents form a link (side A on the
 * first, side B on the second), and the run's batches go to the links in turn, so every pair of
 * routers is crossed as often as every other. A batch is consecutive pair ids of one link; within the
 * link the pairs are numbered too, and that number picks the ports (lib/agent/sidePlan.ts). Pure.
 */
import { linkCapacity, pairPorts } from '../agent/sidePlan.ts';
import type { PortRange } from '../core/types.ts';
import type { StressOptions } from '../stress/types.ts';
import type { AgentSpec, Link } from './types.ts';

/** All pairs of agents, in order (0,1), (0,2), ..., (1,2), ...; each link's ports start elsewhere. */
export function planLinks(agents: number, ports: PortRange): Link[] {
  const links: Link[] = [];
  for (let a = 0; a < agents; a += 1)
    for (let b = a + 1; b < agents; b += 1) links.push({ link: links.length, a, b, portOffset: 0 });
  const count = ports.last - ports.first + 1;
  const step = Math.floor(count / Math.max(1, links.length));
  for (const link of links) link.portOffset = link.link * step;
  return links;
}

/** Pairs the plan holds without a 4-tuple coming again. */
export function planCapacity(links: number, ports: PortRange): number {
  return links * linkCapacity(ports);
}

/**
 * Pairs per batch: enough batches in flight (about eight per link at the asked concurrency) that a
 * batch waiting for its slowest pair leaves the others busy; with --rate about 20 ms of the schedule.
 */
export function batchSize(
  options: Pick<StressOptions, 'concurrency' | 'pairs' | 'rate'>,
  links: number,
): number {
  let size = Math.ceil(options.concurrency / (8 * links));
  if (options.rate !== undefined) size = Math.ceil(options.rate / 50 / links);
  if (options.pairs !== undefined) size = Math.min(size, Math.ceil(options.pairs / (4 * links)));
  return Math.max(1, Math.min(256, size));
}

/** The endpoints of a link's pair, as the log shows them: each side's own, and the public one its peer dialled. */
export function pairEndpointsOf(
  agents: readonly AgentSpec[],
  link: Link,
  index: number,
  ports: PortRange,
): { a: string; b: string; mapped: [string, string] } {
  const [portA, portB] = pairPorts(ports, index, link.portOffset);
  const a = agents[link.a] as AgentSpec;
  const b = agents[link.b] as AgentSpec;
  return {
    a: `${a.bindAddress}:${portA}`,
    b: `${b.bindAddress}:${portB}`,
    mapped: [`${a.publicAddress}:${portA}`, `${b.publicAddress}:${portB}`],
  };
}
