/**
 * PyTorch layers as the 1.13 exporter decomposes them. Each helper emits its nodes into the
 * builder's current scope and registers its parameters there, with PyTorch's default init:
 * conv/linear weights kaiming-uniform(a=√5) = U(±1/√fan_in), biases U(±1/√fan_in), norm scales 1
 * and shifts 0, BN running mean 0 and variance 1. Callers enter the module scope (`b.within`)
 * exactly as the torch module tree would.
 */
import { attr, ModelBuilder, numel, type Value } from './onnx-builder.js';

/** How batch norm reaches the ONNX file. */
export type NormMode =
  /** `training=TrainingMode.PRESERVE`: BatchNormalization nodes stay. */
  | 'bn'
  /** default eval export: BN merged into the preceding conv, which gains a bias. */
  | 'folded'
  /** the network has no normalization layers. */
  | 'none';

export interface ConvSpec {
  readonly out: number;
  readonly kernel: number;
  readonly stride?: number;
  /** Defaults to "same" padding for stride 1: dilation·(kernel−1)/2. */
  readonly padding?: number;
  readonly dilation?: number;
  readonly groups?: number;
  readonly bias: boolean;
}

export interface BnOptions {
  readonly eps?: number;
  /** PyTorch's momentum (0.1 default); ONNX stores 1 − momentum. */
  readonly momentum?: number;
}

function uniformFanIn(fanIn: number) {
  return { kind: 'uniform', bound: 1 / Math.sqrt(fanIn) } as const;
}

/**
 * nn.Conv2d. With `foldEps` the exporter's BN folding is reproduced: the weight and a bias
 * (zero if the conv had none) become `onnx::Conv_N` tensors scaled by 1/√(1+eps), the effect of
 * a fresh BN (γ=1, β=0, mean 0, var 1).
 */
export function conv2d(b: ModelBuilder, x: Value, spec: ConvSpec, foldEps?: number): Value {
  const [n, cin, h, w] = x.shape;
  const stride = spec.stride ?? 1;
  const dilation = spec.dilation ?? 1;
  const groups = spec.groups ?? 1;
  const padding = spec.padding ?? (dilation * (spec.kernel - 1)) / 2;
  if (cin % groups !== 0 || spec.out % groups !== 0) throw new Error(`conv groups ${groups} do not divide ${cin}→${spec.out}`);
  const fanIn = (cin / groups) * spec.kernel * spec.kernel;
  const weightDims = [spec.out, cin / groups, spec.kernel, spec.kernel];
  const init = uniformFanIn(fanIn);
  const inputs = [x.name];
  if (foldEps === undefined) {
    inputs.push(b.param('weight', weightDims, init));
    if (spec.bias) inputs.push(b.param('bias', [spec.out], init));
  } else {
    const scale = 1 / Math.sqrt(1 + foldEps);
    inputs.push(b.anonymousParam('Conv', weightDims, { ...init, scale }));
    inputs.push(b.anonymousParam('Conv', [spec.out], spec.bias ? { ...init, scale } : { kind: 'constant', value: 0 }));
  }
  const size = (len: number) => Math.floor((len + 2 * padding - dilation * (spec.kernel - 1) - 1) / stride) + 1;
  const shape = [n, spec.out, size(h), size(w)];
  if (shape[2] < 1 || shape[3] < 1) throw new Error(`conv output ${shape.join('x')} is empty`);
  b.flops += 2 * numel(shape) * fanIn;
  return b.op('Conv', inputs, shape, {
    dilations: attr.ints([dilation, dilation]),
    group: attr.int(groups),
    kernel_shape: attr.ints([spec.kernel, spec.kernel]),
    pads: attr.ints([padding, padding, padding, padding]),
    strides: attr.ints([stride, stride]),
  });
}

