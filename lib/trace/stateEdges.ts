/**
 * Edge counts on the TCP state diagram: which transitions sides took and how many sides took each,
 * gathered as paths end, in memory bounded by the distinct paths (a few, in practice) rather than by
 * the sides. A path is interned once; a side keeps a small number that refers to it.
 */
import type { EdgeCount, PathCount, StateEdges, TcpState } from './types.ts';

/** Distinct paths interned; a side on a path beyond them keeps its own copy of the states. */
export const MAX_INTERNED_PATHS = 1024;
/** Distinct paths listed in a StateEdges (the rest is counted in sidesNotListed). */
export const MAX_PATHS_LISTED = 32;

/** A path as a side keeps it: the number of an interned path, or the states themselves. */
export type PathRef = number | readonly TcpState[];

export function edgeKey(from: TcpState, to: TcpState): string {
  return `${from}>${to}`;
}

/** The transitions of a path, in order (a repeated state is not a transition). */
export function edgesOf(states: readonly TcpState[]): [TcpState, TcpState][] {
  const edges: [TcpState, TcpState][] = [];
  for (let index = 1; index < states.length; index += 1) {
    const from = states[index - 1] as TcpState;
    const to = states[index] as TcpState;
    if (from !== to) edges.push([from, to]);
  }
  return edges;
}

/** Counts sides by path; edges follow from the paths. */
export class PathTally {
  private readonly ids = new Map<string, number>();
  private readonly interned: { states: readonly TcpState[]; sides: number }[] = [];
  /** Edges of the sides whose path was not interned (the table was full). */
  private readonly overflowEdges = new Map<string, number>();
  private counted = 0;

  constructor(private readonly maxInterned = MAX_INTERNED_PATHS) {}

  /** A reference to this path, to count later (interns it if there is room). */
  ref(states: readonly TcpState[]): PathRef {
    const key = states.join('>');
    let id = this.ids.get(key);
    if (id === undefined && this.interned.length < this.maxInterned) {
      id = this.interned.length;
      this.interned.push({ states: states.slice(), sides: 0 });
      this.ids.set(key, id);
    }
    return id ?? states.slice();
  }

  /** Counts `sides` sides that took this path. */
  count(ref: PathRef, sides = 1): void {
    this.counted += sides;
    if (typeof ref === 'number') {
      const entry = this.interned[ref];
      if (entry) entry.sides += sides;
      return;
    }
    for (const [from, to] of edgesOf(ref)) {
      const key = edgeKey(from, to);
      this.overflowEdges.set(key, (this.overflowEdges.get(key) ?? 0) + sides);
    }
  }

  /** ref and count at once. */
  add(states: readonly TcpState[]): void {
    this.count(this.ref(states));
  }

  get sides(): number {
    return this.counted;
  }

  result(): StateEdges {
    const edges = new Map(this.overflowEdges);
    const paths: PathCount[] = [];
    for (const { states, sides } of this.interned) {
      if (sides === 0) continue;
      paths.push({ states: states.slice(), sides });
      for (const [from, to] of edgesOf(states)) {
        const key = edgeKey(from, to);
        edges.set(key, (edges.get(key) ?? 0) + sides);
      }
    }
    paths.sort((x, y) => y.sides - x.sides);
    const listed = paths.slice(0, MAX_PATHS_LISTED);
    const edgeCounts: EdgeCount[] = Array.from(edges, ([key, sides]) => {
      const [from, to] = key.split('>') as [TcpState, TcpState];
      return { from, to, sides };
    }).sort((x, y) => y.sides - x.sides);
    return {
      sides: this.counted,
      edges: edgeCounts,
      paths: listed,
      sidesNotListed: this.counted - listed.reduce((sum, path) => sum + path.sides, 0),
    };
  }
}
