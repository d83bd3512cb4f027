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
import { untieRunningStatistics } from '../graph/running-statistics.js';
import { readFloat32 } from '../onnx/tensor.js';
import type { OnnxModel } from '../onnx/types.js';

/** Maps each original initializer name to the names that now carry its value (itself included when still used). */
export type UntieMap = Map<string, string[]>;

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