/** nn.BatchNorm2d / BatchNorm1d in inference form (one output). */
export function batchNorm(b: ModelBuilder, x: Value, options: BnOptions = {}): Value {
  const c = x.shape[1];
  const weight = b.param('weight', [c], { kind: 'constant', value: 1 });
  const bias = b.param('bias', [c], { kind: 'constant', value: 0 });
  const mean = b.param('running_mean', [c], { kind: 'constant', value: 0 }, false);
  const variance = b.param('running_var', [c], { kind: 'constant', value: 1 }, false);
  return b.op('BatchNormalization', [x.name, weight, bias, mean, variance], x.shape, {
    epsilon: attr.float(options.eps ?? 1e-5),
    momentum: attr.float(1 - (options.momentum ?? 0.1)),
  });
}

/**
 * Conv followed by its BatchNorm, in modules `convName` and `bnName` of the current scope
 * (torchvision's Conv2dNormActivation uses '0' and '1'). Under 'none' only the conv is emitted.
 */
export function convNorm(
  b: ModelBuilder,
  x: Value,
  spec: ConvSpec,
  norm: NormMode,
  names: { conv: string; bn: string },
  bn: BnOptions = {},
): Value {
  if (norm === 'folded') return b.within(names.conv, () => conv2d(b, x, spec, bn.eps ?? 1e-5));
  const y = b.within(names.conv, () => conv2d(b, x, spec));
  return norm === 'bn' ? b.within(names.bn, () => batchNorm(b, y, bn)) : y;
}

export type Activation = 'relu' | 'relu6' | 'hardswish' | 'hardsigmoid' | 'sigmoid' | 'silu' | 'gelu';

const ONE_SIXTH = 1 / 6;

/** Each activation's exporter decomposition, emitted in the current scope. */
const ACTIVATIONS: Record<Activation, (b: ModelBuilder, x: Value) => Value> = {
  relu: (b, x) => b.op('Relu', [x.name], x.shape),
  relu6: (b, x) => {
    const lo = b.floatConstant(0);
    const hi = b.floatConstant(6);
    return b.op('Clip', [x.name, lo, hi], x.shape);
  },
  hardsigmoid: (b, x) => b.op('HardSigmoid', [x.name], x.shape, { alpha: attr.float(ONE_SIXTH) }),
  hardswish: (b, x) => {
    const gate = b.op('HardSigmoid', [x.name], x.shape, { alpha: attr.float(ONE_SIXTH) });
    return b.op('Mul', [x.name, gate.name], x.shape);
  },
  sigmoid: (b, x) => b.op('Sigmoid', [x.name], x.shape),
  silu: (b, x) => {
    const gate = b.op('Sigmoid', [x.name], x.shape);
    return b.op('Mul', [x.name, gate.name], x.shape);
  },
  // x·½(1 + erf(x/√2)), in the exporter's node order.
  gelu: (b, x) => {
    const div = b.op('Div', [x.name, b.floatConstant(Math.SQRT2)], x.shape);
    const erf = b.op('Erf', [div.name], x.shape);
    const plusOne = b.op('Add', [erf.name, b.floatConstant(1)], x.shape);
    const mul = b.op('Mul', [x.name, plusOne.name], x.shape);
    return b.op('Mul', [mul.name, b.floatConstant(0.5)], x.shape);
  },
};

export function activation(b: ModelBuilder, x: Value, kind: Activation): Value {
  return ACTIVATIONS[kind](b, x);
}

/** torchvision's SqueezeExcitation: gate(fc2(act(fc1(avgpool(x)))) · x, in the current scope. */
export function squeezeExcite(
  b: ModelBuilder,
  x: Value,
  squeeze: number,
  act: Activation,
  gate: 'hardsigmoid' | 'sigmoid',
): Value {
  const c = x.shape[1];
  let s = b.within('avgpool', () => globalAvgPool(b, x));
  s = b.within('fc1', () => conv2d(b, s, { out: squeeze, kernel: 1, bias: true }));
  s = b.within('activation', () => activation(b, s, act));
  s = b.within('fc2', () => conv2d(b, s, { out: c, kernel: 1, bias: true }));
  s = b.within('scale_activation', () => activation(b, s, gate));
  return b.op('Mul', [s.name, x.name], x.shape);
}

