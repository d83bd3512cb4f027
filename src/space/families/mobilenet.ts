/**
 * Inverted-residual networks in three torchvision layouts:
 * - v2: ReLU6 (Clip), no SE; blocks `features.i.conv.{0,1,2,3}`, residual Add(x, block(x));
 * - v3: Hardswish or ReLU per block, SE gated by HardSigmoid, BN eps 1e-3 / momentum 0.01;
 *   blocks `features.i.block.{0..3}`, residual Add(block(x), x);
 * - efficientnet: SiLU, SE (SiLU + Sigmoid, squeeze = in/4, so odd widths), stages
 *   `features.s.j.block.{0..3}`.
 * Expansion 1×1 (skipped when the ratio is 1), depthwise k×k, optional SE, projection 1×1
 * without activation; then a 1×1 head conv, avgpool, flatten and the classifier.
 */
import type { Rng } from '../../util/random.js';
import { chance, intBetween, makeDivisible, pick, sampleBnForm, weighted } from '../choice.js';
import { defineFamily, maxDownsamples, type TaskShape } from '../family.js';
import {
  activation,
  add,
  convNorm,
  flatten,
  globalAvgPool,
  linear,
  squeezeExcite,
  type Activation,
  type BnOptions,
  type NormMode,
} from '../layers.js';
import type { ModelBuilder, Value } from '../onnx-builder.js';

type Variant = 'v2' | 'v3' | 'efficientnet';

interface BlockConfig {
  readonly out: number;
  readonly expand: number;
  readonly kernel: number;
  readonly stride: number;
  readonly se: boolean;
  readonly act: Activation;
}

export interface MobileNetConfig {
  readonly variant: Variant;
  readonly norm: Exclude<NormMode, 'none'>;
  readonly stemWidth: number;
  readonly stemStride: number;
  /** Stages of blocks; the first block of a stage may downsample. */
  readonly stages: readonly (readonly BlockConfig[])[];
  readonly headWidth: number;
  /** v3 only: hidden width of the two-layer classifier. */
  readonly classifierHidden: number;
}

const BN: Record<Variant, BnOptions> = {
  v2: {},
  v3: { eps: 1e-3, momentum: 0.01 },
  efficientnet: {},
};

const STEM_ACT: Record<Variant, Activation> = { v2: 'relu6', v3: 'hardswish', efficientnet: 'silu' };

function sample(rng: Rng, task: TaskShape): MobileNetConfig {
  const variant = weighted<Variant>(rng, { v2: 1, v3: 1, efficientnet: 1 });
  const stemStride = chance(rng, 0.5) ? 2 : 1;
  const downsamples = maxDownsamples(task) - (stemStride === 2 ? 1 : 0);
  const stageCount = intBetween(rng, 2, Math.min(4, downsamples + 1));
  let width = pick(rng, [8, 12, 16]);
  const stages: BlockConfig[][] = [];
  for (let s = 0; s < stageCount; s++) {
    const blocks: BlockConfig[] = [];
    const count = intBetween(rng, 1, 3);
    const kernel = variant === 'v2' ? 3 : pick(rng, [3, 5]);
    const act: Activation = variant === 'v2' ? 'relu6' : variant === 'efficientnet' ? 'silu' : pick(rng, ['relu', 'hardswish'] as const);
    for (let i = 0; i < count; i++) {
      blocks.push({
        out: width,
        expand: s === 0 && i === 0 ? pick(rng, [1, 2]) : pick(rng, [2, 3, 4, 6]),
        kernel,
        stride: s > 0 && i === 0 ? 2 : 1,
        se: variant === 'efficientnet' || (variant === 'v3' && chance(rng, 0.5)),
        act,
      });
    }
    stages.push(blocks);
    width = makeDivisible(width * pick(rng, [1.5, 2]), 4);
  }
  return {
    variant,
    norm: sampleBnForm(rng),
    stemWidth: pick(rng, [8, 12, 16]),
    stemStride,
    stages,
    headWidth: pick(rng, [64, 96, 128, 192]),
    classifierHidden: pick(rng, [64, 128]),
  };
}

