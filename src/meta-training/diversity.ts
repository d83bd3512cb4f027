/**
 * The diversity objective of a latent GHN (ghn/latent.ts): two latent draws of one architecture
 * run on the same images, and the loss is their mean cross-entropy minus `weight` × their
 * Jensen–Shannon divergence. The divergence compares what the two networks output, so it is blind
 * to the trivial symmetries of a network (permuted hidden units, rescaled layers) that a distance
 * between weights would reward; it is bounded (ln 2), so it cannot outgrow the cross-entropy.
 */
import * as tf from '../engine/tfjs-core.js';
import { deriveSeed } from '../util/random.js';
import { drawSampleLatent, type LatentDraw } from '../ghn/latent.js';
import type { GraphEncoding } from '../ghn/encoding.js';

/** Mean over images of JS(p, q) for logits [images, classes]. Differentiable. */
export function jensenShannon(logitsA: tf.Tensor, logitsB: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const p = tf.softmax(logitsA), q = tf.softmax(logitsB);
    const m = tf.div(tf.add(p, q), 2);
    const entropy = (d: tf.Tensor) => tf.neg(tf.sum(tf.mul(d, tf.log(tf.add(d, 1e-12))), -1));
    return tf.mean(tf.sub(entropy(m), tf.div(tf.add(entropy(p), entropy(q)), 2))) as tf.Scalar;
  });
}

/** The two latent draws of the architecture at position `position` of meta-step `step` (deterministic; drawSampleLatent). */
export function stepLatents(enc: GraphEncoding, dim: number, seed: number, step: number, position: number): [LatentDraw, LatentDraw] {
  const base = deriveSeed(seed, 0x5eed0000 + step);
  return [drawSampleLatent(enc, dim, deriveSeed(base, 2 * position)), drawSampleLatent(enc, dim, deriveSeed(base, 2 * position + 1))];
}
