/**
 * Plain CNN: an nn.Sequential `features` of conv → [BN] → activation stages with pooling or
 * strided convs between them, then either global average pooling or a LeNet-style flatten of
 * the last feature map, and a 1–2 layer `classifier`.
 */
import type { Rng } from '../../util/random.js';
import { chance, intBetween, pick, sampleBnForm, weighted } from '../choice.js';
import { defineFamily, maxDownsamples, type TaskShape } from '../family.js';
import {
  activation,
  avgPool,
  convNorm,
  flatten,
  globalAvgPool,
  linear,
  maxPool,
  type Activation,
  type NormMode,
} from '../layers.js';
import type { ModelBuilder, Value } from '../onnx-builder.js';

type Downsample = 'maxpool' | 'avgpool' | 'stride';

interface ConvLayer {
  readonly out: number;
  readonly kernel: number;
  readonly dilation: number;
  readonly stride: number;
}

export interface CnnConfig {
  readonly norm: NormMode;
  readonly act: Activation;
  readonly downsample: Downsample;
  /** Convs of each stage; a downsampling step separates stages. */
  readonly stages: readonly (readonly ConvLayer[])[];
  readonly head: 'gap' | 'flatten';
  readonly hidden: number | null;
}

function sample(rng: Rng, task: TaskShape): CnnConfig {
  const stageCount = intBetween(rng, 1, Math.min(3, maxDownsamples(task)) + 1);
  const downsample = weighted<Downsample>(rng, { maxpool: 2, avgpool: 1, stride: 1 });
  let width = pick(rng, [8, 12, 16, 24, 32]);
  const stages: ConvLayer[][] = [];
  for (let s = 0; s < stageCount; s++) {
    const convs = intBetween(rng, 1, 2);
    const layers: ConvLayer[] = [];
    for (let i = 0; i < convs; i++) {
      // Kernel 3, 5, or a dilated 3×3 with a 5×5 field.
      const [kernel, dilation] = pick(rng, [[3, 1], [3, 1], [5, 1], [3, 2]] as const);
      const stride = downsample === 'stride' && s > 0 && i === 0 ? 2 : 1;
      layers.push({ out: width, kernel, dilation, stride });
    }
    stages.push(layers);
    width = Math.min(128, width * pick(rng, [1, 2, 2]));
  }
  const norm = chance(rng, 0.1) ? 'none' : sampleBnForm(rng);
  return {
    norm,
    act: weighted<Activation>(rng, { relu: 4, relu6: 1, silu: 1, gelu: 1, hardswish: 1 }),
    downsample,
    stages,
    head: chance(rng, 0.6) ? 'gap' : 'flatten',
    hidden: chance(rng, 0.4) ? pick(rng, [32, 64, 128]) : null,
  };
}

function build(b: ModelBuilder, input: Value, config: CnnConfig, task: TaskShape): Value {
  const bnOrNot = config.norm === 'none' ? 0 : 1;
  let index = 0;
  let x = input;
  b.within('features', () => {
    config.stages.forEach((stage, s) => {
      if (s > 0 && config.downsample !== 'stride') {
        const pooled = x;
        x = b.within(String(index++), () =>
          config.downsample === 'maxpool' ? maxPool(b, pooled, 2, 2) : avgPool(b, pooled, 2, 2),
        );
      }
      for (const layer of stage) {
        const spec = {
          out: layer.out,
          kernel: layer.kernel,
          dilation: layer.dilation,
          stride: layer.stride,
          bias: config.norm === 'none',
        };
        x = convNorm(b, x, spec, config.norm, { conv: String(index), bn: String(index + 1) });
        index += 1 + bnOrNot;
        const pre = x;
        x = b.within(String(index++), () => activation(b, pre, config.act));
      }
    });
  });
  if (config.head === 'gap') {
    const pre = x;
    x = b.within('avgpool', () => globalAvgPool(b, pre));
  }
  x = flatten(b, x);
  return b.within('classifier', () => {
    let y = x;
    let i = 0;
    if (config.hidden !== null) {
      const hidden = config.hidden;
      y = b.within(String(i++), () => linear(b, y, hidden));
      y = b.within(String(i++), () => activation(b, y, config.act));
    }
    return b.within(String(i), () => linear(b, y, task.classes));
  });
}

export const cnnFamily = defineFamily<CnnConfig>({ name: 'cnn', sample, build });
