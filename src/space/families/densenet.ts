/**
 * DenseNet (torchvision layout): conv0/norm0/relu0 stem with optional pool0; `denseblockN` of
 * `denselayerJ` (Concat of all earlier features — a one-input Concat for the first layer —
 * norm1, relu1, 1×1 conv1, norm2, relu2, 3×3 conv2); the block ends with a Concat;
 * `transitionN` (norm, relu, 1×1 conv, Pad + AveragePool 2×2); norm5; then F.relu,
 * adaptive_avg_pool2d and flatten at the root, and `classifier`.
 * BN-folding only removes BNs that directly follow a conv (norm0, norm2); the pre-activation
 * BNs after a Concat stay even in the default eval export, as in real DenseNet exports.
 */
import type { Rng } from '../../util/random.js';
import { chance, intBetween, pick, sampleBnForm } from '../choice.js';
import { defineFamily, maxDownsamples, type TaskShape } from '../family.js';
import {
  activation,
  avgPool,
  batchNorm,
  concat,
  conv2d,
  convNorm,
  flatten,
  globalAvgPool,
  linear,
  maxPool,
  type NormMode,
} from '../layers.js';
import type { ModelBuilder, Value } from '../onnx-builder.js';

export interface DenseNetConfig {
  readonly norm: Exclude<NormMode, 'none'>;
  readonly stemWidth: number;
  readonly stemPool: boolean;
  readonly growth: number;
  /** Width of the 1×1 bottleneck as a multiple of the growth rate. */
  readonly bottleneck: number;
  readonly blockLayers: readonly number[];
  /** Channel compression of transitions. */
  readonly compression: number;
}

function sample(rng: Rng, task: TaskShape): DenseNetConfig {
  const stemPool = chance(rng, 0.3);
  const blocks = intBetween(rng, 2, Math.max(2, Math.min(4, maxDownsamples(task) + 1 - (stemPool ? 1 : 0))));
  return {
    norm: sampleBnForm(rng),
    stemWidth: pick(rng, [8, 12, 16, 24]),
    stemPool,
    growth: pick(rng, [4, 6, 8, 12]),
    bottleneck: pick(rng, [2, 4]),
    blockLayers: Array.from({ length: blocks }, () => intBetween(rng, 2, 5)),
    compression: pick(rng, [0.5, 0.5, 1]),
  };
}

/** A BN that follows a Concat: never folded. */
function preActivation(b: ModelBuilder, x: Value, normName: string, reluName: string): Value {
  const y = b.within(normName, () => batchNorm(b, x));
  return b.within(reluName, () => activation(b, y, 'relu'));
}

function denseLayer(b: ModelBuilder, features: readonly Value[], config: DenseNetConfig): Value {
  const joined = concat(b, features, 1);
  let y = preActivation(b, joined, 'norm1', 'relu1');
  y = convNorm(b, y, { out: config.bottleneck * config.growth, kernel: 1, padding: 0, bias: false }, config.norm, { conv: 'conv1', bn: 'norm2' });
  y = b.within('relu2', () => activation(b, y, 'relu'));
  return b.within('conv2', () => conv2d(b, y, { out: config.growth, kernel: 3, bias: false }));
}

function build(b: ModelBuilder, input: Value, config: DenseNetConfig, task: TaskShape): Value {
  let x = b.within('features', () => {
    let h = convNorm(b, input, { out: config.stemWidth, kernel: 3, bias: false }, config.norm, { conv: 'conv0', bn: 'norm0' });
    h = b.within('relu0', () => activation(b, h, 'relu'));
    if (config.stemPool) h = b.within('pool0', () => maxPool(b, h, 3, 2, 1));
    config.blockLayers.forEach((layers, i) => {
      h = b.within(`denseblock${i + 1}`, () => {
        const features = [h];
        for (let j = 0; j < layers; j++) features.push(b.within(`denselayer${j + 1}`, () => denseLayer(b, features, config)));
        return concat(b, features, 1);
      });
      if (i < config.blockLayers.length - 1) {
        h = b.within(`transition${i + 1}`, () => {
          const t = preActivation(b, h, 'norm', 'relu');
          const out = Math.max(4, Math.floor(t.shape[1] * config.compression));
          const c = b.within('conv', () => conv2d(b, t, { out, kernel: 1, padding: 0, bias: false }));
          return b.within('pool', () => avgPool(b, c, 2, 2));
        });
      }
    });
    return b.within('norm5', () => batchNorm(b, h));
  });
  x = activation(b, x, 'relu');
  x = globalAvgPool(b, x);
  x = flatten(b, x);
  return b.within('classifier', () => linear(b, x, task.classes));
}

export const densenetFamily = defineFamily<DenseNetConfig>({ name: 'densenet', sample, build });
