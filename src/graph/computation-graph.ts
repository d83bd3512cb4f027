import type { MultiDirectedGraph } from 'graphology';
import type { OnnxModel } from '../onnx/read.js';
import type { ModelIndex } from './model-index.js';
import type { BufferSlot, OpNode, ParamSlot, Unsupported } from './types.js';

/**
 * A model as the GHN sees it: canonical ops as nodes, activation flow as edges, every trainable
 * tensor a typed slot on its op. Built by `buildGraph`; read-only afterwards.
 */
export class ComputationGraph {
  constructor(
    readonly model: OnnxModel,
    readonly index: ModelIndex,
    /** graphology graph keyed by op id; node attributes are the OpNodes. */
    readonly graph: MultiDirectedGraph<OpNode>,
    /** Ops in topological order. */
    readonly ops: readonly OpNode[],
    readonly slots: ReadonlyMap<string, ParamSlot>,
    readonly buffers: readonly BufferSlot[],
    readonly unsupported: readonly Unsupported[],
  ) {}

  op(id: string): OpNode {
    return this.graph.getNodeAttributes(id);
  }

  slotsOf(op: OpNode): ParamSlot[] {
    return op.params.map((id) => this.slots.get(id)!);
  }

  /** Total trainable elements; a shared tensor counts once per slot it fills. */
  get parameterCount(): number {
    let total = 0;
    for (const slot of this.slots.values()) total += slot.elements;
    return total;
  }

  /**
   * Ops whose output reaches a graph output without passing another op with weights: the
   * classifier (or whatever head the model ends in).
   */
  headOps(): OpNode[] {
    const heads: OpNode[] = [];
    const seen = new Set<string>();
    const stack = this.ops.filter((op) => op.isGraphOutput).map((op) => op.id);
    while (stack.length) {
      const id = stack.pop()!;
      if (seen.has(id)) continue;
      seen.add(id);
      const op = this.op(id);
      if (op.params.some((s) => this.slots.get(s)!.role.endsWith('.weight'))) {
        heads.push(op);
        continue;
      }
      stack.push(...this.graph.inNeighbors(id));
    }
    return heads;
  }
}
