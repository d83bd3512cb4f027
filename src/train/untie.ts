/**
 * Gives every parameter slot, and every BatchNorm's running statistics, a tensor of its own before
 * training. PyTorch's exporter merges initializers with identical values (fresh BN scales, zero
 * biases, running statistics) into one tensor, read directly and through Identity nodes; trained,
 * each use must diverge.
 * - Parameter slots are split by the same slot-level writer that `ghn predict` uses
 *   (graph/write-parameters.ts), with each slot's current values: copies get PyTorch's parameter
 *   names (the Identity outputs), and buffers that shared a parameter's tensor keep theirs.
 * - Running statistics read by several BatchNormalization nodes (buffers, not slots) get one copy
 *   per node, since each node updates its own.
 * The model is changed in place.
 */
import { buildGraph } from '../graph/build.js';
import { writeParameters } from '../graph/write-parameters.js';
import { readFloat32 } from '../onnx/tensor.js';
import { DataType, type OnnxModel, type TensorProto } from '../onnx/types.js';

/** Maps each original initializer name to the names that now carry its value (itself included when still used). */
export type UntieMap = Map<string, string[]>;

function copyAs(name: string, source: TensorProto, model: OnnxModel): TensorProto {
  const data = readFloat32(source, model);
  const bytes = new Uint8Array(data.length * 4);
  new Float32Array(bytes.buffer).set(data);
  return { name, dims: [...(source.dims ?? [])], dataType: DataType.FLOAT, rawData: bytes };
}

export function untieSharedInitializers(model: OnnxModel): UntieMap {
  const copies: UntieMap = new Map();
  const record = (original: string, copy: string) => {
    const list = copies.get(original) ?? [];
    if (!list.includes(copy)) list.push(copy);
    copies.set(original, list);
  };
  untieSlots(model, record);
  untieRunningStatistics(model, record);
  const remaining = new Set((model.proto.graph!.initializer ?? []).map((t) => t.name ?? ''));
  for (const [original, list] of copies) {
    if (remaining.has(original) && !list.includes(original)) list.unshift(original);
  }
  return copies;
}

/** Slots whose initializer is shared (with another slot, or with any other reader) get their own. */
function untieSlots(model: OnnxModel, record: (original: string, copy: string) => void): void {
  const graph = buildGraph(model);
  const inits = new Map((model.proto.graph!.initializer ?? []).map((t) => [t.name ?? '', t]));
  const slotsPerInitializer = new Map<string, number>();
  for (const slot of graph.slots.values()) slotsPerInitializer.set(slot.initializer, (slotsPerInitializer.get(slot.initializer) ?? 0) + 1);
  const shared = [...graph.slots.values()].filter(
    (s) => slotsPerInitializer.get(s.initializer)! > 1 || graph.index.consumersOf(s.initializer).length > 1,
  );
  if (shared.length === 0) return;
  const current = new Map(shared.map((s) => [s.id, readFloat32(inits.get(s.initializer)!, model)]));
  const written = writeParameters(graph, current);
  model.proto.graph = written.model.proto.graph;
  for (const slot of shared) record(slot.initializer, written.initializerOf.get(slot.id)!);
}

/**
 * Running statistics are buffers, not slots: each BatchNorm gets initializers of its own for them,
 * whether it read a tensor shared with other nodes directly or through an Identity (then the copy
 * takes the Identity output's name, PyTorch's buffer name, and the Identity goes).
 */
function untieRunningStatistics(model: OnnxModel, record: (original: string, copy: string) => void): void {
  const graph = model.proto.graph!;
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const isFloat = (name: string) => inits.get(name)?.dataType === DataType.FLOAT;
  const identityOf = new Map((graph.node ?? []).filter((n) => n.opType === 'Identity' && isFloat(n.input?.[0] ?? '')).map((n) => [n.output![0]!, n]));
  const readers = new Map<string, number>();
  for (const node of graph.node ?? []) for (const name of node.input ?? []) readers.set(name, (readers.get(name) ?? 0) + 1);
  const dropped = new Set<object>();
  const materialize = (name: string, source: TensorProto, original: string) => {
    const copy = copyAs(name, source, model);
    graph.initializer!.push(copy);
    inits.set(name, copy);
    record(original, name);
  };
  for (const node of graph.node ?? []) {
    if (node.opType !== 'BatchNormalization') continue;
    for (const input of [3, 4]) {
      const name = node.input![input]!;
      const identity = identityOf.get(name);
      if (identity && readers.get(name) === 1) {
        materialize(name, inits.get(identity.input![0]!)!, identity.input![0]!);
        dropped.add(identity);
        continue;
      }
      const source = identity ? identity.input![0]! : name;
      if ((readers.get(name) ?? 0) < 2 || !isFloat(source)) continue;
      const fresh = `${name}__${node.name || node.output![0]}`;
      materialize(fresh, inits.get(source)!, source);
      readers.set(name, readers.get(name)! - 1);
      node.input![input] = fresh;
    }
  }
  graph.node = (graph.node ?? []).filter((n) => !dropped.has(n));
  // Originals nobody reads any more go.
  const used = new Set(graph.node.flatMap((n) => n.input ?? []));
  const outputs = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  graph.initializer = graph.initializer!.filter((t) => used.has(t.name ?? '') || outputs.has(t.name ?? ''));
}
