/**
 * Transformer pieces as PyTorch 1.13 exports them from ViT-style module code that keeps token
 * counts as Python ints (so reshapes get constant shape tensors with −1 for the batch).
 */
import { attr, int64Tensor, ModelBuilder, type Value } from './onnx-builder.js';
import { linearNd, reshape, transpose } from './layers.js';

/**
 * Multi-head self-attention in the current scope, timm layout: `qkv` and `proj` linears;
 * qkv → Reshape[-1,N,3,h,d] → Transpose(2,0,3,1,4) → Gather q/k/v → MatMul(q, kᵀ) · d^-½ →
 * Softmax → MatMul(·, v) → Transpose(0,2,1,3) → Reshape[-1,N,C] → proj.
 */
export function selfAttention(b: ModelBuilder, x: Value, heads: number): Value {
  const [, tokens, width] = x.shape;
  if (width % heads !== 0) throw new Error(`width ${width} not divisible by ${heads} heads`);
  const headDim = width / heads;
  const qkv = b.within('qkv', () => linearNd(b, x, 3 * width));
  const split = reshape(b, qkv, [-1, tokens, 3, heads, headDim]);
  const stacked = transpose(b, split, [2, 0, 3, 1, 4]);
  const pick = (i: number): Value =>
    b.op('Gather', [stacked.name, b.intConstant([i], true)], stacked.shape.slice(1), { axis: attr.int(0) });
  const q = pick(0);
  const k = pick(1);
  const v = pick(2);
  const kT = transpose(b, k, [0, 1, 3, 2]);
  const scoreShape = [1, heads, tokens, tokens];
  const scores = b.op('MatMul', [q.name, kT.name], scoreShape);
  const scaled = b.op('Mul', [scores.name, b.floatConstant(headDim ** -0.5)], scoreShape);
  const weights = b.op('Softmax', [scaled.name], scoreShape, { axis: attr.int(-1) });
  const mixed = b.op('MatMul', [weights.name, v.name], q.shape);
  b.flops += 2 * 2 * heads * tokens * tokens * headDim;
  const merged = reshape(b, transpose(b, mixed, [0, 2, 1, 3]), [-1, tokens, width]);
  return b.within('proj', () => linearNd(b, merged, width));
}

/**
 * `torch.cat([cls_token.expand(x.shape[0], -1, -1), x], dim=1)` with a dynamic batch: the
 * exporter computes the expand shape at run time (Shape, Gather, Unsqueeze, Concat, and the
 * ConstantOfShape/Equal/Where dance that resolves the −1 entries), then Expand and Concat.
 * `clsToken` is the [1,1,C] parameter's initializer name.
 */
export function prependClassToken(b: ModelBuilder, x: Value, clsToken: string): Value {
  const [, tokens, width] = x.shape;
  const shape = b.op('Shape', [x.name], [3]);
  const batch = b.op('Gather', [shape.name, b.intConstant([0], true)], [], { axis: attr.int(0) });
  const batch1d = b.op('Unsqueeze', [batch.name, b.intConstant([0])], [1]);
  const minusOne1 = b.intConstant([-1]);
  const minusOne2 = b.intConstant([-1]);
  const sizes = b.op('Concat', [batch1d.name, minusOne1, minusOne2], [3], { axis: attr.int(0) });
  const flat = b.op('Reshape', [sizes.name, b.intConstant([-1])], [3], b.opset >= 14 ? { allowzero: attr.int(0) } : {});
  const rank = b.op('Shape', [flat.name], [1]);
  const ones = b.op('ConstantOfShape', [rank.name], [3], { value: attr.tensor(int64Tensor([1])) });
  const minusOnes = b.op('Mul', [ones.name, b.intConstant([-1], true)], [3]);
  const isMinusOne = b.op('Equal', [flat.name, minusOnes.name], [3]);
  const target = b.op('Where', [isMinusOne.name, ones.name, flat.name], [3]);
  const expanded = b.op('Expand', [clsToken, target.name], [1, 1, width]);
  return b.op('Concat', [expanded.name, x.name], [1, tokens + 1, width], { axis: attr.int(1) });
}

/** `x[:, 0]`: the class token's features, a Gather on axis 1 with a scalar index. */
export function takeFirstToken(b: ModelBuilder, x: Value): Value {
  return b.op('Gather', [x.name, b.intConstant([0], true)], [x.shape[0], x.shape[2]], { axis: attr.int(1) });
}

/** `x.mean(dim=1)`: average over tokens. */
export function meanOverTokens(b: ModelBuilder, x: Value): Value {
  return b.op('ReduceMean', [x.name], [x.shape[0], x.shape[2]], { axes: attr.ints([1]), keepdims: attr.int(0) });
}
