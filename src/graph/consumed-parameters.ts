/**
 * An audit of the graph builder: which float initializers the model's nodes read in a parameter
 * position, by the ONNX operators' signatures alone (not by the builder's pattern tables), and
 * which of them a prediction left as they were. A learned tensor the builder does not place as a
 * slot keeps whatever the file had; this catches such tensors whatever pattern they hide in.
 */
import type { OnnxModel } from '../onnx/read.js';
import { readTensorData } from '../onnx/tensor.js';
import { DataType, type TensorProto } from '../onnx/types.js';
import { ModelIndex } from './model-index.js';

/**
 * Inputs that hold a learned tensor when they come from a float initializer, per operator, given the
 * input position and the tensor's element count. BatchNorm's inputs 3–4 are running statistics.
 * Add and Mul read learned biases, position embeddings and scales (Mul also one-element gains);
 * one-element Add operands and Sub/Div operands are constants in PyTorch exports (eps, means, √d).
 */
const PARAMETER_INPUTS: Readonly<Record<string, (input: number, elements: number) => boolean>> = {
  Conv: (k) => k >= 1,
  ConvTranspose: (k) => k >= 1,
  Gemm: (k) => k >= 1,
  MatMul: () => true,
  Einsum: () => true,
  BatchNormalization: (k) => k === 1 || k === 2,
  LayerNormalization: (k) => k >= 1,
  GroupNormalization: (k) => k >= 1,
  InstanceNormalization: (k) => k >= 1,
  PRelu: (k) => k === 1,
  Gather: (k) => k === 0,
  Concat: () => true,
  Add: (_, n) => n >= 2,
  Mul: (_, n) => n >= 1,
};

const FLOAT_TYPES: ReadonlySet<number> = new Set([DataType.FLOAT, DataType.FLOAT16, DataType.DOUBLE, DataType.BFLOAT16]);

/** One place a node reads a float initializer as a parameter. */
export interface ConsumedParameter {
  readonly initializer: string;
  /** Index of the reading node in the model's node list, its type, name and input position. */
  readonly node: number;
  readonly opType: string;
  readonly nodeName: string;
  readonly input: number;
  readonly elements: number;
}

/** Nodes whose results reach a graph output (dead nodes read nothing that matters). */
function liveNodes(index: ModelIndex): Set<number> {
  const live = new Set<number>();
  const stack = [...index.graphOutputs];
  const seen = new Set<string>();
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    const p = index.producerOf(v);
    if (p === undefined || live.has(p)) continue;
    live.add(p);
    for (const input of index.inputs(p)) if (input) stack.push(input);
  }
  return live;
}

/** Every (node, input) of a live node that reads a float initializer in a parameter position. */
export function consumedParameters(model: OnnxModel): ConsumedParameter[] {
  const index = new ModelIndex(model);
  const live = liveNodes(index);
  const found: ConsumedParameter[] = [];
  for (const node of index.order) {
    const isParameter = PARAMETER_INPUTS[index.opType(node)];
    if (!isParameter || !live.has(node)) continue;
    index.inputs(node).forEach((value, input) => {
      if (!value || index.isActivation(value)) return;
      const source = index.traceStatic(value);
      if (!source?.initializer || !FLOAT_TYPES.has(source.tensor.dataType ?? 0)) return;
      const elements = (source.tensor.dims ?? []).reduce<number>((a, d) => a * Number(d), 1);
      if (!isParameter(input, elements)) return;
      found.push({
        initializer: source.initializer, node, opType: index.opType(node), nodeName: index.node(node).name ?? '', input, elements,
      });
    });
  }
  return found;
}

function bytesOf(t: TensorProto, model: OnnxModel): Buffer {
  const data = readTensorData(t, model);
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * The consumed parameters of `original` that `written` (its prediction) still holds byte for byte:
 * the node with the same first output reads, at the same input, an initializer equal to the
 * original's. A node missing from `written` counts as unpredicted (nothing shows it was written).
 */
export function unpredictedParameters(original: OnnxModel, written: OnnxModel): ConsumedParameter[] {
  const writtenIndex = new ModelIndex(written);
  const twinOf = new Map<string, number>();
  writtenIndex.nodes.forEach((n, i) => twinOf.set(n.output?.[0] ?? '', i));
  const originalInits = new Map((original.proto.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const same = new Map<string, boolean>();
  return consumedParameters(original).filter((p) => {
    const originalIndexNode = original.proto.graph?.node?.[p.node];
    const twin = twinOf.get(originalIndexNode?.output?.[0] ?? '');
    const value = twin === undefined ? undefined : writtenIndex.inputs(twin)[p.input];
    const source = value ? writtenIndex.traceStatic(value) : undefined;
    if (!source?.initializer) return true;
    const key = `${p.initializer}\u0000${source.initializer}`;
    if (!same.has(key)) same.set(key, bytesOf(originalInits.get(p.initializer)!, original).equals(bytesOf(source.tensor, written)));
    return same.get(key)!;
  });
}

/** Distinct initializers among consumed parameters. */
export function distinctInitializers(uses: readonly ConsumedParameter[]): string[] {
  return [...new Set(uses.map((u) => u.initializer))];
}

/** The uses no slot reads (a slot's consumer is the node input that reads its value). */
export function withoutSlots(uses: readonly ConsumedParameter[], slots: Iterable<{ readonly consumer: { readonly node: number; readonly input: number } }>): ConsumedParameter[] {
  const read = new Set<string>();
  for (const s of slots) read.add(`${s.consumer.node}:${s.consumer.input}`);
  return uses.filter((u) => !read.has(`${u.node}:${u.input}`));
}
