/** Input access helpers shared by the op families. */
import * as tf from '../tfjs-core.js';
import { broadcastOperandToNhwc, nchwToNhwc, nhwcToNchw } from '../layout.js';
import type { OpContext, OpOutput, Value } from './types.js';

/** Input i in ONNX's own layout. */
export function nchw(ctx: OpContext, i: number): tf.Tensor {
  const v = ctx.required(i);
  return v.nhwc ? nhwcToNchw(v.t) : v.t;
}

/** Rank-4 input i physically NHWC. */
export function nhwc(ctx: OpContext, i: number): tf.Tensor {
  const v = ctx.required(i);
  if (v.nhwc) return v.t;
  if (v.t.rank !== 4) throw new Error(`${ctx.node.opType} expects a 4-D input, got shape [${v.t.shape}]`);
  return ctx.derive(i, 'nhwc', nchwToNhwc);
}

/** Any-rank broadcasting operand i placed against a rank-4 NHWC value. */
export function nhwcOperand(ctx: OpContext, i: number): tf.Tensor {
  const v = ctx.required(i);
  return v.nhwc ? v.t : ctx.derive(i, 'nhwc-operand', broadcastOperandToNhwc);
}

export const plain = (t: tf.Tensor): OpOutput => ({ t, nhwc: false });
export const physicalNhwc = (t: tf.Tensor): OpOutput => ({ t, nhwc: true });

/** Logical (ONNX) shape of a value. */
export function logicalShape(v: Value): number[] {
  if (!v.nhwc) return v.t.shape;
  const [n, h, w, c] = v.t.shape;
  return [n, c, h, w];
}

/**
 * Brings the present inputs of an elementwise op into one layout: NHWC when any is NHWC (the
 * output is then rank 4), else ONNX layout untouched.
 */
export function alignElementwise(ctx: OpContext, indices: number[]): { tensors: tf.Tensor[]; nhwc: boolean } {
  const anyNhwc = indices.some((i) => ctx.required(i).nhwc);
  const tensors = indices.map((i) => (anyNhwc ? nhwcOperand(ctx, i) : ctx.required(i).t));
  return { tensors, nhwc: anyNhwc };
}

/** Indices of present inputs. */
export function presentInputs(ctx: OpContext): number[] {
  const out: number[] = [];
  for (let i = 0; i < ctx.inputCount; i++) if (ctx.input(i)) out.push(i);
  return out;
}

/**
 * Every `step`-th element of [begin, end) along `axis`, built from slice/pad/reshape so it is
 * differentiable (tfjs has no gradient for stridedSlice).
 */
export function stridedAxis(x: tf.Tensor, axis: number, begin: number, end: number, step: number): tf.Tensor {
  const beginAt = x.shape.map((_, i) => (i === axis ? begin : 0));
  const size = x.shape.map((d, i) => (i === axis ? end - begin : d));
  let t = tf.slice(x, beginAt, size);
  if (step === 1) return t;
  const count = Math.ceil((end - begin) / step);
  const padded = count * step;
  if (padded > end - begin) t = tf.pad(t, x.shape.map((_, i): [number, number] => (i === axis ? [0, padded - (end - begin)] : [0, 0])));
  const split = [...t.shape.slice(0, axis), count, step, ...t.shape.slice(axis + 1)];
  const picked = tf.slice(tf.reshape(t, split), split.map(() => 0), split.map((d, i) => (i === axis + 1 ? 1 : d)));
  return tf.reshape(picked, [...t.shape.slice(0, axis), count, ...t.shape.slice(axis + 1)]);
}
