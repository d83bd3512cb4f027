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
}

/**
 * One architecture's share of a step: its parameters predicted, the network run on (x, y) with
 * batch-statistics BN, and cross-entropy / divisor differentiated with respect to every GHN
 * variable. A step's gradient is the sum of its architectures' shares taken in their drawing order
 * (sumInOrder), so it is the same number wherever each share was computed (see gradient-workers.ts).
 */
export function archGradients(ghn: GhnModel, arch: PooledArchitecture, x: tf.Tensor, y: tf.Tensor, divisor: number): MetaGradients {
  let correct = 0;
  const names = [...ghn.variables.keys()];
  const { value, grads } = tf.variableGrads(() => {
    const params = predictInitializerTensors(ghn, arch.encoding);
    const logits = arch.executor.run(x, { params, training: true }).outputs[0]!;
    correct += correctCount(logits, y);
    return tf.div(crossEntropy(logits, y), divisor) as tf.Scalar;
  }, names.map((n) => ghn.variables.get(n)!));
  const loss = value.dataSync()[0]!;
  value.dispose();
  // tfjs keys gradients by its own variable names; the GHN's names are the same in every process.
  const byName = new Map<string, tf.Tensor>();
  for (const name of names) {
    const g = grads[ghn.variables.get(name)!.name];
    if (g) byName.set(name, g);
  }
  return { loss, correct, grads: byName };
}

/** Σ of the parts in their order (consumed): the same numbers however they were computed. */
export function sumInOrder(parts: readonly MetaGradients[]): MetaGradients {
  let loss = 0, correct = 0;
  const grads = new Map<string, tf.Tensor>();
  for (const part of parts) {
    loss += part.loss;
    correct += part.correct;
    for (const [name, g] of part.grads) {
      const before = grads.get(name);
      grads.set(name, before ? tf.add(before, g) : g);
      if (before) {
        before.dispose();
        g.dispose();
      }
    }
  }
  return { loss, correct, grads };
}
