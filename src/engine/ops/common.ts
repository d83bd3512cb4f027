/** Input access helpers shared by the op families. */
import * as tf from '@tensorflow/tfjs';
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
