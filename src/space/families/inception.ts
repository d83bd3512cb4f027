/**
 * Inception (torchvision Inception3 layout, small): BasicConv2d units (`conv` without bias,
 * `bn` with eps 1e-3, F.relu in the unit's scope); stem `Conv2d_1a_3x3`, `Conv2d_2a_3x3`,
 * optional `maxpool1`; `Mixed_i` modules that are either parallel blocks — branch1x1,
 * branch5x5_1/_2, branch3x3dbl_1/_2/_3, F.max_pool2d(3,1,1) + branch_pool, joined by Concat —
 * or reduction blocks — strided branch3x3, branch3x3dbl_1/_2/_3 (strided), F.max_pool2d(3,2,1),
 * Concat; then avgpool, flatten, fc.
 */
import type { Rng } from '../../util/random.js';
import { chance, intBetween, pick, sampleBnForm } from '../choice.js';
import { defineFamily, maxDownsamples, type TaskShape } from '../family.js';
import { activation, concat, convNorm, flatten, globalAvgPool, linear, maxPool, type ConvSpec, type NormMode } from '../layers.js';
import type { ModelBuilder, Value } from '../onnx-builder.js';

interface ParallelBlock {
  readonly kind: 'parallel';
  readonly b1: number;
  readonly b5reduce: number;
  readonly b5: number;
  readonly b3reduce: number;
  readonly b3: number;
  readonly pool: number;
}

interface ReductionBlock {
  readonly kind: 'reduction';
  readonly b3: number;
  readonly b3reduce: number;
  readonly b3dbl: number;
}

export interface InceptionConfig {
  readonly norm: Exclude<NormMode, 'none'>;
  readonly stemWidths: readonly [number, number];
  readonly stemPool: boolean;
  readonly blocks: readonly (ParallelBlock | ReductionBlock)[];
}

function sample(rng: Rng, task: TaskShape): InceptionConfig {
  const stemPool = chance(rng, 0.5);
  const reductions = Math.min(2, maxDownsamples(task) - (stemPool ? 1 : 0));
  const width = (): number => pick(rng, [4, 8, 12, 16]);
  const blocks: (ParallelBlock | ReductionBlock)[] = [];
  const stages = intBetween(rng, 1, reductions + 1);
  for (let s = 0; s < stages; s++) {
    if (s > 0) blocks.push({ kind: 'reduction', b3: width() * 2, b3reduce: width(), b3dbl: width() * 2 });
    for (let i = intBetween(rng, 1, 2); i > 0; i--) {
      blocks.push({ kind: 'parallel', b1: width(), b5reduce: width(), b5: width(), b3reduce: width(), b3: width(), pool: width() });
    }
  }
  const stem = pick(rng, [8, 16]);
  return { norm: sampleBnForm(rng), stemWidths: [stem, stem * 2], stemPool, blocks };
}

function basicConv(b: ModelBuilder, x: Value, name: string, spec: Omit<ConvSpec, 'bias'>, norm: NormMode): Value {
  return b.within(name, () => {
    const y = convNorm(b, x, { ...spec, bias: false }, norm, { conv: 'conv', bn: 'bn' }, { eps: 1e-3 });
    return activation(b, y, 'relu');
  });
}

function parallel(b: ModelBuilder, x: Value, c: ParallelBlock, norm: NormMode): Value {
  const b1 = basicConv(b, x, 'branch1x1', { out: c.b1, kernel: 1 }, norm);
  let b5 = basicConv(b, x, 'branch5x5_1', { out: c.b5reduce, kernel: 1 }, norm);
  b5 = basicConv(b, b5, 'branch5x5_2', { out: c.b5, kernel: 5 }, norm);
  let b3 = basicConv(b, x, 'branch3x3dbl_1', { out: c.b3reduce, kernel: 1 }, norm);
  b3 = basicConv(b, b3, 'branch3x3dbl_2', { out: c.b3, kernel: 3 }, norm);
  b3 = basicConv(b, b3, 'branch3x3dbl_3', { out: c.b3, kernel: 3 }, norm);
  const pooled = maxPool(b, x, 3, 1, 1);
  const bp = basicConv(b, pooled, 'branch_pool', { out: c.pool, kernel: 1 }, norm);
  return concat(b, [b1, b5, b3, bp], 1);
}

function reduction(b: ModelBuilder, x: Value, c: ReductionBlock, norm: NormMode): Value {
  const b3 = basicConv(b, x, 'branch3x3', { out: c.b3, kernel: 3, stride: 2, padding: 1 }, norm);
  let dbl = basicConv(b, x, 'branch3x3dbl_1', { out: c.b3reduce, kernel: 1 }, norm);
  dbl = basicConv(b, dbl, 'branch3x3dbl_2', { out: c.b3dbl, kernel: 3 }, norm);
  dbl = basicConv(b, dbl, 'branch3x3dbl_3', { out: c.b3dbl, kernel: 3, stride: 2, padding: 1 }, norm);
  const pooled = maxPool(b, x, 3, 2, 1);
  return concat(b, [b3, dbl, pooled], 1);
}

function build(b: ModelBuilder, input: Value, config: InceptionConfig, task: TaskShape): Value {
  let x = basicConv(b, input, 'Conv2d_1a_3x3', { out: config.stemWidths[0], kernel: 3 }, config.norm);
  x = basicConv(b, x, 'Conv2d_2a_3x3', { out: config.stemWidths[1], kernel: 3 }, config.norm);
  if (config.stemPool) x = b.within('maxpool1', () => maxPool(b, x, 3, 2, 1));
  config.blocks.forEach((block, i) => {
    const name = `Mixed_${i + 5}${String.fromCharCode(97 + (i % 3))}`;
    x = b.within(name, () => (block.kind === 'parallel' ? parallel(b, x, block, config.norm) : reduction(b, x, block, config.norm)));
  });
  x = b.within('avgpool', () => globalAvgPool(b, x));
  x = flatten(b, x);
  return b.within('fc', () => linear(b, x, task.classes));
}

export const inceptionFamily = defineFamily<InceptionConfig>({ name: 'inception', sample, build });
