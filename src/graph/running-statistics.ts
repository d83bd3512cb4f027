/**
 * BatchNorm running statistics are buffers, not parameter slots, but PyTorch's exporter merges
 * equal-valued ones (fresh means of 0, variances of 1) into one tensor read by many nodes, directly
 * or through Identity. Whoever writes statistics (fine-tuning updates them, `ghn predict` estimates
 * them) needs one tensor per BatchNormalization node first.
 */
import { readFloat32 } from '../onnx/tensor.js';
import { DataType, type OnnxModel, type TensorProto } from '../onnx/types.js';

/** BatchNormalization inputs that hold running statistics. */
export const RUNNING_MEAN_INPUT = 3;
export const RUNNING_VARIANCE_INPUT = 4;

function copyAs(name: string, source: TensorProto, model: OnnxModel): TensorProto {
  const data = readFloat32(source, model);
  const bytes = new Uint8Array(data.length * 4);
  new Float32Array(bytes.buffer).set(data);
  return { name, dims: [...(source.dims ?? [])], dataType: DataType.FLOAT, rawData: bytes };
}

/**
 * Gives each BatchNormalization node initializers of its own for its running statistics, whether it
 * read a tensor shared with other nodes directly or through an Identity (then the copy takes the
 * Identity output's name, PyTorch's buffer name, and the Identity goes). Changes `model.proto.graph`
 * in place (its node list, initializer list and the input lists of the BatchNorm nodes it rewires);
 * `record(original, copy)` is told of every copy made.
 */
export function untieRunningStatistics(model: OnnxModel, record: (original: string, copy: string) => void = () => undefined): void {
  const graph = model.proto.graph!;
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const isFloat = (name: string) => inits.get(name)?.dataType === DataType.FLOAT;
  const identityOf = new Map((graph.node ?? []).filter((n) => n.opType === 'Identity' && isFloat(n.input?.[0] ?? '')).map((n) => [n.output![0]!, n]));
  const readers = new Map<string, number>();
  for (const node of graph.node ?? []) for (const name of node.input ?? []) readers.set(name, (readers.get(name) ?? 0) + 1);
  const dropped = new Set<object>();
  graph.initializer ??= [];
  const materialize = (name: string, source: TensorProto, original: string) => {
    const copy = copyAs(name, source, model);
    graph.initializer!.push(copy);
    inits.set(name, copy);
    record(original, name);
  };
  for (const node of graph.node ?? []) {
    if (node.opType !== 'BatchNormalization') continue;
    for (const input of [RUNNING_MEAN_INPUT, RUNNING_VARIANCE_INPUT]) {
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
  graph.initializer = graph.initializer.filter((t) => used.has(t.name ?? '') || outputs.has(t.name ?? ''));
}
