/**
 * Channel provenance: for each activation's channel axis (axis 1, NCHW or [N, features]), which
 * output channel of its producing layer every channel is. A layer's own output channel i is i;
 * Concat, Split and Slice along channels rearrange them, channel-wise ops pass them through, and a
 * Flatten of a [C, 1, 1] map (after global pooling) keeps them.
 *
 * The GHN codes channel i of a layer's output and input channel i of the next layer alike, so that
 * it can coordinate them. After a Concat that identity breaks (input column a + j of the consumer is
 * output channel j of the second branch); these maps restore it, for a GHN trained with them
 * (GhnConfig.channelProvenance). Only maps that differ from the identity are reported, so
 * sequential and residual networks are unaffected.
 */
import { attrInt, attrInts } from '../onnx/attributes.js';
import { readTensorData } from '../onnx/tensor.js';
import type { ComputationGraph } from './computation-graph.js';
import type { ParamSlot } from './types.js';

/** The producer channel each channel of a value carries. */
export type ChannelMap = Int32Array;

/** Code indices of a slot's rows (output channels / vector elements) and columns (input features), when not 0..n-1. */
export interface SlotChannelCodes {
  readonly rows?: Int32Array;
  readonly cols?: Int32Array;
}

/** ONNX ops whose output channel c is input 0's channel c. */
const CHANNEL_PRESERVING: ReadonlySet<string> = new Set([
  'Relu', 'LeakyRelu', 'PRelu', 'Elu', 'Selu', 'Celu', 'Gelu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh',
  'Softplus', 'Softsign', 'Mish', 'Clip', 'Erf', 'Neg', 'Abs', 'Exp', 'Sqrt', 'Identity', 'Dropout', 'Cast',
  'BatchNormalization', 'InstanceNormalization', 'MaxPool', 'AveragePool', 'LpPool', 'GlobalAveragePool',
  'GlobalMaxPool', 'GlobalLpPool', 'Resize', 'Upsample', 'Flatten',
]);

/** Elementwise ops with broadcasting: the output carries the channels of whichever activation input has a map. */
const ELEMENTWISE: ReadonlySet<string> = new Set(['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Sum', 'Mean']);

const identity = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i);

function isIdentity(map: Int32Array): boolean {
  for (let i = 0; i < map.length; i++) if (map[i] !== i) return false;
  return true;
}

