/**
 * ConvNeXt (torchvision layout): `features.0` stem = patchify conv (bias) + LayerNorm2d;
 * stages of CNBlocks `features.i.j`: depthwise k×k conv (bias), Permute (Transpose), LayerNorm
 * (eps 1e-6; decomposed at opset 13), Linear ×expansion (MatMul+Add), GELU (Erf), Linear back,
 * Permute, then Mul(layer_scale [C,1,1], x) and the residual Add; between stages a
 * LayerNorm2d + 2×2 stride-2 conv. Head: avgpool, LayerNorm2d, Flatten, Linear (Gemm).
 */
import type { Rng } from '../../util/random.js';
import { intBetween, pick } from '../choice.js';
import { defineFamily, maxDownsamples, type TaskShape } from '../family.js';
import { activation, add, conv2d, flatten, globalAvgPool, layerNorm, layerScale, linear, linearNd, transpose } from '../layers.js';
import type { ModelBuilder, Value } from '../onnx-builder.js';

const EPS = 1e-6;

export interface ConvNeXtConfig {
  readonly stemPatch: number;
  readonly widths: readonly number[];
  readonly depths: readonly number[];
  readonly kernel: number;
  readonly expansion: number;
  /** Initial layer-scale value: ConvNeXt's 1e-6, or 0.1 for a visible residual branch. */
  readonly layerScale: number;
}

function sample(rng: Rng, task: TaskShape): ConvNeXtConfig {
  const stemPatch = pick(rng, [2, 2, 4]);
  const downsamples = maxDownsamples(task) - Math.log2(stemPatch);
  const stages = intBetween(rng, 1, Math.max(1, Math.min(3, downsamples + 1)));
  const base = pick(rng, [8, 12, 16, 24, 32]);
  return {
    stemPatch,
    widths: Array.from({ length: stages }, (_, i) => base * 2 ** i),
    depths: Array.from({ length: stages }, () => intBetween(rng, 1, 3)),
    kernel: pick(rng, [3, 5, 7, 7]),
    expansion: pick(rng, [2, 3, 4]),
    layerScale: pick(rng, [1e-6, 0.1]),
  };
}

/** torchvision's LayerNorm2d: permute to channels-last, layer norm, permute back. */
function layerNorm2d(b: ModelBuilder, x: Value): Value {
  const last = transpose(b, x, [0, 2, 3, 1]);
  const normed = layerNorm(b, last, EPS);
  return transpose(b, normed, [0, 3, 1, 2]);
}

function cnBlock(b: ModelBuilder, x: Value, config: ConvNeXtConfig): Value {
  const c = x.shape[1];
  const branch = b.within('block', () => {
    let y = b.within('0', () => conv2d(b, x, { out: c, kernel: config.kernel, groups: c, bias: true }));
    y = b.within('1', () => transpose(b, y, [0, 2, 3, 1]));
    y = b.within('2', () => layerNorm(b, y, EPS));
    y = b.within('3', () => linearNd(b, y, c * config.expansion));
    y = b.within('4', () => activation(b, y, 'gelu'));
    y = b.within('5', () => linearNd(b, y, c));
    return b.within('6', () => transpose(b, y, [0, 3, 1, 2]));
  });
  const scaled = layerScale(b, branch, 'layer_scale', config.layerScale);
  return add(b, scaled, x);
}

function build(b: ModelBuilder, input: Value, config: ConvNeXtConfig, task: TaskShape): Value {
  let x = b.within('features', () => {
    let index = 0;
    let h = b.within(String(index++), () => {
      const y = b.within('0', () => conv2d(b, input, { out: config.widths[0], kernel: config.stemPatch, stride: config.stemPatch, padding: 0, bias: true }));
      return b.within('1', () => layerNorm2d(b, y));
    });
    config.widths.forEach((width, s) => {
      if (s > 0) {
        h = b.within(String(index++), () => {
          const y = b.within('0', () => layerNorm2d(b, h));
          return b.within('1', () => conv2d(b, y, { out: width, kernel: 2, stride: 2, padding: 0, bias: true }));
        });
      }
      h = b.within(String(index++), () => {
        let y = h;
        for (let j = 0; j < config.depths[s]; j++) y = b.within(String(j), () => cnBlock(b, y, config));
        return y;
      });
    });
    return h;
  });
  x = b.within('avgpool', () => globalAvgPool(b, x));
  return b.within('classifier', () => {
    let y = b.within('0', () => layerNorm2d(b, x));
    y = b.within('1', () => flatten(b, y));
    return b.within('2', () => linear(b, y, task.classes));
  });
}

export const convnextFamily = defineFamily<ConvNeXtConfig>({ name: 'convnext', sample, build });
