/**
 * Networks without any normalization layer (all convs carry a bias): a plain conv stack or a
 * residual net whose residual branch is optionally scaled by a learnable scalar gain (SkipInit /
 * NF-ResNet style, `skip_gain` of shape [] initialized to 0, so every block's gain is one merged
 * initializer). Layout: `stem`, `stages.i.j` blocks (conv1, act, conv2, optional `shortcut` 1×1
 * conv, Mul by gain, Add, act), avgpool, flatten, `head`.
 */
import type { Rng } from '../../util/random.js';
import { chance, intBetween, pick, weighted } from '../choice.js';
import { defineFamily, maxDownsamples, type TaskShape } from '../family.js';
import { activation, add, conv2d, flatten, globalAvgPool, linear, type Activation } from '../layers.js';
import type { ModelBuilder, Value } from '../onnx-builder.js';

export interface BnFreeConfig {
  readonly residual: boolean;
  readonly skipGain: boolean;
  readonly act: Activation;
  readonly stemWidth: number;
  readonly stages: readonly { readonly width: number; readonly blocks: number; readonly kernel: number }[];
}

function sample(rng: Rng, task: TaskShape): BnFreeConfig {
  const residual = chance(rng, 0.6);
  const stageCount = intBetween(rng, 2, Math.min(4, maxDownsamples(task) + 1));
  let width = pick(rng, [8, 12, 16, 24]);
  const stages = [];
  for (let s = 0; s < stageCount; s++) {
    stages.push({ width, blocks: intBetween(rng, 1, 2), kernel: pick(rng, [3, 3, 5]) });
    width *= 2;
  }
  return {
    residual,
    skipGain: residual && chance(rng, 0.5),
    act: weighted<Activation>(rng, { relu: 3, silu: 1, gelu: 1, relu6: 1 }),
    stemWidth: pick(rng, [8, 16]),
    stages,
  };
}

function block(b: ModelBuilder, x: Value, config: BnFreeConfig, width: number, kernel: number, stride: number): Value {
  let y = b.within('conv1', () => conv2d(b, x, { out: width, kernel, stride, padding: (kernel - 1) / 2, bias: true }));
  y = b.within('act', () => activation(b, y, config.act));
  if (!config.residual) return y;
  y = b.within('conv2', () => conv2d(b, y, { out: width, kernel, bias: true }));
  if (config.skipGain) {
    const gain = b.param('skip_gain', [], { kind: 'constant', value: 0 });
    y = b.op('Mul', [y.name, gain], y.shape);
  }
  const shortcut = stride !== 1 || x.shape[1] !== width
    ? b.within('shortcut', () => conv2d(b, x, { out: width, kernel: 1, stride, padding: 0, bias: true }))
    : x;
  const sum = add(b, y, shortcut);
  return b.within('act', () => activation(b, sum, config.act));
}

function build(b: ModelBuilder, input: Value, config: BnFreeConfig, task: TaskShape): Value {
  let x = b.within('stem', () => {
    const y = b.within('conv', () => conv2d(b, input, { out: config.stemWidth, kernel: 3, bias: true }));
    return b.within('act', () => activation(b, y, config.act));
  });
  b.within('stages', () => {
    config.stages.forEach((stage, s) => {
      b.within(String(s), () => {
        for (let j = 0; j < stage.blocks; j++) {
          const stride = s > 0 && j === 0 ? 2 : 1;
          x = b.within(String(j), () => block(b, x, config, stage.width, stage.kernel, stride));
        }
      });
    });
  });
  x = b.within('avgpool', () => globalAvgPool(b, x));
  x = flatten(b, x);
  return b.within('head', () => linear(b, x, task.classes));
}

export const bnfreeFamily = defineFamily<BnFreeConfig>({ name: 'bnfree', sample, build });
