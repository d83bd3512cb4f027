/** The `ghn inspect` summary: what a model is made of, as the graph importer sees it. */
import type { ComputationGraph } from './computation-graph.js';
import type { OpKind, ParamRole } from './vocabulary.js';

export interface GraphSummary {
  producer: string;
  opset: number | undefined;
  onnxNodes: number;
  ops: Partial<Record<OpKind, number>>;
  params: {
    tensors: number;
    elements: number;
    /** Distinct initializers behind the slots (fewer than tensors when the exporter shared some). */
    initializers: number;
    byRole: Partial<Record<ParamRole, { tensors: number; elements: number }>>;
  };
  buffers: { tensors: number; elements: number };
  unsupported: { kind: string; opType: string; node: string; detail: string }[];
}

export function summarize(g: ComputationGraph): GraphSummary {
  const ops: Partial<Record<OpKind, number>> = {};
  for (const op of g.ops) ops[op.kind] = (ops[op.kind] ?? 0) + 1;
  const byRole: GraphSummary['params']['byRole'] = {};
  const initializers = new Set<string>();
  for (const slot of g.slots.values()) {
    const entry = (byRole[slot.role] ??= { tensors: 0, elements: 0 });
    entry.tensors += 1;
    entry.elements += slot.elements;
    initializers.add(slot.initializer);
  }
  const proto = g.model.proto;
  const opset = proto.opsetImport?.find((o) => !o.domain || o.domain === 'ai.onnx')?.version;
  return {
    producer: [proto.producerName, proto.producerVersion].filter(Boolean).join(' '),
    opset: opset === undefined ? undefined : Number(opset),
    onnxNodes: g.index.nodes.length,
    ops,
    params: { tensors: g.slots.size, elements: g.parameterCount, initializers: initializers.size, byRole },
    buffers: { tensors: g.buffers.length, elements: g.buffers.reduce((a, b) => a + b.elements, 0) },
    unsupported: g.unsupported.map(({ kind, opType, node, detail }) => ({ kind, opType, node, detail })),
  };
}
