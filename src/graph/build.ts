/**
 * ONNX model → ComputationGraph. Multi-node patterns are matched first (each claims its nodes), then
 * every remaining activation node becomes a canonical op through the single-op table; identity-like
 * nodes are looked through. Parameters are found by position and operand, never by name.
 */
import graphology from 'graphology';
import type { OnnxModel } from '../onnx/read.js';
import { attrInt } from '../onnx/attributes.js';
import { ComputationGraph } from './computation-graph.js';
import { ModelIndex } from './model-index.js';
import { matchActivationRegions } from './patterns/activation-region.js';
import { matchDecomposedGroupNorm } from './patterns/group-norm.js';
import { matchDecomposedLayerNorm } from './patterns/layer-norm.js';
import { matchMatMulLinear } from './patterns/linear.js';
import { matchRelativePositionBias } from './patterns/relative-position-bias.js';
import type { OpMatch, ParamUse, PatternMatcher } from './patterns/match.js';
import { matchSingleOp } from './single-ops.js';
import type { BufferSlot, OpNode, ParamSlot, StorageLayout, Unsupported } from './types.js';
import type { BufferRole, ParamRole } from './vocabulary.js';
import { PASS_THROUGH_OPS, SHAPE_OPS } from './vocabulary.js';

const { MultiDirectedGraph } = graphology as unknown as { MultiDirectedGraph: typeof import('graphology').MultiDirectedGraph };

/** Matched in this order; earlier matchers take precedence over later ones. */
const PATTERNS: readonly PatternMatcher[] = [
  matchDecomposedLayerNorm, matchDecomposedGroupNorm, matchMatMulLinear, matchRelativePositionBias, matchActivationRegions,
];

const BUFFER_ROLES: ReadonlySet<string> = new Set<BufferRole>(['running_mean', 'running_var']);

export function buildGraph(model: OnnxModel): ComputationGraph {
  const index = new ModelIndex(model);
  const claimed = new Set<number>();
  const matches: OpMatch[] = [];
  for (const matcher of PATTERNS) {
    for (const match of matcher(index, claimed)) {
      matches.push(match);
      for (const n of match.nodes) claimed.add(n);
    }
  }

  const unsupported: Unsupported[] = [];
  const alias = new Map<string, string>(); // pass-through output → its input
  for (const i of index.order) {
    if (claimed.has(i) || index.activationInputs(i).length === 0) continue;
    const opType = index.opType(i);
    if (SHAPE_OPS.has(opType)) continue; // reads only the shape of an activation
    if (PASS_THROUGH_OPS.has(opType)) {
      const out = index.outputs(i)[0];
      const input = index.inputs(i)[0];
      if (out && input) alias.set(out, input);
      continue;
    }
    const match = matchSingleOp(index, i);
    if (match) matches.push(match);
    else {
      const domain = index.node(i).domain;
      unsupported.push({
        kind: 'operator',
        opType: domain ? `${domain}::${opType}` : opType,
        node: index.node(i).name || `#${i}`,
        onnxNode: i,
        detail: `operator ${opType} is not supported`,
      });
    }
  }

  const position = new Map(index.order.map((n, k) => [n, k]));
  matches.sort((a, b) => position.get(a.anchor)! - position.get(b.anchor)!);
  return assemble(model, index, matches, alias, unsupported);
}

function resolve(alias: ReadonlyMap<string, string>, value: string): string {
  let v = value;
  for (let hops = 0; alias.has(v) && hops < 64; hops++) v = alias.get(v)!;
  return v;
}

function uniqueOpIds(index: ModelIndex, matches: readonly OpMatch[]): string[] {
  const used = new Set<string>();
  return matches.map((m) => {
    let id = index.node(m.anchor).name || `${index.opType(m.anchor)}_${m.anchor}`;
    while (used.has(id)) id = `${id}#${m.anchor}`;
    used.add(id);
    return id;
  });
}

function slotLayout(index: ModelIndex, use: ParamUse, path: readonly number[]): StorageLayout {
  if (use.role !== 'linear.weight') return 'canonical';
  const transposedOnPath = path.some((n) => index.opType(n) === 'Transpose');
  if (index.opType(use.node) === 'Gemm') {
    const transB = attrInt(index.node(use.node), 'transB') ?? 0;
    return (transB === 1) !== transposedOnPath ? 'canonical' : 'transposed';
  }
  // MatMul computes x·W, so W as used is [in, out]; a Transpose on the way means it is stored [out, in].
  return transposedOnPath ? 'canonical' : 'transposed';
}

