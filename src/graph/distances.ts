/**
 * Graph distances the GHN uses: hop distance of every op from the inputs, and all-pairs forward
 * shortest-path distances (GHN-3's attention bias and GHN-2's virtual edges). Computed once per graph.
 */
import type { ComputationGraph } from './computation-graph.js';

/** Hops from the nearest input op, in the order of `g.ops`; unreachable ops get -1. */
export function depthFromInputs(g: ComputationGraph): Int32Array {
  const position = new Map(g.ops.map((op, k) => [op.id, k]));
  const depth = new Int32Array(g.ops.length).fill(-1);
  const queue: number[] = [];
  g.ops.forEach((op, k) => {
    if (op.kind === 'input') {
      depth[k] = 0;
      queue.push(k);
    }
  });
  for (let head = 0; head < queue.length; head++) {
    const k = queue[head]!;
    for (const next of g.graph.outNeighbors(g.ops[k]!.id)) {
      const j = position.get(next)!;
      if (depth[j] === -1) {
        depth[j] = depth[k]! + 1;
        queue.push(j);
      }
    }
  }
  return depth;
}

/**
 * Forward shortest-path hop counts between all ops (row = from, column = to), n×n row-major, with
 * 0 on the diagonal and -1 where `to` is not reachable from `from`. Breadth-first from each op:
 * O(n·e), a few ms for a thousand ops.
 */
export function forwardDistances(g: ComputationGraph): Int32Array {
  const n = g.ops.length;
  const position = new Map(g.ops.map((op, k) => [op.id, k]));
  const successors = g.ops.map((op) => [...new Set(g.graph.outNeighbors(op.id))].map((id) => position.get(id)!));
  const dist = new Int32Array(n * n).fill(-1);
  const queue = new Int32Array(n);
  for (let s = 0; s < n; s++) {
    const row = s * n;
    dist[row + s] = 0;
    let head = 0;
    let tail = 0;
    queue[tail++] = s;
    while (head < tail) {
      const k = queue[head++]!;
      const d = dist[row + k]! + 1;
      for (const j of successors[k]!) {
        if (dist[row + j] === -1) {
          dist[row + j] = d;
          queue[tail++] = j;
        }
      }
    }
  }
  return dist;
}
