/**
 * Fused normalization ops with hand-written backward passes (tf.customGrad). Backend-agnostic.
 * Both take the channel/feature axis LAST: batchNormTrain on NHWC (or any [..., C]), layerNorm on
 * [..., D]. Autodiff through moments() + batchNorm() records a dozen full-size ops each way; these
 * record one node and do ~5 full-size passes forward and ~6 backward.
 */
import * as tf from '../tfjs-core.js';
import { channelAffine } from './channel-affine.js';
import { columnMeans, columnSums } from './reductions.js';

export interface BatchNormTrainResult<T extends tf.Tensor> {
  /** Normalized, scaled and shifted x; same shape as x. Differentiable w.r.t. x, gamma, beta. */
  y: T;
  /** Per-channel batch mean [C] (not differentiable: for running statistics). */
  mean: tf.Tensor1D;
  /** Per-channel biased batch variance [C] (not differentiable: for running statistics). */
  variance: tf.Tensor1D;
}

/**
 * Training-mode batch normalization over all axes but the last. x: [..., C] (NHWC for images),
 * gamma, beta: [C]. Uses the biased batch variance, as PyTorch does for normalization.
 */
export function batchNormTrain<T extends tf.Tensor>(x: T, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps = 1e-5): BatchNormTrainResult<T> {
  const c = x.shape[x.rank - 1]!;
  const m = x.size / c;
  let stats: [tf.Tensor1D, tf.Tensor1D] | undefined;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xIn, g, b, save] = args as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const x2 = tf.reshape(xIn, [m, c]) as tf.Tensor2D;
    const mean = columnMeans(x2);
    const centered = tf.sub(x2, mean) as tf.Tensor2D;
    const variance = columnMeans(tf.mul(centered, centered) as tf.Tensor2D);
    const invStd = tf.rsqrt(tf.add(variance, eps)) as tf.Tensor1D;
    const y = tf.reshape(channelAffine(centered, tf.mul(invStd, g) as tf.Tensor1D, b), xIn.shape);
    // Forward ops inside customGrad are not taped; keep the statistics past its internal tidy.
    stats = [tf.keep(mean), tf.keep(variance)];
    save([centered, invStd, g]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xc, inv, gm] = saved as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
        const dy2 = tf.reshape(dy, [m, c]) as tf.Tensor2D;
        const dBeta = columnSums(dy2);
        // Σ dy·x̂ = invStd · Σ dy·(x − mean)
        const dGamma = tf.mul(columnSums(tf.mul(dy2, xc) as tf.Tensor2D), inv) as tf.Tensor1D;
        // dx = γ·invStd·(dy − mean(dy) − x̂·mean(dy·x̂)), with x̂ = (x − mean)·invStd:
        // a per-channel scale-and-shift of dy minus a per-channel multiple of (x − mean).
        const scale = tf.mul(gm, inv) as tf.Tensor1D;
        const xcCoef = tf.mul(scale, tf.mul(tf.mul(inv, dGamma), 1 / m)) as tf.Tensor1D;
        const shift = tf.mul(scale, tf.div(dBeta, -m)) as tf.Tensor1D;
        const dx = tf.sub(channelAffine(dy2, scale, shift), tf.mul(xc, xcCoef));
        return [tf.reshape(dx, dy.shape), dGamma, dBeta];
      },
    };
  });
  const y = op(x, gamma, beta) as T;
  const [meanKept, varKept] = stats!;
  const result = { y, mean: tf.clone(meanKept), variance: tf.clone(varKept) };
  meanKept.dispose();
  varKept.dispose();
  return result;
}

/**
 * Layer normalization over the last axis. x: [..., D], gamma, beta: [D]. Returns [..., D].
 */
export function layerNorm<T extends tf.Tensor>(x: T, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps = 1e-5): T {
  const d = x.shape[x.rank - 1]!;
  const n = x.size / d;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xIn, g, b, save] = args as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const x2 = tf.reshape(xIn, [n, d]);
    const centered = tf.sub(x2, tf.mean(x2, 1, true));
    const invStd = tf.rsqrt(tf.add(tf.mean(tf.mul(centered, centered), 1, true), eps)); // [n, 1]
    const xHat = tf.mul(centered, invStd);
    save([xHat, invStd, g]);
    return {
      value: tf.reshape(tf.add(tf.mul(xHat, g), b), xIn.shape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, inv, gm] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
        const dy2 = tf.reshape(dy, [n, d]) as tf.Tensor2D;
        const dGamma = columnSums(tf.mul(dy2, xh) as tf.Tensor2D);
        const dBeta = columnSums(dy2);
        const dxHat = tf.mul(dy2, gm);
        // dx = invStd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) per row
        const meanDxHat = tf.mean(dxHat, 1, true);
        const meanDxHatXHat = tf.mean(tf.mul(dxHat, xh), 1, true);
        const dx = tf.mul(tf.sub(tf.sub(dxHat, meanDxHat), tf.mul(xh, meanDxHatXHat)), inv);
        return [tf.reshape(dx, dy.shape), dGamma, dBeta];
      },
    };
  });
  return op(x, gamma, beta) as T;
}
