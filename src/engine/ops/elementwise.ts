/**
 * Elementwise ops: unary math, binary arithmetic/comparison with numpy broadcasting, variadic
 * Sum/Max/Min/Mean, Where, and activation functions. All are layout-agnostic: they run in whatever
 * layout their inputs are in (broadcast operands are permuted to NHWC when needed).
 */
import * as tf from '../tfjs-core.js';
import { attrFloat } from './attrs.js';
import { alignElementwise, presentInputs } from './common.js';
import type { OpContext, OpImpl, OpOutput, OpTable } from './types.js';

function unary(fn: (x: tf.Tensor, ctx: OpContext) => tf.Tensor): OpImpl {
  return (ctx) => {
    const x = ctx.required(0);
    return [{ t: fn(x.t, ctx), nhwc: x.nhwc }];
  };
}

function binary(fn: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor): OpImpl {
  return (ctx) => {
    const { tensors: [a, b], nhwc } = alignElementwise(ctx, [0, 1]);
    return [{ t: fn(a, b), nhwc }];
  };
}

function variadic(fn: (acc: tf.Tensor, next: tf.Tensor) => tf.Tensor, finish?: (t: tf.Tensor, n: number) => tf.Tensor): OpImpl {
  return (ctx) => {
    const { tensors, nhwc } = alignElementwise(ctx, presentInputs(ctx));
    let acc = tensors[0];
    for (const t of tensors.slice(1)) acc = fn(acc, t);
    return [{ t: finish ? finish(acc, tensors.length) : acc, nhwc }];
  };
}

const isInt = (t: tf.Tensor) => t.dtype === 'int32';

/** Integer Div truncates toward zero in ONNX; shape arithmetic is non-negative, where floor = trunc. */
function divide(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (isInt(a) && isInt(b)) return tf.floorDiv(a, b);
  return tf.div(a, b);
}

/** x^p with cheap products for the exponents exporters emit (LayerNorm's Pow 2, GELU-tanh's Pow 3). */
function power(ctx: OpContext): OpOutput[] {
  const base = ctx.required(0);
  const exp = ctx.required(1);
  if (exp.stable && exp.t.size === 1) {
    const p = ctx.floats(1)[0];
    const x = base.t;
    const special: Record<number, () => tf.Tensor> = {
      1: () => x,
      2: () => tf.mul(x, x),
      3: () => tf.mul(tf.mul(x, x), x),
      0.5: () => tf.sqrt(x),
      [-1]: () => tf.reciprocal(x),
    };
    const make = special[p];
    if (make) return [{ t: make(), nhwc: base.nhwc }];
  }
  const { tensors: [a, b], nhwc } = alignElementwise(ctx, [0, 1]);
  return [{ t: tf.pow(a, b), nhwc }];
}

function clip(ctx: OpContext): OpOutput[] {
  const x = ctx.required(0);
  // Opset ≥ 11 passes bounds as (optional) inputs; older opsets as attributes.
  const lo = ctx.input(1) ? ctx.floats(1)[0] : attrFloat(ctx.node, 'min', -Infinity);
  const hi = ctx.input(2) ? ctx.floats(2)[0] : attrFloat(ctx.node, 'max', Infinity);
  const t = lo === 0 && hi === 6 ? tf.relu6(x.t) : tf.clipByValue(x.t, Math.max(lo, -3.4e38), Math.min(hi, 3.4e38));
  return [{ t, nhwc: x.nhwc }];
}

function hardSigmoid(x: tf.Tensor, alpha: number, beta: number): tf.Tensor {
  return tf.clipByValue(tf.add(tf.mul(x, alpha), beta), 0, 1);
}

function where(ctx: OpContext): OpOutput[] {
  const { tensors: [c, a, b], nhwc } = alignElementwise(ctx, [0, 1, 2]);
  const shape = tf.broadcast_util.assertAndGetBroadcastShape(
    tf.broadcast_util.assertAndGetBroadcastShape(c.shape, a.shape), b.shape);
  const full = (t: tf.Tensor) => (t.shape.join() === shape.join() ? t : tf.broadcastTo(t, shape));
  return [{ t: tf.where(full(c) as tf.Tensor, full(a), full(b)), nhwc }];
}

function prelu(ctx: OpContext): OpOutput[] {
  const { tensors: [x, slope], nhwc } = alignElementwise(ctx, [0, 1]);
  // relu(x) − slope·relu(−x): differentiable in both x and slope, any broadcast shape.
  return [{ t: tf.sub(tf.relu(x), tf.mul(slope, tf.relu(tf.neg(x)))), nhwc }];
}

export const elementwiseOps: OpTable = {
  Add: binary(tf.add),
  Sub: binary(tf.sub),
  Mul: binary(tf.mul),
  Div: binary(divide),
  Pow: power,
  Equal: binary(tf.equal),
  Less: binary(tf.less),
  LessOrEqual: binary(tf.lessEqual),
  Greater: binary(tf.greater),
  GreaterOrEqual: binary(tf.greaterEqual),
  And: binary(tf.logicalAnd),
  Or: binary(tf.logicalOr),
  Xor: binary(tf.logicalXor),
  Mod: binary(tf.mod),
  Sum: variadic(tf.add),
  Mean: variadic(tf.add, (t, n) => tf.div(t, n)),
  Max: variadic(tf.maximum),
  Min: variadic(tf.minimum),
  Where: where,
  PRelu: prelu,
  Not: unary(tf.logicalNot),
  Neg: unary(tf.neg),
  Abs: unary(tf.abs),
  Sqrt: unary(tf.sqrt),
  Reciprocal: unary(tf.reciprocal),
  Exp: unary(tf.exp),
  Log: unary(tf.log),
  Floor: unary(tf.floor),
  Ceil: unary(tf.ceil),
  Round: unary(tf.round),
  Sign: unary(tf.sign),
  Sin: unary(tf.sin),
  Cos: unary(tf.cos),
  Erf: unary(tf.erf),
  Tanh: unary(tf.tanh),
  Sigmoid: unary(tf.sigmoid),
  Relu: unary(tf.relu),
  Softplus: unary(tf.softplus),
  Softsign: unary((x) => tf.div(x, tf.add(tf.abs(x), 1))),
  Elu: unary((x, ctx) => {
    const alpha = attrFloat(ctx.node, 'alpha', 1);
    return alpha === 1 ? tf.elu(x) : tf.where(tf.greater(x, 0), x, tf.mul(alpha, tf.sub(tf.exp(x), 1)));
  }),
  Selu: unary(tf.selu),
  LeakyRelu: unary((x, ctx) => tf.leakyRelu(x, attrFloat(ctx.node, 'alpha', 0.01))),
  HardSigmoid: unary((x, ctx) => hardSigmoid(x, attrFloat(ctx.node, 'alpha', 0.2), attrFloat(ctx.node, 'beta', 0.5))),
  HardSwish: unary((x) => tf.mul(x, hardSigmoid(x, 1 / 6, 0.5))),
  Gelu: unary((x) => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1))),
  Clip: clip,
  /** Dropout is the identity: the executor never drops (inference, and deterministic fine-tuning). */
  Dropout: (ctx) => {
    const x = ctx.required(0);
    const outs: OpOutput[] = [{ t: x.t, nhwc: x.nhwc }];
    if (ctx.node.outputCount > 1) outs.push({ t: tf.onesLike(x.t).cast('bool'), nhwc: x.nhwc });
    return outs;
  },
  Identity: (ctx) => {
    const x = ctx.required(0);
    return [{ t: x.t, nhwc: x.nhwc }];
  },
};
