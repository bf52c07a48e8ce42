/**
 * An agent that knows its place among the agents (Kubernetes: JOB_COMPLETION_INDEX and the peer list
 * the manifests give every pod): its name is the first label of its own entry, and it refuses a run
 * whose plan disagrees with what it was told (another agent list, another order, a peer that resolves
 * elsewhere here than where the coordinator sends it), naming the difference.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { UsageError } from '../core/errors.ts';
import type { LinkAssignment } from './types.ts';

export interface PeerList {
  /** Every agent's address (a DNS name or an IP) in index order, this agent's own included. */
  names: string[];
  /** This agent's index in `names`. */
  index: number;
}

/** The name reports give the agent at this address: its first DNS label (an IP stays whole). */
export function agentNameOf(address: string): string {
  return isIP(address) ? address : (address.split('.')[0] as string);
}

export function parsePeerList(peersText: string, indexText: string | undefined, indexFrom: string): PeerList {
  const names = peersText
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  if (names.length < 2) throw new UsageError(`--peers: at least two agents, got '${peersText}'`);
  for (const name of names)
    if (!isIP(name) && !/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9-]{1,63})*$/.test(name))
      throw new UsageError(`--peers: '${name}' is not a host name or IP address`);
  const labels = names.map(agentNameOf);
  const twice = labels.find((label, at) => labels.indexOf(label) !== at);
  if (twice) throw new UsageError(`--peers: the name '${twice}' comes twice`);
  if (indexText === undefined) throw new UsageError(`--peers needs this agent's index: ${indexFrom}`);
  if (!/^\d+$/.test(indexText.trim()))
    throw new UsageError(`${indexFrom}: '${indexText}' is not an index (0, 1, ...)`);
  const index = Number(indexText.trim());
  if (index >= names.length)
    throw new UsageError(
      `${indexFrom}: index ${index}, but --peers names ${names.length} agents (0..${names.length - 1})`,
    );
  return { names, index };
}

/**
 * Why this agent refuses the coordinator's links, or undefined. The coordinator plans a link between
 * every two agents, side A on the one it lists first: so the roles show its order.
 */
export async function disagreement(
  peers: PeerList,
  links: readonly LinkAssignment[],
): Promise<string | undefined> {
  const labels = peers.names.map(agentNameOf);
  const self = labels[peers.index] as string;
  const given = new Set<string>();
  for (const link of links) {
    // An agent listed by address is known by its address (the name it announces may be another).
    const byName = labels.indexOf(link.peerName);
    const at = byName >= 0 ? byName : peers.names.indexOf(link.peer);
    if (at < 0 || at === peers.index)
      return `the coordinator pairs ${self} with '${link.peerName}', which is not among its other peers (${labels.join(',')})`;
    given.add(labels[at] as string);
    const expected = peers.index < at ? 'a' : 'b';
    if (link.role !== expected)
      return `index: ${self} is agent ${peers.index} of ${labels.join(',')}, but the coordinator lists ${labels[at]} (agent ${at} here) ${link.role === 'a' ? 'after' : 'before'} it`;
  }
  const missing = labels.filter((label, at) => at !== peers.index && !given.has(label));
  if (missing.length)
    return `peers: ${self} was told of ${labels.join(',')}, the coordinator's run leaves out ${missing.join(',')}`;
  for (const link of links) {
    const byName = labels.indexOf(link.peerName);
    const name = peers.names[byName >= 0 ? byName : peers.names.indexOf(link.peer)] as string;
    if (isIP(name)) {
      if (name !== link.peer) return `peer ${name}: the coordinator sends ${self} to ${link.peer}`;
      continue;
    }
    let here: string;
    try {
      here = (await lookup(name, { family: isIP(link.peer) || 4 })).address;
    } catch (error) {
      return `peer ${name} does not resolve here (${(error as NodeJS.ErrnoException).code ?? String(error)})`;
    }
    if (here !== link.peer)
      return `peer ${name} resolves to ${here} here, the coordinator sends ${self} to ${link.peer}`;
  }
  return undefined;
}
