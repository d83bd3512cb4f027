/**
 * Puts parameter tensors into the ONNX model, one per slot: each slot's values go into its
 * initializer in the file's own layout and name. Initializers shared by several slots are split so
 * that every slot gets its own tensor; everything else (constants, shape tensors, BatchNorm running
 * statistics, nodes, metadata) is left exactly as it was. The one mechanism for splitting shared
 * tensors: `ghn predict` writes predictions with it, training unties a model with it before its
 * slots diverge (train/untie.ts).
 */
import { GhnError } from '../errors.js';
import type { ComputationGraph } from './computation-graph.js';
import type { ParamSlot } from './types.js';
import { isLazy, replaceTensorData } from '../onnx/index.js';
import { DataType, type GraphProto, type NodeProto, type OnnxModel, type TensorProto } from '../onnx/types.js';

/** Values per slot id, in the slot's stored shape and layout. */
export type SlotTensors = ReadonlyMap<string, Float32Array>;

export interface WrittenParameters {
  model: OnnxModel;
  /** Slot id → initializer name that now holds its values. */
  initializerOf: Map<string, string>;
  /** Initializers added by splitting shared tensors. */
  added: string[];
}

function cloneTensor(t: TensorProto, name: string, data: Float32Array, adopt: boolean): TensorProto {
  const copy = fieldsWithoutLazyData(t);
  copy.name = name;
  // External tensors written as split copies become inline: they are new and the data file is shared.
  if (name !== t.name && copy.externalData?.length) {
    delete copy.externalData;
    delete copy.dataLocation;
  }
  replaceTensorData(copy, data, { adopt });
  return copy;
}

/**
 * The tensor's fields; a lazy raw_data is left out (a spread would call its getter and read the
 * bytes from the model file, ~0.6 s for ResNet-50's, only for replaceTensorData to overwrite them).
 */
function fieldsWithoutLazyData(t: TensorProto): TensorProto {
  const skipData = isLazy(t);
  const source = t as Record<string, unknown>;
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(source)) if (!(skipData && key === 'rawData')) copy[key] = source[key];
  return copy as TensorProto;
}

function uniqueName(taken: Set<string>, wanted: string): string {
  let name = wanted;
  for (let k = 1; taken.has(name); k++) name = `${wanted}.${k}`;
  taken.add(name);
  return name;
}

/**
 * Returns a new model (the input is not modified) with every slot in `tensors` written. Slots not in
 * `tensors` keep their values. Throws if a tensor has the wrong number of elements.
 */
