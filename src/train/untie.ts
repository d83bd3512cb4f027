/**
 * Gives every parameter slot its own initializer before training. PyTorch's exporter merges
 * initializers with identical values (fresh BN scales, zero biases, running statistics) into one
 * tensor fed through Identity nodes; trained, each slot must diverge, so each Identity output
 * becomes an initializer of its own (a copy) and the Identity node goes. BN running statistics read
 * directly by several nodes are duplicated too. The model is changed in place.
 */
import { readFloat32 } from '../onnx/tensor.js';
import { DataType, type NodeProto, type OnnxModel, type TensorProto } from '../onnx/types.js';

/** Maps each original initializer name to the names that now carry its value (itself included). */
export type UntieMap = Map<string, string[]>;

function copyAs(name: string, source: TensorProto, model: OnnxModel): TensorProto {
  const data = readFloat32(source, model);
  const bytes = new Uint8Array(data.length * 4);
  new Float32Array(bytes.buffer).set(data);
  return { name, dims: [...(source.dims ?? [])], dataType: DataType.FLOAT, rawData: bytes };
}

export function untieSharedInitializers(model: OnnxModel): UntieMap {
  const graph = model.proto.graph!;
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const isFloat = (name: string) => inits.get(name)?.dataType === DataType.FLOAT;
  const graphOutputs = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  const copies: UntieMap = new Map();
  const record = (original: string, copy: string) => {
    const list = copies.get(original) ?? [original];
    if (!list.includes(copy)) list.push(copy);
    copies.set(original, list);
  };

  const kept: NodeProto[] = [];
  for (const node of graph.node ?? []) {
    const source = node.input?.[0] ?? '';
    const target = node.output?.[0] ?? '';
    if (node.opType === 'Identity' && isFloat(source) && !graphOutputs.has(target) && !inits.has(target)) {
      const copy = copyAs(target, inits.get(source)!, model);
      graph.initializer!.push(copy);
      inits.set(target, copy);
      record(source, target);
      continue;
    }
    kept.push(node);
  }
  graph.node = kept;

  // Running statistics read by more than one BatchNormalization (or anything else) get one copy each.
  const readers = new Map<string, number>();
  for (const node of kept) for (const name of node.input ?? []) readers.set(name, (readers.get(name) ?? 0) + 1);
  for (const node of kept) {
    if (node.opType !== 'BatchNormalization') continue;
    for (const slot of [3, 4]) {
      const name = node.input![slot];
      if ((readers.get(name) ?? 0) < 2 || !isFloat(name)) continue;
      const fresh = `${name}__${node.name || node.output![0]}`;
      graph.initializer!.push(copyAs(fresh, inits.get(name)!, model));
      inits.set(fresh, graph.initializer![graph.initializer!.length - 1]);
      readers.set(name, readers.get(name)! - 1);
      node.input![slot] = fresh;
      record(name, fresh);
    }
  }
  // Drop originals nobody reads any more.
  const used = new Set(kept.flatMap((n) => n.input ?? []));
  graph.initializer = graph.initializer!.filter((t) => used.has(t.name ?? '') || graphOutputs.has(t.name ?? ''));
  for (const [original, list] of copies) if (!used.has(original)) copies.set(original, list.filter((n) => n !== original));
  return copies;
}