export function maxPool(b: ModelBuilder, x: Value, kernel: number, stride: number, padding = 0): Value {
  const [n, c, h, w] = x.shape;
  const size = (len: number) => Math.floor((len + 2 * padding - kernel) / stride) + 1;
  return b.op('MaxPool', [x.name], [n, c, size(h), size(w)], {
    ceil_mode: attr.int(0),
    kernel_shape: attr.ints([kernel, kernel]),
    pads: attr.ints([padding, padding, padding, padding]),
    strides: attr.ints([stride, stride]),
  });
}

/** nn.AvgPool2d(kernel, stride): opset 13 export is an explicit Pad (here all zeros) then AveragePool. */
export function avgPool(b: ModelBuilder, x: Value, kernel: number, stride: number): Value {
  const [n, c, h, w] = x.shape;
  const pads = b.intConstant([0, 0, 0, 0, 0, 0, 0, 0]);
  const padded = b.op('Pad', [x.name, pads], x.shape, { mode: attr.string('constant') });
  const size = (len: number) => Math.floor((len - kernel) / stride) + 1;
  return b.op('AveragePool', [padded.name], [n, c, size(h), size(w)], {
    ceil_mode: attr.int(0),
    kernel_shape: attr.ints([kernel, kernel]),
    pads: attr.ints([0, 0, 0, 0]),
    strides: attr.ints([stride, stride]),
  });
}

/** nn.AdaptiveAvgPool2d(1) / F.adaptive_avg_pool2d(x, 1). */
export function globalAvgPool(b: ModelBuilder, x: Value): Value {
  return b.op('GlobalAveragePool', [x.name], [x.shape[0], x.shape[1], 1, 1]);
}

/** torch.flatten(x, 1) / nn.Flatten(). */
export function flatten(b: ModelBuilder, x: Value): Value {
  return b.op('Flatten', [x.name], [x.shape[0], numel(x.shape.slice(1))], { axis: attr.int(1) });
}

/** nn.Linear on a 2-D input: Gemm(x, W[out,in], b) with transB=1. */
export function linear(b: ModelBuilder, x: Value, out: number): Value {
  if (x.shape.length !== 2) throw new Error(`linear expects a 2-D input, got ${x.shape.join('x')}`);
  const fanIn = x.shape[1];
  const weight = b.param('weight', [out, fanIn], uniformFanIn(fanIn));
  const bias = b.param('bias', [out], uniformFanIn(fanIn));
  b.flops += 2 * fanIn * out;
  return b.op('Gemm', [x.name, weight, bias], [x.shape[0], out], {
    alpha: attr.float(1),
    beta: attr.float(1),
    transB: attr.int(1),
  });
}

/**
 * nn.Linear on an input of rank ≥ 3: MatMul by the transposed weight, stored [in, out] as an
 * `onnx::MatMul_N` tensor, then Add(bias, product) — bias first, as exported.
 */
export function linearNd(b: ModelBuilder, x: Value, out: number): Value {
  const fanIn = x.shape[x.shape.length - 1];
  const shape = [...x.shape.slice(0, -1), out];
  const weight = b.anonymousParam('MatMul', [fanIn, out], uniformFanIn(fanIn));
  const bias = b.param('bias', [out], uniformFanIn(fanIn));
  b.flops += 2 * numel(shape) * fanIn;
  const product = b.op('MatMul', [x.name, weight], shape);
  return b.op('Add', [bias, product.name], shape);
}

/**
 * nn.LayerNorm over the last axis. Opset 13 has no LayerNormalization op, so the exporter
 * writes mean/variance arithmetic; opset 17 writes the single op.
 */
