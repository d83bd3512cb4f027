/**
 * NCHW (ONNX) ↔ NHWC (tfjs convolution) layout helpers.
 *
 * 4-D activations stay physically NHWC between convolutions, pools, norms and elementwise ops; they
 * are converted only where an op's meaning depends on the memory order (Reshape, Flatten, MatMul...).
 */
import * as tf from './tfjs-core.js';

/** Physical NHWC axis of each logical NCHW axis. */
export const NHWC_AXIS_OF_NCHW: readonly number[] = [0, 3, 1, 2];

/** When C or H·W is 1 the permutation moves no data and a reshape is enough. */
function permutationIsReshape(shape: readonly number[], a: number, b: number): boolean {
  return shape[a] === 1 || shape[b] === 1;
}

export function nhwcToNchw(t: tf.Tensor): tf.Tensor {
  const [n, h, w, c] = t.shape;
  if (permutationIsReshape([n, h * w, c], 1, 2)) return tf.reshape(t, [n, c, h, w]);
  return tf.transpose(t, [0, 3, 1, 2]);
}

export function nchwToNhwc(t: tf.Tensor): tf.Tensor {
  const [n, c, h, w] = t.shape;
  if (permutationIsReshape([n, c, h * w], 1, 2)) return tf.reshape(t, [n, h, w, c]);
  return tf.transpose(t, [0, 2, 3, 1]);
}

/**
 * A broadcasting operand of an op whose other operand is NCHW rank 4, brought into NHWC: pad its
 * shape with leading ones to rank 4 (numpy broadcasting), then permute.
 */
export function broadcastOperandToNhwc(t: tf.Tensor): tf.Tensor {
  if (t.rank > 4) throw new Error('operand of rank > 4 cannot meet a rank-4 NHWC value');
  const shape = [...new Array(4 - t.rank).fill(1), ...t.shape];
  return nchwToNhwc(t.rank === 4 ? t : tf.reshape(t, shape));
}

/** Normalizes a possibly negative axis. */
export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}
