/**
 * The canonical vocabulary: what kinds of operation and parameter the graph speaks of, and how ONNX
 * operator types map onto them. Every table here is the single place its fact lives.
 */

/** Canonical operation kinds: what the GHN sees as a node type. */
export const OP_KINDS = [
  'input',
  'conv', 'depthwise_conv', 'group_conv',
  'linear', 'matmul',
  'batch_norm', 'layer_norm', 'group_norm', 'instance_norm',
  'relu', 'relu6', 'leaky_relu', 'prelu', 'elu', 'gelu', 'silu', 'hardswish', 'hardsigmoid',
  'sigmoid', 'tanh', 'softplus', 'mish', 'elementwise',
  'softmax',
  'max_pool', 'avg_pool', 'global_avg_pool', 'global_max_pool',
  'add', 'mul', 'sub', 'div',
  'concat', 'split', 'slice', 'reshape', 'transpose', 'pad', 'resize', 'reduce', 'gather',
  'layer_scale', 'bias_add', 'pos_embedding', 'class_token', 'embedding',
] as const;
export type OpKind = (typeof OP_KINDS)[number];

/**
 * Roles a trainable parameter tensor plays that the GHN has its own role embedding for: one row
 * each, in this order (ghn/model.ts), so the list changes only with a retrained GHN.
 */
export const PARAM_ROLES = [
  'conv.weight', 'conv.bias',
  'linear.weight', 'linear.bias',
  'norm.scale', 'norm.shift',
  'embedding', 'pos_embedding', 'class_token', 'layer_scale', 'bias', 'prelu.slope',
] as const;
export type EmbeddedParamRole = (typeof PARAM_ROLES)[number];

/**
 * Roles recognized after the shipped GHN was trained; ghn/encoding.ts says which embedded role each
 * is decoded as. relative_position_bias: a table gathered by a constant index into the bias added
 * to attention logits (Swin, MaxViT).
 */
export const LATER_PARAM_ROLES = ['relative_position_bias'] as const;
export type LaterParamRole = (typeof LATER_PARAM_ROLES)[number];

/** Roles a trainable parameter tensor plays. */
export type ParamRole = EmbeddedParamRole | LaterParamRole;

/** Non-trainable state that travels with a layer (BatchNorm running statistics). */
export type BufferRole = 'running_mean' | 'running_var';

export interface RoleInfo {
  /** Weight-like (≥ 2-D, fan-in scaled) rather than bias/scale-like. */
  readonly isWeight: boolean;
  /** A value this role has in PyTorch's default initialization when it is not random. */
  readonly constantDefault?: number;
}

export const ROLE_INFO: Record<ParamRole, RoleInfo> = {
  'conv.weight': { isWeight: true },
  'conv.bias': { isWeight: false },
  'linear.weight': { isWeight: true },
  'linear.bias': { isWeight: false },
  'norm.scale': { isWeight: false, constantDefault: 1 },
  'norm.shift': { isWeight: false, constantDefault: 0 },
  'embedding': { isWeight: true },
  'pos_embedding': { isWeight: false },
  'relative_position_bias': { isWeight: false },
  'class_token': { isWeight: false },
  'layer_scale': { isWeight: false },
  'bias': { isWeight: false, constantDefault: 0 },
  'prelu.slope': { isWeight: false, constantDefault: 0.25 },
};

/**
 * ONNX operators that act on activations and become one canonical op each. Operators absent from
 * this table and from the pattern matchers, the constant folder and the pass-through set are
 * reported as unsupported.
 */
export const SINGLE_OP_KINDS: Readonly<Record<string, OpKind>> = {
  Conv: 'conv', // refined to depthwise/group by attributes
  Gemm: 'linear',
  MatMul: 'matmul', // refined to linear when one operand is a parameter
  BatchNormalization: 'batch_norm',
  LayerNormalization: 'layer_norm',
  GroupNormalization: 'group_norm',
  InstanceNormalization: 'instance_norm',
  Relu: 'relu',
  LeakyRelu: 'leaky_relu',
  PRelu: 'prelu',
  Elu: 'elu',
  Celu: 'elu',
  Selu: 'elu',
  Gelu: 'gelu',
  HardSwish: 'hardswish',
  HardSigmoid: 'hardsigmoid',
  Sigmoid: 'sigmoid',
  Tanh: 'tanh',
  Softplus: 'softplus',
  Mish: 'mish',
  Clip: 'relu6', // refined by its bounds
  Erf: 'elementwise',
  Sqrt: 'elementwise',
  Exp: 'elementwise',
  Log: 'elementwise',
  Neg: 'elementwise',
  Abs: 'elementwise',
  Pow: 'elementwise',
  Reciprocal: 'elementwise',
  Min: 'elementwise',
  Max: 'elementwise',
  Softmax: 'softmax',
  LogSoftmax: 'softmax',
  MaxPool: 'max_pool',
  AveragePool: 'avg_pool',
  GlobalAveragePool: 'global_avg_pool',
  GlobalMaxPool: 'global_max_pool',
  Add: 'add',
  Mul: 'mul',
  Sub: 'sub',
  Div: 'div',
  Concat: 'concat',
  Split: 'split',
  Slice: 'slice',
  Reshape: 'reshape',
  Flatten: 'reshape',
  Squeeze: 'reshape',
  Unsqueeze: 'reshape',
  Transpose: 'transpose',
  Pad: 'pad',
  Resize: 'resize',
  Upsample: 'resize',
  ReduceMean: 'reduce', // refined to global_avg_pool when it averages all spatial axes
  ReduceSum: 'reduce',
  ReduceMax: 'reduce',
  Gather: 'gather',
  Expand: 'reshape',
  Where: 'elementwise',
  Equal: 'elementwise',
  Greater: 'elementwise',
  Less: 'elementwise',
  GreaterOrEqual: 'elementwise',
  LessOrEqual: 'elementwise',
  Not: 'elementwise',
  And: 'elementwise',
  Or: 'elementwise',
  Floor: 'elementwise',
  Ceil: 'elementwise',
  Round: 'elementwise',
  Sign: 'elementwise',
  ArgMax: 'reduce',
  ReduceMin: 'reduce',
  ReduceProd: 'reduce',
  ReduceL2: 'reduce',
  ReduceSumSquare: 'reduce',
  CumSum: 'reduce',
  LpNormalization: 'elementwise',
  DepthToSpace: 'reshape',
  SpaceToDepth: 'reshape',
  Tile: 'reshape',
  Einsum: 'matmul', // attention products in MaxViT-style exports
};

/** Operators that only forward their first input on the activation path (no node of their own). */
export const PASS_THROUGH_OPS: ReadonlySet<string> = new Set(['Identity', 'Dropout', 'Cast']);

/** Operators that compute shapes or constants; never parameters, never activations of their own. */
export const SHAPE_OPS: ReadonlySet<string> = new Set([
  'Shape', 'Size', 'Constant', 'ConstantOfShape', 'Range', 'NonZero',
]);

/** Activation functions recognized by evaluating a decomposed elementwise region (see patterns/). */
export const ACTIVATION_KINDS = [
  'relu', 'relu6', 'gelu', 'silu', 'hardswish', 'hardsigmoid', 'sigmoid', 'tanh', 'softplus', 'mish', 'elu',
] as const satisfies readonly OpKind[];
export type ActivationKind = (typeof ACTIVATION_KINDS)[number];
