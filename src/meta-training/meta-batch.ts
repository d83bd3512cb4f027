/**
 * What one meta-step trains on, and its loss gradient: the architectures and images of step t
 * depend only on (seed, t), so every process that trains a share of a step (see
 * gradient-workers.ts) draws the same ones.
 */
import * as tf from '../engine/tfjs-core.js';
import { gatherBatch } from '../data/batches.js';
import type { Dataset } from '../data/dataset.js';
import { GhnError } from '../errors.js';
import { correctCount, crossEntropy } from '../fine-tuning/loss.js';
import { createRng, deriveSeed, randomInt } from '../util/random.js';
import type { ArchitecturePool, PooledArchitecture } from './arch-pool.js';
import type { GhnModel } from '../ghn/model.js';
import { predictInitializerTensors } from '../ghn/predict-params.js';
import { jensenShannon, stepLatents } from './diversity.js';

/** What a draw needs of a pool: its size, and whether an index is usable (any truthy answer). */
export type DrawingPool = Pick<ArchitecturePool, 'split' | 'size'> & { get(index: number): unknown };

/** Pool indices of the `count` usable architectures of step `step` (deterministic). */
export function drawArchitectures(pool: DrawingPool, count: number, seed: number, step: number): number[] {
  const rng = createRng(deriveSeed(seed, 2 * step));
  const out: number[] = [];
  for (let tries = 0; out.length < count && tries < count * 20; tries++) {
    const index = randomInt(rng, pool.size);
    if (pool.get(index)) out.push(index);
  }
  if (out.length === 0) throw new GhnError('unsupported', `no usable architecture in the ${pool.split} pool`);
  return out;
}

/** The images of step `step` (deterministic). */
export function imageBatch(data: Dataset, count: number, seed: number, step: number): { x: tf.Tensor; y: tf.Tensor } {
  const rng = createRng(deriveSeed(seed, 2 * step + 1));
  const indices = Array.from({ length: count }, () => randomInt(rng, data.count));
  const b = gatherBatch(data, indices);
  return { x: tf.tensor(b.x, [count, ...data.shape]), y: tf.tensor1d(b.y, 'int32') };
}

export interface MetaGradients {
  /** Σ cross-entropy over the architectures, divided by the divisor. */
  loss: number;
  /** Correctly classified images, summed over the architectures. */
  correct: number;
  /** d loss / d variable, by the GHN's variable names. */
  grads: Map<string, tf.Tensor>;
  /** With a diversity objective: Σ of the two samples' Jensen–Shannon divergence over the architectures. */
  disagreement?: number;
}

/** What a share is differentiated for, beyond the cross-entropy of the deterministic prediction. */
export interface MetaObjective {
  /** Two latent samples per architecture, loss = mean CE − weight · JS(sample 1, sample 2) (diversity.ts). */
  diversity?: { weight: number; seed: number; step: number; position: number };
  /** Only variables whose names start with one of these are trained (all when absent). */
  variables?: readonly string[];
}

/**
 * One architecture's share of a step: its parameters predicted, the network run on (x, y) with
 * batch-statistics BN, and cross-entropy / divisor differentiated with respect to every GHN
 * variable. A step's gradient is the sum of its architectures' shares taken in their drawing order
 * (sumInOrder), so it is the same number wherever each share was computed (see gradient-workers.ts).
 */
export function archGradients(
  ghn: GhnModel, arch: PooledArchitecture, x: tf.Tensor, y: tf.Tensor, divisor: number, objective: MetaObjective = {},
): MetaGradients {
  let correct = 0;
  let disagreement: number | undefined;
  const names = [...ghn.variables.keys()].filter((n) => !objective.variables || objective.variables.some((prefix) => n.startsWith(prefix)));
  if (names.length === 0) throw new GhnError('usage', `no GHN variable starts with ${objective.variables!.join(', ')}`);
  const run = (latent?: Parameters<typeof predictInitializerTensors>[2]) =>
    arch.executor.run(x, { params: predictInitializerTensors(ghn, arch.encoding, latent), training: true }).outputs[0]!;
  const { value, grads } = tf.variableGrads(() => {
    const d = objective.diversity;
    if (!d) {
      const logits = run();
      correct += correctCount(logits, y);
      return tf.div(crossEntropy(logits, y), divisor) as tf.Scalar;
    }
    const dim = ghn.config.latentDim ?? 0;
    if (dim <= 0) throw new GhnError('usage', 'a diversity objective needs a GHN with a latent input (latentDim > 0)');
    const [za, zb] = stepLatents(arch.encoding, dim, d.seed, d.step, d.position);
    const a = run(za), b = run(zb);
    correct += (correctCount(a, y) + correctCount(b, y)) / 2;
    const js = jensenShannon(a, b);
    disagreement = js.dataSync()[0]!;
    const ce = tf.div(tf.add(crossEntropy(a, y), crossEntropy(b, y)), 2);
    return tf.div(tf.sub(ce, tf.mul(js, d.weight)), divisor) as tf.Scalar;
  }, names.map((n) => ghn.variables.get(n)!));
  const loss = value.dataSync()[0]!;
  value.dispose();
  // tfjs keys gradients by its own variable names; the GHN's names are the same in every process.
  const byName = new Map<string, tf.Tensor>();
  for (const name of names) {
    const g = grads[ghn.variables.get(name)!.name];
    if (g) byName.set(name, g);
  }
  return { loss, correct, grads: byName, ...(disagreement === undefined ? {} : { disagreement }) };
}

/** Σ of the parts in their order (consumed): the same numbers however they were computed. */
export function sumInOrder(parts: readonly MetaGradients[]): MetaGradients {
  let loss = 0, correct = 0, disagreement: number | undefined;
  const grads = new Map<string, tf.Tensor>();
  for (const part of parts) {
    loss += part.loss;
    correct += part.correct;
    if (part.disagreement !== undefined) disagreement = (disagreement ?? 0) + part.disagreement;
    for (const [name, g] of part.grads) {
      const before = grads.get(name);
      grads.set(name, before ? tf.add(before, g) : g);
      if (before) {
        before.dispose();
        g.dispose();
      }
    }
  }
  return { loss, correct, grads, ...(disagreement === undefined ? {} : { disagreement }) };
}
