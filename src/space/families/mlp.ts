/**
 * MLP on the flattened image: `flatten` (nn.Flatten), `layers.i` blocks of Linear (Gemm) →
 * [BatchNorm1d | LayerNorm] → activation, optionally residual (Add) when widths match,
 * and a `head` Linear.
 */
import type { Rng } from '../../util/random.js';
import { chance, intBetween, pick, weighted } from '../choice.js';
import { defineFamily, type TaskShape } from '../family.js';
import { activation, add, batchNorm, flatten, layerNorm, linear, type Activation } from '../layers.js';
import type { ModelBuilder, Value } from '../onnx-builder.js';

type MlpNorm = 'none' | 'bn' | 'ln';

export interface MlpConfig {
  readonly widths: readonly number[];
  readonly norm: MlpNorm;
  readonly act: Activation;
  readonly residual: boolean;
}

function sample(rng: Rng): MlpConfig {
  const first = pick(rng, [64, 128, 256, 384, 512]);
  const depth = intBetween(rng, 1, 4);
  const constant = chance(rng, 0.5);
  const widths = Array.from({ length: depth }, (_, i) => (constant ? first : Math.max(32, first >> i)));
  return {
    widths,
    norm: weighted<MlpNorm>(rng, { none: 2, bn: 1, ln: 1 }),
    act: weighted<Activation>(rng, { relu: 3, gelu: 1, silu: 1, hardswish: 1 }),
    residual: constant && chance(rng, 0.6),
  };
}

function mlpBlock(b: ModelBuilder, x: Value, width: number, config: MlpConfig): Value {
  let y = b.within('fc', () => linear(b, x, width));
  if (config.norm === 'bn') y = b.within('norm', () => batchNorm(b, y));
  if (config.norm === 'ln') y = b.within('norm', () => layerNorm(b, y, 1e-5));
  y = b.within('act', () => activation(b, y, config.act));
  return config.residual && x.shape[1] === width ? add(b, x, y) : y;
}

function build(b: ModelBuilder, input: Value, config: MlpConfig, task: TaskShape): Value {
  let x = b.within('flatten', () => flatten(b, input));
  b.within('layers', () => {
    config.widths.forEach((width, i) => {
      x = b.within(String(i), () => mlpBlock(b, x, width, config));
    });
  });
  return b.within('head', () => linear(b, x, task.classes));
}

export const mlpFamily = defineFamily<MlpConfig>({ name: 'mlp', sample, build });
