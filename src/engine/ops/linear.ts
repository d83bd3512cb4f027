/**
 * MatMul and Gemm. Products are computed as 2-D or 3-D batched matMuls without transpose flags
 * (tfjs cannot differentiate broadcast matMul, and flagged/batched products are slow on wasm).
 */
import * as tf from '../tfjs-core.js';
import { attrFloat, attrInt } from './attrs.js';
import { nchw } from './common.js';
import type { OpContext, OpOutput, OpTable } from './types.js';

function broadcastShapes(a: number[], b: number[]): number[] {
  return tf.broadcast_util.assertAndGetBroadcastShape(a, b);
}

function matMul(ctx: OpContext): OpOutput[] {
  let a = nchw(ctx, 0);
  let b = nchw(ctx, 1);
  const aVec = a.rank === 1;
  const bVec = b.rank === 1;
  if (aVec) a = tf.reshape(a, [1, a.shape[0]]);
  if (bVec) b = tf.reshape(b, [b.shape[0], 1]);
  let y: tf.Tensor;
  if (b.rank === 2) {
    // [..., m, k] × [k, n]: fold the leading axes into rows.
    const lead = a.shape.slice(0, -1);
    y = tf.reshape(tf.matMul(tf.reshape(a, [-1, a.shape[a.rank - 1]]) as tf.Tensor2D, b as tf.Tensor2D), [...lead, b.shape[1] as number]);
  } else {
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const full = (t: tf.Tensor) => {
      const target = [...batch, ...t.shape.slice(-2)];
      return t.shape.join() === target.join() ? t : tf.broadcastTo(t, target);
    };
    const a3 = tf.reshape(full(a), [-1, a.shape[a.rank - 2], a.shape[a.rank - 1]]) as tf.Tensor3D;
    const b3 = tf.reshape(full(b), [-1, b.shape[b.rank - 2], b.shape[b.rank - 1]]) as tf.Tensor3D;
    y = tf.reshape(tf.matMul(a3, b3), [...batch, a3.shape[1], b3.shape[2]]);
  }
  if (aVec) y = tf.squeeze(y, [y.rank - 2]);
  if (bVec) y = tf.squeeze(y, [y.rank - 1]);
  return [{ t: y, nhwc: false }];
}

/** Y = alpha·A'·B' + beta·C; a stored [out, in] weight (transB) is transposed once when stable. */
function gemm(ctx: OpContext): OpOutput[] {
  const transA = attrInt(ctx.node, 'transA', 0) === 1;
  const transB = attrInt(ctx.node, 'transB', 0) === 1;
  const alpha = attrFloat(ctx.node, 'alpha', 1);
  const beta = attrFloat(ctx.node, 'beta', 1);
  let a = nchw(ctx, 0);
  if (a.rank !== 2) a = tf.reshape(a, [a.shape[0], -1]);
  if (transA) a = tf.transpose(a);
  const b = transB ? ctx.derive(1, 'T', (t) => tf.transpose(t)) : ctx.required(1).t;
  let y = tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D) as tf.Tensor;
  if (alpha !== 1) y = tf.mul(y, alpha);
  if (ctx.input(2)) {
    const c = ctx.required(2).t;
    y = tf.add(y, beta === 1 ? c : tf.mul(c, beta));
  }
  return [{ t: y, nhwc: false }];
}

export const linearOps: OpTable = {
  MatMul: matMul,
  Gemm: gemm,
};
