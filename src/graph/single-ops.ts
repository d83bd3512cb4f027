/**
 * ONNX nodes that are a canonical op on their own: which kind each becomes (refined by attributes
 * and operands) and which of its static inputs are parameters.
 */
import { attrFloat, attrInt, attrInts } from '../onnx/attributes.js';
import type { ModelIndex } from './model-index.js';
import type { OpMatch, ParamUse } from './patterns/match.js';
import { staticElementCount } from './patterns/match.js';
import type { OpAttributes } from './types.js';
import type { BufferRole, OpKind, ParamRole } from './vocabulary.js';
import { SINGLE_OP_KINDS } from './vocabulary.js';

/** Static inputs that are parameters by position, for operators whose signature says so. */
const PARAM_INPUTS: Readonly<Record<string, Readonly<Record<number, ParamRole | BufferRole>>>> = {
  Conv: { 1: 'conv.weight', 2: 'conv.bias' },
  Gemm: { 1: 'linear.weight', 2: 'linear.bias' },
  BatchNormalization: { 1: 'norm.scale', 2: 'norm.shift', 3: 'running_mean', 4: 'running_var' },
  LayerNormalization: { 1: 'norm.scale', 2: 'norm.shift' },
  GroupNormalization: { 1: 'norm.scale', 2: 'norm.shift' },
  InstanceNormalization: { 1: 'norm.scale', 2: 'norm.shift' },
  PRelu: { 1: 'prelu.slope' },
};

/**
 * Operators that become a parameter-hosting op when one operand is a float initializer (of more than
 * one element, except for Mul; see below).
 */
const HOSTING_OPS: Readonly<Record<string, (dims: readonly number[]) => { kind: OpKind; role: ParamRole }>> = {
  Mul: () => ({ kind: 'layer_scale', role: 'layer_scale' }),
  // Extent along a channel and a position axis makes a position embedding; one extent only is a bias.
  Add: (dims) =>
    dims.filter((d) => d > 1).length >= 2
      ? { kind: 'pos_embedding', role: 'pos_embedding' }
      : { kind: 'bias_add', role: 'bias' },
  Concat: () => ({ kind: 'class_token', role: 'class_token' }),
  Gather: () => ({ kind: 'embedding', role: 'embedding' }),
};

function convAttributes(index: ModelIndex, node: number): OpAttributes {
  const n = index.node(node);
  const weight = index.traceStatic(index.inputs(node)[1] ?? '');
  const dims = (weight?.tensor.dims ?? []).map(Number);
  return {
    kernel: attrInts(n, 'kernel_shape') ?? dims.slice(2),
    stride: attrInts(n, 'strides') ?? [1, 1],
    dilation: attrInts(n, 'dilations') ?? [1, 1],
    pads: attrInts(n, 'pads') ?? [0, 0, 0, 0],
    groups: attrInt(n, 'group') ?? 1,
  };
}

function convKind(index: ModelIndex, node: number, attrs: OpAttributes): OpKind {
  const groups = attrs.groups ?? 1;
  if (groups === 1) return 'conv';
  const weight = index.traceStatic(index.inputs(node)[1] ?? '');
  const inPerGroup = Number(weight?.tensor.dims?.[1] ?? 0);
  return inPerGroup === 1 ? 'depthwise_conv' : 'group_conv';
}

function clipKind(index: ModelIndex, node: number): OpKind {
  const n = index.node(node);
  const lo = index.scalar(index.inputs(node)[1] ?? '') ?? attrFloat(n, 'min');
  const hi = index.scalar(index.inputs(node)[2] ?? '') ?? attrFloat(n, 'max');
  if (lo === 0 && hi === 6) return 'relu6';
  if (lo === 0 && hi === undefined) return 'relu';
  return 'elementwise';
}

function reduceKind(index: ModelIndex, node: number): OpKind {
  if (index.opType(node) !== 'ReduceMean') return 'reduce';
  const axes = attrInts(index.node(node), 'axes') ?? [];
  const spatial = axes.length === 2 && ((axes.includes(2) && axes.includes(3)) || (axes.includes(-1) && axes.includes(-2)));
  return spatial ? 'global_avg_pool' : 'reduce';
}

function poolAttributes(index: ModelIndex, node: number): OpAttributes {
  const n = index.node(node);
  return { kernel: attrInts(n, 'kernel_shape'), stride: attrInts(n, 'strides'), pads: attrInts(n, 'pads') };
}

/** The canonical op for one ONNX node, or undefined when its operator is not in the vocabulary. */
export function matchSingleOp(index: ModelIndex, node: number): OpMatch | undefined {
  const opType = index.opType(node);
  const domain = index.node(node).domain ?? '';
  let kind = domain === '' || domain === 'ai.onnx' ? SINGLE_OP_KINDS[opType] : undefined;
  if (!kind) return undefined;
  const n = index.node(node);
  let attrs: OpAttributes = {};
  const params: ParamUse[] = [];

  const positional = PARAM_INPUTS[opType];
  if (positional) {
    for (const [input, role] of Object.entries(positional)) {
      const value = index.inputs(node)[Number(input)];
      if (value && !index.isActivation(value)) params.push({ node, input: Number(input), role });
    }
  }
  const hosting = HOSTING_OPS[opType];
  if (hosting) {
    for (const input of index.staticInputIndices(node)) {
      const value = index.inputs(node)[input]!;
      const source = index.traceStatic(value);
      const count = staticElementCount(index, value) ?? 0;
      const isFloat = source?.tensor.dataType === 1 || source?.tensor.dataType === 10 || source?.tensor.dataType === 11;
      // A one-element initializer is a learned scalar gain only on Mul (SkipInit/ReZero); exporters
      // write constants such as eps or √d as Constant nodes, which have no initializer.
      const minimum = opType === 'Mul' ? 1 : 2;
      if (!source?.initializer || count < minimum || !isFloat) continue;
      if (opType === 'Gather' && input !== 0) continue;
      const hosted = hosting((source.tensor.dims ?? []).map(Number));
      kind = hosted.kind;
      params.push({ node, input, role: hosted.role });
    }
  }

  switch (opType) {
    case 'Conv':
      attrs = convAttributes(index, node);
      kind = convKind(index, node, attrs);
      break;
    case 'Clip':
      kind = clipKind(index, node);
      break;
    case 'ReduceMean':
    case 'ReduceSum':
    case 'ReduceMax':
      kind = reduceKind(index, node);
      break;
    case 'MaxPool':
    case 'AveragePool':
      attrs = poolAttributes(index, node);
      break;
    case 'BatchNormalization':
      attrs = { epsilon: attrFloat(n, 'epsilon') ?? 1e-5, trainingForm: index.outputs(node).filter(Boolean).length > 1 };
      break;
    case 'LayerNormalization':
      attrs = { epsilon: attrFloat(n, 'epsilon') ?? 1e-5, axis: attrInt(n, 'axis') ?? -1 };
      break;
    case 'Softmax':
    case 'LogSoftmax':
    case 'Concat':
      attrs = { axis: attrInt(n, 'axis') ?? -1 };
      break;
  }
  return { kind, anchor: node, nodes: [node], attrs, params };
}
