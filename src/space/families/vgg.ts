/**
 * VGG (torchvision layout): `features` of 3×3 convs with bias, optional BN, ReLU and a 2×2
 * MaxPool closing each stage; `avgpool` (adaptive to 1×1 → GlobalAveragePool), flatten, and a
 * `classifier` of Linear/ReLU/Dropout/Linear/ReLU/Dropout/Linear (dropouts vanish in export).
 */
import type { Rng } from '../../util/random.js';
import { chance, intBetween, pick, sampleBnForm } from '../choice.js';
import { defineFamily, maxDownsamples, type TaskShape } from '../family.js';
import { activation, convNorm, flatten, globalAvgPool, linear, maxPool, type NormMode } from '../layers.js';
import type { ModelBuilder, Value } from '../onnx-builder.js';

export interface VggConfig {
  readonly norm: NormMode;
  /** Conv widths per stage; each stage ends with a MaxPool. */
  readonly stages: readonly (readonly number[])[];
  readonly hidden: number;
}

function sample(rng: Rng, task: TaskShape): VggConfig {
  const stageCount = intBetween(rng, 2, Math.min(4, maxDownsamples(task)));
  let width = pick(rng, [8, 12, 16]);
  const stages: number[][] = [];
  for (let s = 0; s < stageCount; s++) {
    stages.push(Array.from({ length: intBetween(rng, 1, s < 2 ? 1 : 2) + (chance(rng, 0.3) ? 1 : 0) }, () => width));
    width = Math.min(128, width * 2);
  }
  return { norm: chance(rng, 0.5) ? 'none' : sampleBnForm(rng), stages, hidden: pick(rng, [32, 64, 128, 256]) };
}

function build(b: ModelBuilder, input: Value, config: VggConfig, task: TaskShape): Value {
  let x = input;
  b.within('features', () => {
    let index = 0;
    for (const stage of config.stages) {
      for (const width of stage) {
        x = convNorm(b, x, { out: width, kernel: 3, bias: true }, config.norm, { conv: String(index), bn: String(index + 1) });
        index += config.norm === 'none' ? 1 : 2;
        x = b.within(String(index++), () => activation(b, x, 'relu'));
      }
      x = b.within(String(index++), () => maxPool(b, x, 2, 2));
    }
  });
  x = b.within('avgpool', () => globalAvgPool(b, x));
  x = flatten(b, x);
  return b.within('classifier', () => {
    let y = b.within('0', () => linear(b, x, config.hidden));
    y = b.within('1', () => activation(b, y, 'relu'));
    y = b.within('3', () => linear(b, y, config.hidden));
    y = b.within('4', () => activation(b, y, 'relu'));
    return b.within('6', () => linear(b, y, task.classes));
  });
}

export const vggFamily = defineFamily<VggConfig>({ name: 'vgg', sample, build });
