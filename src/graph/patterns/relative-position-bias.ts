/**
 * Relative position bias (Swin, MaxViT): a learned table [(2w−1)², heads] is gathered by a constant
 * index, laid out as [1, heads, N, N] (Reshape, Transpose, Unsqueeze, …) and added to the attention
 * logits (Q·Kᵀ, a MatMul or Einsum of two activations) before the Softmax. The Add becomes a
 * pos_embedding op (what the same Add is when the exporter folded the Gather into a constant bias)
 * whose parameter is the table itself, read by the Gather.
 *
 * Recognized by structure only: the table feeds a Gather on axis 0 with a constant integer index,
 * and the Add's other operand comes from a product of two activations and flows into a Softmax.
 */
import { attrInt } from '../../onnx/attributes.js';
import { DataType } from '../../onnx/types.js';
import type { ModelIndex } from '../model-index.js';
import type { OpMatch, PatternMatcher } from './match.js';
import { anchoredMatcher, otherInput, soleConsumer } from './match.js';

/** Ops that only rearrange the gathered table on its way to the Add. */
const BIAS_LAYOUT_OPS: ReadonlySet<string> = new Set([
  'Reshape', 'Transpose', 'Unsqueeze', 'Squeeze', 'Flatten', 'Expand', 'Slice', 'Identity', 'Cast',
]);
/** Ops between the logits product and the Add: scaling by a constant and reshapes. */
const LOGIT_PATH_OPS: ReadonlySet<string> = new Set(['Mul', 'Div', 'Reshape', 'Transpose', 'Identity', 'Cast']);
/** Ops between the Add and the Softmax: reshapes and further additive terms (Swin's shift mask). */
const SOFTMAX_PATH_OPS: ReadonlySet<string> = new Set(['Add', 'Reshape', 'Unsqueeze', 'Squeeze', 'Identity', 'Cast']);
const PRODUCT_OPS: ReadonlySet<string> = new Set(['MatMul', 'Einsum']);
const FLOAT_TYPES: ReadonlySet<number> = new Set([DataType.FLOAT, DataType.FLOAT16, DataType.DOUBLE, DataType.BFLOAT16]);
const INTEGER_TYPES: ReadonlySet<number> = new Set([DataType.INT64, DataType.INT32]);
const MAX_HOPS = 8;

/** The logits operand: produced by a product of two activations, possibly scaled or reshaped. */
function isAttentionLogits(index: ModelIndex, value: string): boolean {
  let v = value;
  for (let hops = 0; hops < MAX_HOPS; hops++) {
    const p = index.producerOf(v);
    if (p === undefined) return false;
    const op = index.opType(p);
    if (PRODUCT_OPS.has(op)) return index.activationInputs(p).length === 2;
    if (!LOGIT_PATH_OPS.has(op)) return false;
    const activations = index.activationInputs(p);
    if (activations.length !== 1) return false; // a scale is static; two activations is not a scaling
    v = activations[0]!;
  }
  return false;
}

/** The Add's result reaches a Softmax through reshapes and additive masks only. */
function feedsSoftmax(index: ModelIndex, add: number): boolean {
  let v = index.outputs(add)[0];
  for (let hops = 0; v && hops < MAX_HOPS; hops++) {
    const next = soleConsumer(index, v);
    if (next === undefined) return false;
    const op = index.opType(next);
    if (op === 'Softmax') return true;
    if (!SOFTMAX_PATH_OPS.has(op)) return false;
    v = index.outputs(next)[0];
  }
  return false;
}

/**
 * The Gather and the layout nodes between it and the Add, when `value` is a gathered float table
 * laid out; each node must feed only the next one, so the nodes can belong to this op.
 */
function gatheredTable(index: ModelIndex, value: string, taken: ReadonlySet<number>): { gather: number; nodes: number[] } | undefined {
  const nodes: number[] = [];
  let v = value;
  for (let hops = 0; hops < MAX_HOPS; hops++) {
    const p = index.producerOf(v);
    if (p === undefined || taken.has(p) || soleConsumer(index, v) === undefined) return undefined;
    nodes.push(p);
    const op = index.opType(p);
    if (op === 'Gather') {
      if ((attrInt(index.node(p), 'axis') ?? 0) !== 0) return undefined;
      const [tableValue, indexValue] = index.inputs(p);
      const table = tableValue ? index.traceStatic(tableValue) : undefined;
      const positions = indexValue ? index.traceStatic(indexValue) : undefined;
      if (!table?.initializer || !FLOAT_TYPES.has(table.tensor.dataType ?? 0)) return undefined;
      if ((table.tensor.dims ?? []).length !== 2) return undefined;
      if (!positions || !INTEGER_TYPES.has(positions.tensor.dataType ?? 0)) return undefined;
      return { gather: p, nodes };
    }
    if (!BIAS_LAYOUT_OPS.has(op)) return undefined;
    v = index.inputs(p)[0] ?? '';
  }
  return undefined;
}

function matchAt(index: ModelIndex, add: number, taken: ReadonlySet<number>): OpMatch | undefined {
  const [a, b] = index.inputs(add);
  if (!a || !b) return undefined;
  const logits = index.isActivation(a) && !index.isActivation(b) ? a : index.isActivation(b) && !index.isActivation(a) ? b : undefined;
  if (!logits || !isAttentionLogits(index, logits) || !feedsSoftmax(index, add)) return undefined;
  const bias = otherInput(index, add, logits)!;
  const found = gatheredTable(index, bias, taken);
  if (!found) return undefined;
  return {
    kind: 'pos_embedding', anchor: add, nodes: [add, ...found.nodes], attrs: {},
    params: [{ node: found.gather, input: 0, role: 'relative_position_bias' }],
  };
}

export const matchRelativePositionBias: PatternMatcher = anchoredMatcher('Add', matchAt);
