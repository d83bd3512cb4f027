/** Classification loss and accuracy on logits [N, classes]. */
import * as tf from '../engine/tfjs-core.js';

/** Mean softmax cross-entropy; `labels` are class indices (int32 [N]). */
export function crossEntropy(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const classes = logits.shape[logits.rank - 1]!;
    const oneHot = tf.oneHot(labels as tf.Tensor1D, classes);
    const lse = tf.logSumExp(logits, 1);
    return tf.mean(tf.sub(lse, tf.sum(tf.mul(logits, oneHot), 1))) as tf.Scalar;
  });
}

/** Number of rows whose arg-max equals the label. */
export function correctCount(logits: tf.Tensor, labels: tf.Tensor): number {
  return tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'int32')).dataSync()[0]);
}

/** Arg-max per row of a [N, classes] Float32 buffer, compared with labels. */
export function countCorrect(scores: Float32Array, classes: number, labels: ArrayLike<number>, offset = 0): number {
  let correct = 0;
  const n = scores.length / classes;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (scores[i * classes + c] > scores[i * classes + best]) best = c;
    if (best === labels[offset + i]) correct++;
  }
  return correct;
}

/**
 * Mean cross-entropy against soft targets (rows of class probabilities [N, classes], e.g. an
 * ensemble's mean softmax): −Σ q·log softmax(logits). It differs from KL(q ‖ softmax) by q's
 * entropy, a constant of the targets, so both have the same gradient.
 */
export function softCrossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const logProbs = tf.sub(logits, tf.logSumExp(logits, 1, true));
    return tf.neg(tf.mean(tf.sum(tf.mul(targets, logProbs), 1))) as tf.Scalar;
  });
}
