/**
 * What every architecture family provides: a hyper-parameter sampler and a builder that emits the
 * network into a ModelBuilder as PyTorch's exporter would.
 */
import type { Rng } from '../util/random.js';
import type { ModelBuilder, Value } from './onnx-builder.js';
import type { NormMode } from './layers.js';

export type FamilyName =
  | 'cnn'
  | 'vgg'
  | 'resnet'
  | 'mobilenet'
  | 'convnext'
  | 'vit'
  | 'densenet'
  | 'inception'
  | 'mlp'
  | 'bnfree';

/** The task the sampled network is built for. */
export interface TaskShape {
  /** [C, H, W] of one input image. */
  readonly input: readonly [number, number, number];
  readonly classes: number;
}

export interface Family<Config extends object> {
  readonly name: FamilyName;
  sample(rng: Rng, task: TaskShape): Config;
  /** Emit the network for `x` (the graph input); returns the [1, classes] logits value. */
  build(b: ModelBuilder, x: Value, config: Config, task: TaskShape): Value;
}

/** Identity helper that keeps the config type tied to the family. */
export function defineFamily<Config extends object>(family: Family<Config>): Family<Config> {
  return family;
}

/** Largest number of stride-2 reductions that leave a spatial map of at least 2×2. */
export function maxDownsamples(task: TaskShape): number {
  return Math.max(0, Math.floor(Math.log2(Math.min(task.input[1], task.input[2]))) - 1);
}

export type { NormMode };