function assemble(
  model: OnnxModel,
  index: ModelIndex,
  matches: readonly OpMatch[],
  alias: ReadonlyMap<string, string>,
  unsupported: Unsupported[],
): ComputationGraph {
  const graph = new MultiDirectedGraph<OpNode>();
  const ids = uniqueOpIds(index, matches);
  const producerOp = new Map<string, string>();

  // Graph inputs become input ops.
  const ops: OpNode[] = [];
  for (const name of index.dataInputs) {
    const op: OpNode = {
      id: `input:${name}`, kind: 'input', name, onnxNodes: [], onnxOps: [], params: [], buffers: [], attrs: {},
      outputs: [name], isGraphOutput: false, index: ops.length,
    };
    ops.push(op);
    producerOp.set(name, op.id);
  }

  // Count how many slots each consumed value and each initializer fill, to name shared slots.
  const uses = matches.flatMap((m, k) => m.params.map((use) => ({ use, op: ids[k]! })));
  const valueUses = new Map<string, number>();
  const initializerUses = new Map<string, number>();
  const traced = uses.map(({ use }) => {
    const value = index.inputs(use.node)[use.input]!;
    const source = index.traceStatic(value);
    if (source?.initializer && !BUFFER_ROLES.has(use.role)) {
      valueUses.set(value, (valueUses.get(value) ?? 0) + 1);
      initializerUses.set(source.initializer, (initializerUses.get(source.initializer) ?? 0) + 1);
    }
    return { value, source };
  });

  const slots = new Map<string, ParamSlot>();
  const buffers: BufferSlot[] = [];
  const paramsByOp = new Map<string, string[]>();
  const buffersByOp = new Map<string, string[]>();
  uses.forEach(({ use, op }, k) => {
    const { value, source } = traced[k]!;
    if (!source?.initializer) return; // data from a Constant node: a constant, not a parameter
    const storedShape = (source.tensor.dims ?? []).map(Number);
    const elements = storedShape.reduce((a, b) => a * b, 1);
    if (BUFFER_ROLES.has(use.role)) {
      buffers.push({ role: use.role as BufferRole, initializer: source.initializer, op, elements });
      (buffersByOp.get(op) ?? buffersByOp.set(op, []).get(op)!).push(source.initializer);
      return;
    }
    const layout = slotLayout(index, use, source.path);
    const shape = layout === 'transposed' ? [storedShape[1]!, storedShape[0]!] : storedShape;
    const id = valueUses.get(value)! > 1 ? `${value}@${index.node(use.node).name || use.node}` : value;
    slots.set(id, {
      id, role: use.role as ParamRole, initializer: source.initializer, value, path: source.path,
      consumer: { node: use.node, input: use.input }, storedShape, shape, layout, op,
      shareCount: initializerUses.get(source.initializer)!, elements,
    });
    (paramsByOp.get(op) ?? paramsByOp.set(op, []).get(op)!).push(id);
  });

  matches.forEach((m, k) => {
    const id = ids[k]!;
    const inside = new Set(m.nodes);
    const produced = new Set(m.nodes.flatMap((n) => index.outputs(n)));
    const outputs = [...produced].filter(
      (v) => index.isActivation(v) && (index.isGraphOutput(v) || index.consumersOf(v).some((c) => !inside.has(c.node))),
    );
    const op: OpNode = {
      id, kind: m.kind, name: index.node(m.anchor).name ?? id,
      onnxNodes: m.nodes, onnxOps: m.nodes.map((n) => index.opType(n)),
      params: paramsByOp.get(id) ?? [], buffers: buffersByOp.get(id) ?? [], attrs: m.attrs,
      outputs, isGraphOutput: false, index: ops.length,
    };
    ops.push(op);
    for (const v of produced) producerOp.set(v, id);
  });

  // An op is a graph output if a graph output resolves (through pass-through nodes) to its value.
  const outputOps = new Set(index.graphOutputs.map((v) => producerOp.get(resolve(alias, v))).filter(Boolean));
  const finalOps = ops.map((op) => (outputOps.has(op.id) ? { ...op, isGraphOutput: true } : op));
  for (const op of finalOps) graph.addNode(op.id, op);

  // Values made by an unsupported operator are already reported through that operator.
  const unsupportedNodes = new Set(unsupported.map((u) => u.onnxNode));
  for (const [k, m] of matches.entries()) {
    const id = ids[k]!;
    const produced = new Set(m.nodes.flatMap((n) => index.outputs(n)));
    for (const n of m.nodes) {
      for (const v of index.activationInputs(n)) {
        if (produced.has(v)) continue;
        const from = producerOp.get(resolve(alias, v));
        if (from && from !== id) graph.addDirectedEdge(from, id, { value: v });
        else if (!from && !unsupportedNodes.has(index.producerOf(resolve(alias, v)) ?? -1)) {
          unsupported.push({
            kind: 'operator', opType: index.opType(n), node: index.node(n).name ?? id, onnxNode: n,
            detail: `input ${v} has no supported producer`,
          });
        }
      }
    }
  }
  return new ComputationGraph(model, index, graph, finalOps, slots, buffers, dedupe(unsupported));
}

function dedupe(list: Unsupported[]): Unsupported[] {
  const seen = new Set<string>();
  return list.filter((u) => {
    const key = `${u.kind}:${u.opType}:${u.node}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
