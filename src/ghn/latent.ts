/**
 * The GHN's latent input (GhnConfig.latentDim): a draw z ~ N(0, I) per node, projected by
 * `latent.proj` and added to the node embeddings after the graph transformer, before the slots are
 * decoded. One architecture thus maps to a distribution of parameters, and a further sample costs
 * only the decoder pass: the graph encoding is shared. z = 0 (no latent given) is the deterministic
 * prediction, the same function as a GHN without the latent.
 */
import * as tf from '../engine/tfjs-core.js';
import { createRng, deriveSeed, gaussian } from '../util/random.js';
import type { GraphEncoding } from './encoding.js';
import type { GhnModel } from './model.js';

/** One latent draw: [numOps, latentDim] standard-normal values, row-major. */
export interface LatentDraw {
  readonly values: Float32Array;
  readonly numOps: number;
  readonly dim: number;
}

/** The latent of sample `seed` for a graph of `numOps` nodes (deterministic). */
export function drawLatent(numOps: number, dim: number, seed: number): LatentDraw {
  const rng = createRng(deriveSeed(seed, 0x1a7e));
  const values = new Float32Array(numOps * dim);
  for (let i = 0; i < values.length; i++) values[i] = gaussian(rng);
  return { values, numOps, dim };
}

/**
 * The latent of sample `seed` for an encoded graph, with z = 0 on the classifier's nodes: the
 * user's path fits the classifier in closed form, so only a difference in the body's features
 * survives into what the user gets (meta-training draws its samples the same way).
 */
export function drawSampleLatent(enc: GraphEncoding, dim: number, seed: number): LatentDraw {
  const draw = drawLatent(enc.numOps, dim, seed);
  for (const slot of enc.slots) if (slot.isClassifier) draw.values.fill(0, slot.opIndex * dim, (slot.opIndex + 1) * dim);
  return draw;
}

/** Whether a GHN has a latent input at all. */
export function hasLatent(ghn: GhnModel): boolean {
  return (ghn.config.latentDim ?? 0) > 0;
}

/** Node embeddings moved by the latent: nodes + z·P. Without a latent, the nodes themselves. Differentiable. */
export function withLatent(ghn: GhnModel, nodes: tf.Tensor2D, latent?: LatentDraw): tf.Tensor2D {
  if (!latent) return nodes;
  const dim = ghn.config.latentDim ?? 0;
  if (latent.dim !== dim) throw new Error(`latent of width ${latent.dim} for a GHN with latentDim ${dim}`);
  if (latent.numOps !== nodes.shape[0]) throw new Error(`latent for ${latent.numOps} nodes, graph has ${nodes.shape[0]}`);
  return tf.add(nodes, tf.matMul(tf.tensor2d(latent.values, [latent.numOps, dim]), ghn.v('latent.proj') as tf.Tensor2D)) as tf.Tensor2D;
}