/** Module names of a block's parts, per layout. */
function blockPartNames(variant: Variant, expands: boolean, se: boolean) {
  if (variant === 'v2') {
    const base = expands ? 1 : 0;
    return { container: 'conv', expand: '0', depthwise: String(base), se: '', projectConv: String(base + 1), projectBn: String(base + 2), nested: false };
  }
  const next = (n: number) => String(n);
  let i = 0;
  const expand = expands ? next(i++) : '';
  const depthwise = next(i++);
  const seName = se ? next(i++) : '';
  const project = next(i++);
  return { container: 'block', expand, depthwise, se: seName, projectConv: `${project}.0`, projectBn: `${project}.1`, nested: true };
}

function invertedResidual(b: ModelBuilder, x: Value, block: BlockConfig, config: MobileNetConfig): Value {
  const inWidth = x.shape[1];
  const hidden = config.variant === 'efficientnet' ? inWidth * block.expand : makeDivisible(inWidth * block.expand, 4);
  const expands = block.expand !== 1;
  const names = blockPartNames(config.variant, expands, block.se);
  const bn = BN[config.variant];
  const cna = (v: Value, spec: Parameters<typeof convNorm>[2], act: Activation | null) => {
    const y = convNorm(b, v, spec, config.norm, { conv: '0', bn: '1' }, bn);
    return act === null ? y : b.within('2', () => activation(b, y, act));
  };
  const y = b.within(names.container, () => {
    let h = x;
    if (expands) h = b.within(names.expand, () => cna(h, { out: hidden, kernel: 1, bias: false }, block.act));
    h = b.within(names.depthwise, () =>
      cna(h, { out: hidden, kernel: block.kernel, stride: block.stride, groups: hidden, bias: false }, block.act));
    if (block.se) {
      const squeeze = config.variant === 'efficientnet' ? Math.max(1, Math.floor(inWidth / 4)) : makeDivisible(hidden / 4, 8);
      const gate = config.variant === 'efficientnet' ? 'sigmoid' : 'hardsigmoid';
      const seAct: Activation = config.variant === 'efficientnet' ? 'silu' : 'relu';
      h = b.within(names.se, () => squeezeExcite(b, h, squeeze, seAct, gate));
    }
    const spec = { out: block.out, kernel: 1, bias: false };
    return names.nested
      ? b.within(names.projectConv.split('.')[0], () => convNorm(b, h, spec, config.norm, { conv: '0', bn: '1' }, bn))
      : convNorm(b, h, spec, config.norm, { conv: names.projectConv, bn: names.projectBn }, bn);
  });
  if (block.stride !== 1 || inWidth !== block.out) return y;
  return config.variant === 'v2' ? add(b, x, y) : add(b, y, x);
}

function build(b: ModelBuilder, input: Value, config: MobileNetConfig, task: TaskShape): Value {
  const bn = BN[config.variant];
  const stemAct = STEM_ACT[config.variant];
  let index = 0;
  let x = b.within('features', () => {
    let h = b.within(String(index++), () => {
      const y = convNorm(b, input, { out: config.stemWidth, kernel: 3, stride: config.stemStride, bias: false }, config.norm, { conv: '0', bn: '1' }, bn);
      return b.within('2', () => activation(b, y, stemAct));
    });
    for (const stage of config.stages) {
      if (config.variant === 'efficientnet') {
        h = b.within(String(index++), () => {
          let s = h;
          stage.forEach((block, j) => {
            s = b.within(String(j), () => invertedResidual(b, s, block, config));
          });
          return s;
        });
      } else {
        for (const block of stage) h = b.within(String(index++), () => invertedResidual(b, h, block, config));
      }
    }
    return b.within(String(index++), () => {
      const y = convNorm(b, h, { out: config.headWidth, kernel: 1, bias: false }, config.norm, { conv: '0', bn: '1' }, bn);
      return b.within('2', () => activation(b, y, stemAct));
    });
  });
  // v2 pools with F.adaptive_avg_pool2d in forward (root scope); v3 and EfficientNet own an avgpool module.
  x = config.variant === 'v2' ? globalAvgPool(b, x) : b.within('avgpool', () => globalAvgPool(b, x));
  x = flatten(b, x);
  return b.within('classifier', () => {
    if (config.variant !== 'v3') return b.within('1', () => linear(b, x, task.classes)); // classifier.0 is Dropout
    let y = b.within('0', () => linear(b, x, config.classifierHidden));
    y = b.within('1', () => activation(b, y, 'hardswish'));
    return b.within('3', () => linear(b, y, task.classes));
  });
}

export const mobilenetFamily = defineFamily<MobileNetConfig>({ name: 'mobilenet', sample, build });