/** Channel-axis maps of the model's activations; values absent from the map have unknown provenance. */
function activationMaps(g: ComputationGraph): Map<string, ChannelMap> {
  const index = g.index;
  const maps = new Map<string, ChannelMap>();
  const weightOf = new Map<number, ParamSlot>();
  for (const slot of g.slots.values()) {
    if (slot.role === 'conv.weight' || slot.role === 'linear.weight') weightOf.set(slot.consumer.node, slot);
  }
  const staticInts = (value: string | undefined): number[] | undefined => {
    if (!value) return undefined;
    const source = index.traceStatic(value);
    return source ? Array.from(readTensorData(source.tensor, g.model) as ArrayLike<number | bigint>, Number) : undefined;
  };

  for (const i of index.order) {
    const node = index.node(i);
    const op = index.opType(i);
    const inputs = index.inputs(i);
    const outputs = index.outputs(i);
    const inMap = inputs[0] ? maps.get(inputs[0]) : undefined;
    const weight = weightOf.get(i);

    if (weight && (op === 'Conv' || op === 'Gemm')) {
      const out = weight.shape[0]!;
      const depthwise = op === 'Conv' && attrInt(node, 'group', 1) === out && (weight.shape[1] ?? 1) === 1;
      maps.set(outputs[0]!, depthwise && inMap?.length === out ? inMap : identity(out));
    } else if (CHANNEL_PRESERVING.has(op)) {
      if (inMap) maps.set(outputs[0]!, inMap);
    } else if (ELEMENTWISE.has(op)) {
      const known = inputs.filter((v) => index.isActivation(v)).map((v) => maps.get(v)).filter((m): m is Int32Array => !!m);
      const widest = Math.max(0, ...known.map((m) => m.length));
      const candidates = known.filter((m) => m.length === widest && widest > 1);
      const chosen = candidates.find((m) => !isIdentity(m)) ?? candidates[0];
      if (chosen && known.every((m) => m.length === widest || m.length === 1)) maps.set(outputs[0]!, chosen);
    } else if (op === 'Concat' && attrInt(node, 'axis', 0) === 1) {
      const parts = inputs.map((v) => maps.get(v));
      if (parts.every((m): m is Int32Array => !!m)) {
        const joined = new Int32Array(parts.reduce((a, m) => a + m.length, 0));
        let offset = 0;
        for (const m of parts) { joined.set(m, offset); offset += m.length; }
        maps.set(outputs[0]!, joined);
      }
    } else if (op === 'Split' && inMap && attrInt(node, 'axis', 0) === 1) {
      const sizes = attrInts(node, 'split') ?? staticInts(inputs[1])
        ?? Array.from(outputs, () => inMap.length / outputs.length);
      if (sizes.length === outputs.length && sizes.every((s) => Number.isInteger(s)) && sizes.reduce((a, b) => a + b, 0) === inMap.length) {
        let offset = 0;
        outputs.forEach((out, k) => { maps.set(out, inMap.slice(offset, offset + sizes[k]!)); offset += sizes[k]!; });
      }
    } else if (op === 'Slice' && inMap) {
      const [starts, ends, axes, steps] = [1, 2, 3, 4].map((k) => staticInts(inputs[k]));
      if (starts?.length === 1 && ends?.length === 1 && (axes?.[0] ?? 0) === 1 && (steps?.[0] ?? 1) === 1) {
        const clamp = (v: number) => Math.max(0, Math.min(inMap.length, v < 0 ? v + inMap.length : v));
        maps.set(outputs[0]!, inMap.slice(clamp(starts[0]!), clamp(ends[0]!)));
      }
    }
  }
  return maps;
}

/**
 * Code indices per slot id, for the slots whose rows or columns are not channels 0..n-1 of what they
 * read: dense conv and Gemm weights after a Concat/Split (columns), and the per-channel
 * parameters of channel-wise layers (BatchNorm scale and shift, depthwise conv, PReLU) on such input (rows).
 */
export function slotChannelCodes(g: ComputationGraph): Map<string, SlotChannelCodes> {
  const maps = activationMaps(g);
  const index = g.index;
  const result = new Map<string, SlotChannelCodes>();
  const activationMapOf = (node: number): ChannelMap | undefined => {
    const input = index.inputs(node).find((v) => index.isActivation(v));
    return input ? maps.get(input) : undefined;
  };
  for (const slot of g.slots.values()) {
    const node = slot.consumer.node;
    const op = index.opType(node);
    const map = activationMapOf(node);
    if (!map) continue;
    let codes: SlotChannelCodes | undefined;
    if (slot.role === 'conv.weight' && op === 'Conv') {
      const groups = attrInt(index.node(node), 'group', 1);
      const out = slot.shape[0]!;
      if (groups === 1 && map.length === slot.shape[1]) codes = { cols: map };
      else if (groups === out && slot.shape[1] === 1 && map.length === out) codes = { rows: map };
    } else if (slot.role === 'conv.bias' && op === 'Conv') {
      const out = slot.shape[0]!;
      if (attrInt(index.node(node), 'group', 1) === out && map.length === out) codes = { rows: map };
    } else if (slot.role === 'linear.weight' && op === 'Gemm') {
      if (map.length === slot.shape[1]) codes = { cols: map };
    } else if ((slot.role === 'norm.scale' || slot.role === 'norm.shift') && op === 'BatchNormalization' && map.length === slot.elements) {
      codes = { rows: map };
    } else if (slot.role === 'prelu.slope' && op === 'PRelu' && map.length === slot.elements) {
      codes = { rows: map };
    }
    if (!codes) continue;
    const rows = codes.rows && !isIdentity(codes.rows) ? codes.rows : undefined;
    const cols = codes.cols && !isIdentity(codes.cols) ? codes.cols : undefined;
    if (rows || cols) result.set(slot.id, { rows, cols });
  }
  return result;
}
