/**
 * Who produces and who consumes each ONNX value, and whether a value is an activation (depends on a
 * graph input) or static (initializers, constants and whatever is computed from them or from shapes).
 * Everything the pattern matchers ask about the ONNX graph goes through here.
 */
import { GhnError } from '../errors.js';
import type { OnnxModel } from '../onnx/read.js';
import { readFloat32, tensorShape } from '../onnx/tensor.js';
import { attrTensor } from '../onnx/attributes.js';
import type { NodeProto, TensorProto } from '../onnx/types.js';
import { SHAPE_OPS } from './vocabulary.js';

export interface NodeInput {
  readonly node: number;
  readonly input: number;
}

/** Ops a static value may pass through on its way from an initializer to the op that uses it. */
const STATIC_PIPELINE_OPS: ReadonlySet<string> = new Set([
  'Identity', 'Transpose', 'Reshape', 'Unsqueeze', 'Squeeze', 'Expand', 'Cast', 'Flatten',
]);

/** A static value followed back to where its data lives. */
export interface StaticSource {
  /** Initializer name, or undefined when the data comes from a Constant node. */
  readonly initializer?: string;
  readonly tensor: TensorProto;
  /** Nodes between the source and the consumer, from the source onwards. */
  readonly path: readonly number[];
  /** The value as the consumer reads it. */
  readonly value: string;
}

export class ModelIndex {
  readonly nodes: readonly NodeProto[];
  /** Node indices in a topological order. */
  readonly order: readonly number[];
  readonly producer = new Map<string, number>();
  readonly consumers = new Map<string, NodeInput[]>();
  readonly initializers = new Map<string, TensorProto>();
  /** Graph inputs that are not initializers: the data the model is run on. */
  readonly dataInputs: readonly string[];
  readonly graphOutputs: readonly string[];
  private readonly activation = new Set<string>();
  private readonly scalarCache = new Map<string, number | null>();

  constructor(readonly model: OnnxModel) {
    const graph = model.proto.graph;
    if (!graph) throw new GhnError('bad-input', 'the model has no graph');
    this.nodes = graph.node ?? [];
    for (const init of graph.initializer ?? []) this.initializers.set(init.name ?? '', init);
    this.dataInputs = (graph.input ?? []).map((v) => v.name ?? '').filter((n) => !this.initializers.has(n));
    this.graphOutputs = (graph.output ?? []).map((v) => v.name ?? '');

    this.nodes.forEach((node, i) => {
      for (const out of node.output ?? []) if (out) this.producer.set(out, i);
      (node.input ?? []).forEach((name, input) => {
        if (!name) return;
        let list = this.consumers.get(name);
        if (!list) this.consumers.set(name, (list = []));
        list.push({ node: i, input });
      });
    });
    this.order = this.topologicalOrder();
    this.classifyValues();
  }

  node(i: number): NodeProto {
    return this.nodes[i]!;
  }

  opType(i: number): string {
    return this.nodes[i]!.opType ?? '';
  }

  inputs(i: number): readonly string[] {
    return this.nodes[i]!.input ?? [];
  }

  outputs(i: number): readonly string[] {
    return this.nodes[i]!.output ?? [];
  }

  consumersOf(value: string): readonly NodeInput[] {
    return this.consumers.get(value) ?? [];
  }

  producerOf(value: string): number | undefined {
    return this.producer.get(value);
  }

  isActivation(value: string): boolean {
    return this.activation.has(value);
  }

  /** Non-empty inputs of node i that are activations. */
  activationInputs(i: number): string[] {
    return this.inputs(i).filter((v) => v && this.activation.has(v));
  }

  /** Indices of non-empty static inputs of node i. */
  staticInputIndices(i: number): number[] {
    const result: number[] = [];
    this.inputs(i).forEach((v, k) => {
      if (v && !this.activation.has(v)) result.push(k);
    });
    return result;
  }

  isGraphOutput(value: string): boolean {
    return this.graphOutputs.includes(value);
  }

  /**
   * Follows a static value back through shape-only ops (Identity, Transpose, Reshape, …) to the
   * initializer or Constant that holds its data; undefined when it is computed (e.g. from Shape).
   */
  traceStatic(value: string): StaticSource | undefined {
    const path: number[] = [];
    let current = value;
    for (let hops = 0; hops < 16; hops++) {
      const init = this.initializers.get(current);
      if (init) return { initializer: current, tensor: init, path: path.reverse(), value };
      const p = this.producer.get(current);
      if (p === undefined) return undefined;
      const op = this.opType(p);
      path.push(p);
      if (op === 'Constant') {
        const t = attrTensor(this.node(p), 'value');
        return t ? { tensor: t, path: path.reverse(), value } : undefined;
      }
      if (!STATIC_PIPELINE_OPS.has(op)) return undefined;
      current = this.inputs(p)[0] ?? '';
    }
    return undefined;
  }

  /** The number a static single-element value holds, or undefined if it is not such a value. */
  scalar(value: string): number | undefined {
    const cached = this.scalarCache.get(value);
    if (cached !== undefined) return cached ?? undefined;
    let result: number | null = null;
    const src = this.activation.has(value) ? undefined : this.traceStatic(value);
    if (src) {
      const shape = tensorShape(src.tensor);
      if (shape.reduce((a, b) => a * b, 1) === 1) result = readFloat32(src.tensor, this.model)[0] ?? null;
    } else {
      const p = this.producer.get(value);
      const node = p === undefined ? undefined : this.node(p);
      if (node?.opType === 'Constant') {
        const f = node.attribute?.find((a) => a.name === 'value_float');
        if (f?.f !== undefined) result = f.f;
      }
    }
    this.scalarCache.set(value, result);
    return result ?? undefined;
  }

  private topologicalOrder(): number[] {
    // ONNX requires nodes in topological order; real exports comply, but check rather than trust.
    const available = new Set<string>([...this.initializers.keys(), ...this.dataInputs, '']);
    let sorted = true;
    for (const node of this.nodes) {
      if ((node.input ?? []).some((v) => !available.has(v) && this.producer.has(v))) {
        sorted = false;
        break;
      }
      for (const out of node.output ?? []) available.add(out);
    }
    if (sorted) return this.nodes.map((_, i) => i);

    const pending = this.nodes.map((node) => (node.input ?? []).filter((v) => v && this.producer.has(v)).length);
    const ready = pending.flatMap((n, i) => (n === 0 ? [i] : []));
    const order: number[] = [];
    while (ready.length) {
      const i = ready.shift()!;
      order.push(i);
      for (const out of this.outputs(i)) {
        for (const c of this.consumersOf(out)) if (--pending[c.node]! === 0) ready.push(c.node);
      }
    }
    if (order.length !== this.nodes.length) throw new GhnError('bad-input', 'the ONNX graph has a cycle');
    return order;
  }

  private classifyValues(): void {
    for (const v of this.dataInputs) this.activation.add(v);
    for (const i of this.order) {
      const op = this.opType(i);
      if (SHAPE_OPS.has(op)) continue; // shapes of activations are static
      if (this.inputs(i).some((v) => v && this.activation.has(v))) {
        for (const out of this.outputs(i)) if (out) this.activation.add(out);
      }
    }
  }
}
