/**
 * ResNet (torchvision layout): conv1/bn1/relu stem, optional maxpool, `layerN` stages of
 * BasicBlocks or Bottlenecks (optionally grouped, ResNeXt-style) with projection shortcuts
 * (`downsample.0` conv 1×1, `downsample.1` BN) where shape changes, avgpool, flatten, fc.
 * The block's ReLU module is called 2–3 times, so its nodes are `relu`, `relu_1`, `relu_2`.
 */
import type { Rng } from '../../util/random.js';
import { chance, intBetween, pick, sampleBnForm } from '../choice.js';
import { defineFamily, maxDownsamples, type TaskShape } from '../family.js';
import { activation, add, convNorm, flatten, globalAvgPool, linear, maxPool, type NormMode } from '../layers.js';
import type { ModelBuilder, Value } from '../onnx-builder.js';

type BlockKind = 'basic' | 'bottleneck';

export interface ResNetConfig {
  readonly norm: Exclude<NormMode, 'none'>;
  readonly block: BlockKind;
  readonly stemWidth: number;
  readonly stemKernel: 3 | 5 | 7;
  readonly stemStride: 1 | 2;
  readonly stemMaxPool: boolean;
  /** Per stage: bottleneck/basic width and block count. Stages after the first halve the map. */
  readonly stages: readonly { readonly width: number; readonly blocks: number }[];
  /** Groups of the 3×3 conv in bottlenecks (1 = ResNet, >1 = ResNeXt). */
  readonly groups: number;
}

const EXPANSION: Record<BlockKind, number> = { basic: 1, bottleneck: 4 };

function sample(rng: Rng, task: TaskShape): ResNetConfig {
  const block: BlockKind = chance(rng, 0.6) ? 'basic' : 'bottleneck';
  const stemMaxPool = chance(rng, 0.3);
  const stemStride = chance(rng, 0.2) ? 2 : 1;
  const stemDownsamples = (stemMaxPool ? 1 : 0) + (stemStride === 2 ? 1 : 0);
  const stageLimit = Math.max(1, Math.min(4, maxDownsamples(task) + 1 - stemDownsamples));
  const stageCount = intBetween(rng, Math.min(2, stageLimit), stageLimit);
  let width = block === 'basic' ? pick(rng, [8, 12, 16, 24]) : pick(rng, [4, 8, 12]);
  const stages = [];
  for (let s = 0; s < stageCount; s++) {
    stages.push({ width, blocks: intBetween(rng, 1, 2) });
    width *= 2;
  }
  return {
    norm: sampleBnForm(rng),
    block,
    stemWidth: pick(rng, [8, 16, 24]),
    stemKernel: pick(rng, [3, 3, 5] as const),
    stemStride,
    stemMaxPool,
    stages,
    groups: block === 'bottleneck' ? pick(rng, [1, 1, 2, 4]) : 1,
  };
}

function basicBlock(b: ModelBuilder, x: Value, width: number, stride: number, norm: NormMode): Value {
  let y = convNorm(b, x, { out: width, kernel: 3, stride, bias: false }, norm, { conv: 'conv1', bn: 'bn1' });
  y = b.within('relu', () => activation(b, y, 'relu'));
  return convNorm(b, y, { out: width, kernel: 3, bias: false }, norm, { conv: 'conv2', bn: 'bn2' });
}

function bottleneck(b: ModelBuilder, x: Value, width: number, stride: number, norm: NormMode, groups: number): Value {
  let y = convNorm(b, x, { out: width, kernel: 1, bias: false }, norm, { conv: 'conv1', bn: 'bn1' });
  y = b.within('relu', () => activation(b, y, 'relu'));
  y = convNorm(b, y, { out: width, kernel: 3, stride, groups, bias: false }, norm, { conv: 'conv2', bn: 'bn2' });
  y = b.within('relu', () => activation(b, y, 'relu'));
  return convNorm(b, y, { out: width * 4, kernel: 1, bias: false }, norm, { conv: 'conv3', bn: 'bn3' });
}

function residualBlock(b: ModelBuilder, x: Value, config: ResNetConfig, width: number, stride: number): Value {
  const out = width * EXPANSION[config.block];
  const groups = width % config.groups === 0 ? config.groups : 1;
  const body = config.block === 'basic'
    ? basicBlock(b, x, width, stride, config.norm)
    : bottleneck(b, x, width, stride, config.norm, groups);
  const shortcut = stride !== 1 || x.shape[1] !== out
    ? b.within('downsample', () =>
        convNorm(b, x, { out, kernel: 1, stride, padding: 0, bias: false }, config.norm, { conv: '0', bn: '1' }))
    : x;
  const sum = add(b, body, shortcut);
  return b.within('relu', () => activation(b, sum, 'relu'));
}

function build(b: ModelBuilder, input: Value, config: ResNetConfig, task: TaskShape): Value {
  let x = convNorm(b, input, { out: config.stemWidth, kernel: config.stemKernel, stride: config.stemStride, padding: (config.stemKernel - 1) / 2, bias: false }, config.norm, { conv: 'conv1', bn: 'bn1' });
  x = b.within('relu', () => activation(b, x, 'relu'));
  if (config.stemMaxPool) x = b.within('maxpool', () => maxPool(b, x, 3, 2, 1));
  config.stages.forEach((stage, s) => {
    b.within(`layer${s + 1}`, () => {
      for (let i = 0; i < stage.blocks; i++) {
        const stride = s > 0 && i === 0 ? 2 : 1;
        x = b.within(String(i), () => residualBlock(b, x, config, stage.width, stride));
      }
    });
  });
  x = b.within('avgpool', () => globalAvgPool(b, x));
  x = flatten(b, x);
  return b.within('fc', () => linear(b, x, task.classes));
}

export const resnetFamily = defineFamily<ResNetConfig>({ name: 'resnet', sample, build });
