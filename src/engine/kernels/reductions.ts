/**
 * Reductions over the rows of a 2-D view [M, C] (i.e. over every axis but the channel axis),
 * written as a global average pool: on wasm that is XNNPACK's pooling kernel, ~10× faster than a
 * Sum over a leading axis and than a ones-vector product (which repacks the whole operand).
 * Long columns are reduced in two levels (groups of R rows, then the group means) so fp32
 * accumulation error stays bounded (a flat 8M-element fp32 sum can drift by several %).
 * Backend-agnostic.
 */
import * as tf from '../tfjs-core.js';

/** Longest column reduced in one level. */
const ONE_LEVEL_ROWS = 1 << 16;

/** Mean over rows of x [M, C] → [C]. */
export function columnMeans(x: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const [m, c] = x.shape;
    const groupRows = m > ONE_LEVEL_ROWS ? groupSize(m) : m;
    if (groupRows === m) {
      return tf.reshape(tf.avgPool(tf.reshape(x, [1, m, 1, c]) as tf.Tensor4D, [m, 1], 1, 'valid'), [c]) as tf.Tensor1D;
    }
    const groups = m / groupRows;
    // Equal-size groups, so the mean of the group means is the exact mean.
    const partial = tf.avgPool(tf.reshape(x, [1, groups, groupRows, c]) as tf.Tensor4D, [1, groupRows], 1, 'valid');
    return columnMeans(tf.reshape(partial, [groups, c]) as tf.Tensor2D);
  });
}

/** Σ over rows of x [M, C] → [C]. */
export function columnSums(x: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => tf.mul(columnMeans(x), x.shape[0]) as tf.Tensor1D);
}

/** Mean over every axis but the last: x [..., C] → [C]. */
export function channelMeans(x: tf.Tensor): tf.Tensor1D {
  const c = x.shape[x.rank - 1]!;
  return tf.tidy(() => columnMeans(tf.reshape(x, [x.size / c, c]) as tf.Tensor2D));
}

/** Largest divisor of m not above √m·4 and at least 64, or m itself when there is none. */
function groupSize(m: number): number {
  const target = Math.floor(Math.sqrt(m) * 4);
  for (let r = Math.min(target, ONE_LEVEL_ROWS); r >= 64; r--) if (m % r === 0) return r;
  return m;
}