export function writeParameters(graph: ComputationGraph, tensors: SlotTensors, options: { adopt?: boolean } = {}): WrittenParameters {
  // Adopting float32 arrays the caller will not change again saves a copy of every parameter.
  const adopt = options.adopt ?? false;
  const source = graph.model.proto;
  const g = source.graph!;
  const nodes: (NodeProto | undefined)[] = (g.node ?? []).map((n) => ({ ...n, input: [...(n.input ?? [])] }));
  const initializers = new Map((g.initializer ?? []).map((t) => [t.name ?? '', t]));
  const replaced = new Map<string, TensorProto>();
  const added: TensorProto[] = [];
  const initializerOf = new Map<string, string>();
  // Node copies for uses reached through Transpose/Reshape, inserted before their reader at the end.
  const pendingCopies: { before: number; copies: NodeProto[] }[] = [];
  const taken = new Set<string>([...initializers.keys(), ...nodes.flatMap((n) => n!.output ?? [])]);

  const byInitializer = new Map<string, ParamSlot[]>();
  for (const slot of graph.slots.values()) {
    if (!tensors.has(slot.id)) continue;
    (byInitializer.get(slot.initializer) ?? byInitializer.set(slot.initializer, []).get(slot.initializer)!).push(slot);
  }

  for (const [name, slots] of byInitializer) {
    const original = initializers.get(name)!;
    preserveOtherReaders(graph, name, slots, original);
    // The use that reads the initializer directly keeps it; uses through Identity get the name the
    // Identity gave them (PyTorch's parameter name), so each split tensor loads by name.
    slots.sort((a, b) => a.path.length - b.path.length);
    slots.forEach((slot, k) => {
      const data = tensors.get(slot.id)!;
      if (data.length !== slot.elements) {
        throw new GhnError('bad-input', `parameter ${slot.id}: ${data.length} values for shape [${slot.storedShape.join(', ')}]`);
      }
      if (k === 0) {
        // The first use keeps the original initializer (and its name).
        replaced.set(name, cloneTensor(original, name, data, adopt));
        initializerOf.set(slot.id, name);
        return;
      }
      const pathIsIdentity = slot.path.every((n) => nodes[n]?.opType === 'Identity');
      if (pathIsIdentity) {
        // Read the new tensor directly; the Identity nodes of this path go if nothing else reads them.
        for (const n of slot.path) {
          const out = nodes[n]!.output?.[0] ?? '';
          const readers = graph.index.consumersOf(out).filter((c) => !(c.node === slot.consumer.node && c.input === slot.consumer.input));
          if (readers.length === 0 && !graph.index.isGraphOutput(out)) {
            nodes[n] = undefined;
            taken.delete(out);
          }
        }
        const newName = uniqueName(taken, slot.path.length ? slot.value : `${name}.${k}`);
        added.push(cloneTensor(original, newName, data, adopt));
        nodes[slot.consumer.node]!.input![slot.consumer.input] = newName;
        initializerOf.set(slot.id, newName);
      } else {
        // Reached through Transpose/Reshape…: give this use its own copy of that path.
        const newName = uniqueName(taken, `${name}.${k}`);
        added.push(cloneTensor(original, newName, data, adopt));
        let previous = newName;
        const copies: NodeProto[] = slot.path.map((n) => {
          const node = nodes[n] ?? graph.index.node(n);
          const out = uniqueName(taken, `${node.output?.[0] ?? 'value'}.${k}`);
          const copy: NodeProto = { ...node, name: node.name ? `${node.name}.${k}` : node.name, input: [previous, ...(node.input ?? []).slice(1)], output: [out] };
          previous = out;
          return copy;
        });
        nodes[slot.consumer.node]!.input![slot.consumer.input] = previous;
        pendingCopies.push({ before: slot.consumer.node, copies });
        initializerOf.set(slot.id, newName);
      }
    });
  }

  /**
   * The exporter also merges parameters with equal-valued buffers (a fresh BN scale of ones with a
   * running variance of ones). Readers of the initializer that are not parameter slots keep the
   * original values through a copy of their own.
   */
  function preserveOtherReaders(graph: ComputationGraph, name: string, slots: ParamSlot[], original: TensorProto): void {
    const entries = new Set(slots.map((s) => (s.path.length ? `${s.path[0]}:0` : `${s.consumer.node}:${s.consumer.input}`)));
    const others = graph.index.consumersOf(name).filter((c) => !entries.has(`${c.node}:${c.input}`));
    if (others.length === 0) return;
    const frozen = uniqueName(taken, `${name}.buffer`);
    added.push({ ...original, name: frozen });
    for (const c of others) nodes[c.node]!.input![c.input] = frozen;
  }

  // Insert copied path nodes just before the node that reads them, keeping topological order.
  const finalNodes: NodeProto[] = [];
  nodes.forEach((node, i) => {
    for (const p of pendingCopies.filter((c) => c.before === i)) finalNodes.push(...p.copies);
    if (node) finalNodes.push(node);
  });

  const newGraph: GraphProto = {
    ...g,
    node: finalNodes,
    initializer: [...(g.initializer ?? []).map((t) => replaced.get(t.name ?? '') ?? t), ...added],
  };
  return {
    model: { ...graph.model, proto: { ...source, graph: newGraph } },
    initializerOf,
    added: added.map((t) => t.name!),
  };
}

/**
 * Replaces initializer `name` of `written` by a new float tensor of the same shape holding `values`
 * (adopted): the old TensorProto may also belong to the caller's model (writeParameters shares
 * unchanged ones), so it is not changed.
 */
export function replaceFloatInitializer(written: WrittenParameters, name: string, values: Float32Array): void {
  const list = written.model.proto.graph!.initializer!;
  const k = list.findIndex((t) => t.name === name);
  const old = list[k]!;
  const fresh: TensorProto = { name, dims: [...(old.dims ?? [])], dataType: DataType.FLOAT };
  replaceTensorData(fresh, values, { adopt: true });
  list[k] = fresh;
}