export function layerNorm(b: ModelBuilder, x: Value, eps: number): Value {
  const c = x.shape[x.shape.length - 1];
  const weight = b.param('weight', [c], { kind: 'constant', value: 1 });
  const bias = b.param('bias', [c], { kind: 'constant', value: 0 });
  if (b.opset >= 17) {
    return b.op('LayerNormalization', [x.name, weight, bias], x.shape, {
      axis: attr.int(-1),
      epsilon: attr.float(eps),
    });
  }
  const reduced = [...x.shape.slice(0, -1), 1];
  const mean = b.op('ReduceMean', [x.name], reduced, { axes: attr.ints([-1]) });
  const centered = b.op('Sub', [x.name, mean.name], x.shape);
  const squared = b.op('Pow', [centered.name, b.floatConstant(2)], x.shape);
  const variance = b.op('ReduceMean', [squared.name], reduced, { axes: attr.ints([-1]) });
  const shifted = b.op('Add', [variance.name, b.floatConstant(eps)], reduced);
  const std = b.op('Sqrt', [shifted.name], reduced);
  const normalized = b.op('Div', [centered.name, std.name], x.shape);
  const scaled = b.op('Mul', [normalized.name, weight], x.shape);
  return b.op('Add', [scaled.name, bias], x.shape);
}

export function add(b: ModelBuilder, x: Value, y: Value): Value {
  return b.op('Add', [x.name, y.name], broadcastShape(x.shape, y.shape));
}

export function mul(b: ModelBuilder, x: Value, y: Value): Value {
  return b.op('Mul', [x.name, y.name], broadcastShape(x.shape, y.shape));
}

/** torch.cat(values, axis) */
export function concat(b: ModelBuilder, values: readonly Value[], axis: number): Value {
  const shape = [...values[0].shape];
  shape[axis] = values.reduce((sum, v) => sum + v.shape[axis], 0);
  return b.op('Concat', values.map((v) => v.name), shape, { axis: attr.int(axis) });
}

/** x.permute(perm) / x.transpose(i, j) */
export function transpose(b: ModelBuilder, x: Value, perm: readonly number[]): Value {
  return b.op('Transpose', [x.name], perm.map((p) => x.shape[p]), { perm: attr.ints(perm) });
}

/** x.reshape(-1, ...) with Python-int sizes: a constant shape tensor. `shape[0]` is −1 (batch). */
export function reshape(b: ModelBuilder, x: Value, shape: readonly number[]): Value {
  const target = b.intConstant(shape);
  const known = numel(shape.filter((d) => d !== -1));
  const resolved = shape.map((d) => (d === -1 ? numel(x.shape) / known : d));
  if (!resolved.every(Number.isInteger)) throw new Error(`cannot reshape ${x.shape.join('x')} to ${shape.join('x')}`);
  // Reshape-14 added `allowzero`, which the exporter writes (as 0) from opset 14 on.
  return b.op('Reshape', [x.name, target], resolved, b.opset >= 14 ? { allowzero: attr.int(0) } : {});
}

/**
 * Layer scale: `gamma * x` with gamma a [C,1,1] parameter (ConvNeXt). PyTorch writes the
 * parameter first: Mul(gamma, x).
 */
export function layerScale(b: ModelBuilder, x: Value, localName: string, value: number): Value {
  const gamma = b.param(localName, [x.shape[1], 1, 1], { kind: 'constant', value });
  return b.op('Mul', [gamma, x.name], x.shape);
}

function broadcastShape(a: readonly number[], c: readonly number[]): number[] {
  const rank = Math.max(a.length, c.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const dc = c[c.length - rank + i] ?? 1;
    if (da !== dc && da !== 1 && dc !== 1) throw new Error(`cannot broadcast ${a.join('x')} with ${c.join('x')}`);
    out.push(Math.max(da, dc));
  }
  return out;
}
