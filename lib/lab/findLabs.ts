/**
 * Which labs a `lab.ts status|down` acts on: this clone's (its state directory), the one named by id
 * (whichever of this user's clones made it, or none: namespaces left without a state file), or all
 * of them (--all: every clone's of this user, and as root every lab namespace on the machine).
 */
import { labNamespacesById, liveStates, namespacesOfLab } from './buildLab.ts';
import { allStateDirectories, stateDirectory } from './labState.ts';
import type { LabState } from './types.ts';

export type LabSelector = { kind: 'this' } | { kind: 'id'; id: string } | { kind: 'all' };

export interface FoundLabs {
  /** Labs with a state file. */
  states: LabState[];
  /** Lab namespaces with no state file among those read, by lab id (root only: `ip netns` is root's). */
  strays: Map<string, string[]>;
}

export function findLabs(selector: LabSelector): FoundLabs {
  const strays = new Map<string, string[]>();
  if (selector.kind === 'this') return { states: liveStates(stateDirectory()), strays };
  const all = allStateDirectories().flatMap((directory) => liveStates(directory));
  const root = process.getuid?.() === 0;
  if (selector.kind === 'id') {
    const states = all.filter((state) => state.plan.id === selector.id);
    const namespaces = root && !states.length ? namespacesOfLab(selector.id) : [];
    if (namespaces.length) strays.set(selector.id, namespaces);
    return { states, strays };
  }
  if (root) {
    const known = new Set(all.filter((state) => !state.userNamespace).map((state) => state.plan.id));
    for (const [id, namespaces] of labNamespacesById()) if (!known.has(id)) strays.set(id, namespaces);
  }
  return { states: all, strays };
}
