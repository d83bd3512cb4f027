/**
 * Normalization layers. BatchNormalization follows the executor's mode, not the file's: training
 * runs normalize with batch statistics (reported to the caller so running statistics can be
 * updated), inference runs with the running statistics in the file or supplied by the caller.
 */
import * as tf from '../tfjs-core.js';
import { batchNormTrain, layerNorm } from '../kernels/index.js';
import { normAxis } from '../layout.js';
import { attrFloat, attrInt } from './attrs.js';
import { nchw, nhwc, physicalNhwc, plain } from './common.js';
import type { OpContext, OpOutput, OpTable } from './types.js';

/** Moves the channel axis (1) of a rank ≥ 2 ONNX value last, and back. */
function channelsLast(x: tf.Tensor): tf.Tensor {
  if (x.rank === 2) return x;
  const perm = [0, ...Array.from({ length: x.rank - 2 }, (_, i) => i + 2), 1];
  return tf.transpose(x, perm);
}
function channelsFirst(x: tf.Tensor): tf.Tensor {
  if (x.rank === 2) return x;
  const perm = [0, x.rank - 1, ...Array.from({ length: x.rank - 2 }, (_, i) => i + 1)];
  return tf.transpose(x, perm);
}

function batchNormalization(ctx: OpContext): OpOutput[] {
  const v = ctx.required(0);
  const eps = attrFloat(ctx.node, 'epsilon', 1e-5);
  const momentum = attrFloat(ctx.node, 'momentum', 0.9);
  const rank4 = v.t.rank === 4;
  const x = rank4 ? nhwc(ctx, 0) : channelsLast(v.t);
  const [scale, bias, runMean, runVar] = [1, 2, 3, 4].map((i) => ctx.required(i).t);
  let y: tf.Tensor;
  let mean = runMean;
  let variance = runVar;
  if (ctx.training) {
    // Fused forward with a hand-written backward (src/engine/kernels), channels last.
    const r = batchNormTrain(x, scale as tf.Tensor1D, bias as tf.Tensor1D, eps);
    y = r.y;
    mean = r.mean;
    variance = r.variance;
    ctx.reportBatchStats({ mean, variance, count: x.size / x.shape[x.rank - 1] });
  } else {
    y = tf.batchNorm(x, runMean, runVar, bias, scale, eps);
  }
  const out: OpOutput[] = [rank4 ? physicalNhwc(y) : plain(channelsFirst(y))];
  // Optional outputs of the training form: updated running stats, then the batch stats.
  if (ctx.node.outputCount > 1) {
    const blend = (run: tf.Tensor, batch: tf.Tensor) => tf.add(tf.mul(run, momentum), tf.mul(batch, 1 - momentum));
    out.push(plain(ctx.training ? blend(runMean, mean) : runMean), plain(ctx.training ? blend(runVar, variance) : runVar));
    if (ctx.node.outputCount > 3) out.push(plain(mean), plain(variance));
  }
  return out;
}

/** (x − mean) / sqrt(var + eps) over `axes`, keeping dims. */
function standardize(x: tf.Tensor, axes: number[], eps: number): tf.Tensor {
  const { mean, variance } = tf.moments(x, axes, true);
  return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
}

function layerNormalization(ctx: OpContext): OpOutput[] {
  const x = nchw(ctx, 0);
  const axis = normAxis(attrInt(ctx.node, 'axis', -1), x.rank);
  const eps = attrFloat(ctx.node, 'epsilon', 1e-5);
  const scale = ctx.required(1).t;
  const bias = ctx.input(2)?.t;
  if (axis === x.rank - 1 && scale.rank === 1 && bias?.rank === 1) {
    return [plain(layerNorm(x, scale as tf.Tensor1D, bias as tf.Tensor1D, eps))];
  }
  const axes = Array.from({ length: x.rank - axis }, (_, i) => axis + i);
  let y = tf.mul(standardize(x, axes, eps), scale);
  if (ctx.input(2)) y = tf.add(y, ctx.required(2).t);
  return [plain(y)];
}

function instanceNormalization(ctx: OpContext): OpOutput[] {
  const v = ctx.required(0);
  const eps = attrFloat(ctx.node, 'epsilon', 1e-5);
  const x = v.t.rank === 4 ? nhwc(ctx, 0) : channelsLast(v.t);
  const spatial = Array.from({ length: x.rank - 2 }, (_, i) => i + 1);
  const y = tf.add(tf.mul(standardize(x, spatial, eps), ctx.required(1).t), ctx.required(2).t);
  return [v.t.rank === 4 ? physicalNhwc(y) : plain(channelsFirst(y))];
}

/** Opset 18 gives scale/bias per group, opset 21 per channel: told apart by their size. */
function groupNormalization(ctx: OpContext): OpOutput[] {
  const x = nchw(ctx, 0);
  const groups = attrInt(ctx.node, 'num_groups', 1);
  const eps = attrFloat(ctx.node, 'epsilon', 1e-5);
  const [n, c] = x.shape;
  const grouped = tf.reshape(x, [n, groups, -1]);
  let y = tf.reshape(standardize(grouped, [2], eps), x.shape);
  const perChannel = (t: tf.Tensor) => {
    const full = t.size === c ? t : tf.reshape(tf.tile(tf.reshape(t, [groups, 1]), [1, c / groups]), [c]);
    return tf.reshape(full, [c, ...new Array(x.rank - 2).fill(1)]);
  };
  y = tf.add(tf.mul(y, perChannel(ctx.required(1).t)), perChannel(ctx.required(2).t));
  return [plain(y)];
}

export const normOps: OpTable = {
  BatchNormalization: batchNormalization,
  LayerNormalization: layerNormalization,
  InstanceNormalization: instanceNormalization,
  GroupNormalization: groupNormalization,
};
