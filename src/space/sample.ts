/**
 * The architecture space: `sampleArchitecture(seed)` draws a family by weight, samples its
 * hyper-parameters and emits the network as ONNX in PyTorch 1.13's export patterns.
 *
 * Budget: candidates are redrawn (deterministically, from the seed) until the forward cost is
 * within [MIN_FLOPS, MAX_FLOPS] per image and parameters ≤ MAX_PARAMS, measured for the
 * requested input and class count. The same seed may therefore give a different network for a
 * different input size.
 *
 * Initial values follow PyTorch defaults (see layers.ts); class token and position embedding are
 * trunc-normal(std 0.02); ConvNeXt layer scale is 1e-6 (ConvNeXt's own) or 0.1, sampled, so that
 * both a near-identity residual and a visible one occur.
 */
import { GhnError } from '../errors.js';
import type { ModelProto } from '../onnx/types.js';
import { createRng, deriveSeed } from '../util/random.js';
import { weighted } from './choice.js';
import type { Family, FamilyName, TaskShape } from './family.js';
import { ModelBuilder, type Opset } from './onnx-builder.js';
import { FAMILY_TABLE } from './families/index.js';

export type { FamilyName } from './family.js';

export const MIN_FLOPS = 0.2e6;
export const MAX_FLOPS = 30e6;
export const MAX_PARAMS = 1e6;
const MAX_ATTEMPTS = 200;

/** Each family's sampling weight (relative). */
export const FAMILIES: Readonly<Record<FamilyName, number>> = Object.fromEntries(
  Object.entries(FAMILY_TABLE).map(([name, entry]) => [name, entry.weight]),
) as Record<FamilyName, number>;

export const FAMILY_NAMES = Object.keys(FAMILY_TABLE) as FamilyName[];

export interface SampleOptions {
  family?: FamilyName;
  /** [C, H, W]; default [1, 28, 28]. */
  input?: [number, number, number];
  classes?: number;
  opset?: Opset;
}

export interface Architecture {
  /** `<family>-<seed>`; unique per seed and options. */
  id: string;
  family: FamilyName;
  config: object;
  model: ModelProto;
  /** 2 × multiply-accumulates of Conv/Gemm/MatMul for one image. */
  flops: number;
  /** Trainable parameters carried by the ONNX (BN running statistics excluded). */
  params: number;
}

/** The family a seed draws when none is forced (weighted by FAMILIES). */
export function sampleFamily(seed: number): FamilyName {
  return weighted(createRng(deriveSeed(seed, 0)), FAMILIES);
}

export function sampleArchitecture(seed: number, options: SampleOptions = {}): Architecture {
  const input = options.input ?? [1, 28, 28];
  const classes = options.classes ?? 10;
  const opset = options.opset ?? 13;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new GhnError('usage', `architecture seed must be an integer in [0, 2^32), got ${seed}`);
  }
  const task: TaskShape = { input, classes };
  const familyName = options.family ?? sampleFamily(seed);
  const entry = FAMILY_TABLE[familyName];
  if (entry === undefined) throw new GhnError('usage', `unknown architecture family '${familyName}'`);
  const family = entry.family as Family<object>;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const rng = createRng(deriveSeed(seed, 1 + attempt));
    const config = family.sample(rng, task);
    const b = new ModelBuilder(opset);
    const logits = family.build(b, b.input(input), config, task);
    if (b.flops < MIN_FLOPS || b.flops > MAX_FLOPS || b.paramCount > MAX_PARAMS) continue;
    const model = b.build(logits, createRng(deriveSeed(seed, 0x5eed)));
    const isDefaultTask = input.join('x') === '1x28x28' && classes === 10 && opset === 13;
    const suffix = isDefaultTask ? '' : `-${input.join('x')}-c${classes}-o${opset}`;
    return { id: `${familyName}-${seed}${suffix}`, family: familyName, config, model, flops: b.flops, params: b.paramCount };
  }
  throw new GhnError('unsupported', `no ${familyName} architecture within budget for input ${input.join('x')} after ${MAX_ATTEMPTS} draws`);
}

export type Split = 'train' | 'val' | 'test';

/** Seeds are interleaved by split (index·3 + offset), so the splits are disjoint by construction. */
const SPLIT_OFFSET: Record<Split, number> = { train: 0, val: 1, test: 2 };

/**
 * The seed of the index-th architecture of a split. Different base seeds give different spaces;
 * within one base seed train, val and test seeds never coincide.
 */
export function architectureSeed(split: Split, index: number, baseSeed = 0): number {
  if (!Number.isInteger(index) || index < 0) throw new GhnError('usage', `architecture index must be a non-negative integer, got ${index}`);
  const slot = index * 3 + SPLIT_OFFSET[split];
  if (slot > 0xffffffff) throw new GhnError('usage', `architecture index ${index} is too large`);
  return (slot + Math.imul(baseSeed, 0x3c6ef35f)) >>> 0;
}
