/**
 * PyTorch's default initialization of every parameter role, and a prediction mixed with it:
 * (1 − t)·predicted + t·default, per tensor.
 *
 * Why: the GHN's decoder writes low-rank tensors (a few factors per slot), so on architectures
 * unlike its training space the predicted layers pass on few directions, and a classifier fitted on
 * their features has little to read. Half of a full-rank default draw restores the directions and
 * keeps half of the prediction; on the real-export benchmark a linear probe on the mixed features beat
 * the prediction alone on 8 of 12 models and lost on the others, so predict chooses t per model
 * by held-out accuracy (src/api/predict.ts). The MIP-style "residual over a principled default".
 */
import type { ComputationGraph } from '../graph/computation-graph.js';
import type { ParamSlot } from '../graph/types.js';
import type { ParamRole } from '../graph/vocabulary.js';
import { createRng, gaussian, type Rng } from '../util/random.js';
import { mixUniformFanInSimd, MULBERRY_STEP } from './mix-kernel.js';

/** How PyTorch's modules initialize a parameter when they are built. */
export type InitRule =
  /** kaiming_uniform_(a=√5) for weights and the matching U(±1/√fan_in) for their op's biases. */
  | { kind: 'uniform-fan-in' }
  | { kind: 'constant'; value: number }
  | { kind: 'normal'; std: number }
  /** trunc_normal_(std) cut at ±2 std, as timm and torchvision do for position tables and tokens. */
  | { kind: 'trunc-normal'; std: number };

export const DEFAULT_INIT: Readonly<Record<ParamRole, InitRule>> = {
  'conv.weight': { kind: 'uniform-fan-in' },
  'conv.bias': { kind: 'uniform-fan-in' },
  'linear.weight': { kind: 'uniform-fan-in' },
  'linear.bias': { kind: 'uniform-fan-in' },
  'norm.scale': { kind: 'constant', value: 1 },
  'norm.shift': { kind: 'constant', value: 0 },
  'embedding': { kind: 'normal', std: 1 },
  'pos_embedding': { kind: 'trunc-normal', std: 0.02 },
  'relative_position_bias': { kind: 'trunc-normal', std: 0.02 },
  'class_token': { kind: 'trunc-normal', std: 0.02 },
  // ConvNeXt's layer scale starts at 1e-6.
  'layer_scale': { kind: 'constant', value: 1e-6 },
  'bias': { kind: 'constant', value: 0 },
  'prelu.slope': { kind: 'constant', value: 0.25 },
};

const WEIGHT_ROLES: ReadonlySet<ParamRole> = new Set(['conv.weight', 'linear.weight']);

/** Inputs per output unit of the op's weight (canonical [out, in/groups, k…]), which scales its bias too. */
function fanIn(graph: ComputationGraph, slot: ParamSlot): number {
  const weight = WEIGHT_ROLES.has(slot.role) ? slot : graph.slotsOf(graph.op(slot.op)).find((s) => WEIGHT_ROLES.has(s.role));
  if (!weight) return Math.max(1, slot.shape[slot.shape.length - 1] ?? 1);
  return Math.max(1, weight.shape.slice(1).reduce((a, b) => a * b, 1));
}

function draw(rule: InitRule, bound: number, rng: Rng): number {
  switch (rule.kind) {
    case 'uniform-fan-in': return (2 * rng() - 1) * bound;
    case 'constant': return rule.value;
    case 'normal': return rule.std * gaussian(rng);
    case 'trunc-normal': {
      for (;;) {
        const x = gaussian(rng);
        if (Math.abs(x) <= 2) return rule.std * x;
      }
    }
  }
}

/** A slot's rule and, for uniform-fan-in, its bound 1/√fan_in: all a draw needs (plain data, so a worker can take it). */
export interface SlotDraw {
  rule: InitRule;
  bound: number;
}

export function slotDraw(graph: ComputationGraph, slot: ParamSlot): SlotDraw {
  const rule = DEFAULT_INIT[slot.role];
  return { rule, bound: rule.kind === 'uniform-fan-in' ? 1 / Math.sqrt(fanIn(graph, slot)) : 0 };
}

/** One draw of PyTorch's default initialization for `slot` (element-wise i.i.d., so any layout). */
export function sampleDefaultInit(graph: ComputationGraph, slot: ParamSlot, rng: Rng): Float32Array {
  const { rule, bound } = slotDraw(graph, slot);
  const values = new Float32Array(slot.elements);
  for (let i = 0; i < values.length; i++) values[i] = draw(rule, bound, rng);
  return values;
}

/** The stream of the k-th mixed slot (1-based, in graph.slots order) for a mix seed. */
export function slotSeed(seed: number, k: number): number {
  return (seed * 0x9e3779b1 + k * 0x85ebca6b) >>> 0;
}

/**
 * New tensors (1 − t)·predicted + t·default for every slot; `predicted` is left as it is. Each slot
 * draws from its own stream (seed and slot order), so a slot's values do not depend on the others.
 */
export function mixWithDefaultInit(
  graph: ComputationGraph, predicted: ReadonlyMap<string, Float32Array>, t: number, seed: number,
): Map<string, Float32Array> {
  const mixed = new Map<string, Float32Array>();
  let k = 0;
  for (const slot of graph.slots.values()) {
    const p = predicted.get(slot.id);
    if (!p) continue;
    mixed.set(slot.id, mixSlot(p, t, slotDraw(graph, slot), slotSeed(seed, ++k)));
  }
  return mixed;
}

/** (1 − t)·p + t·(a draw of `d` from `seed`), as a new array. */
export function mixSlot(p: Float32Array, t: number, d: SlotDraw, seed: number): Float32Array {
  const out = new Float32Array(p.length);
  if (d.rule.kind === 'uniform-fan-in') {
    mixUniformFanIn(p, out, t, d.bound, seed);
  } else {
    const rng = createRng(seed);
    for (let i = 0; i < p.length; i++) out[i] = (1 - t) * p[i]! + t * Math.fround(draw(d.rule, d.bound, rng));
  }
  return out;
}

/**
 * The uniform-fan-in case of the mix (almost every value of a conv net) in one loop: mulberry32
 * inlined (createRng's stream, value for value) and no intermediate draw array. ResNet-50's 25.5 M
 * values took ~0.7 s through a closure call and a rule switch per value; each sample of
 * `predict --samples` pays this once. The draw is rounded to float32 first, as the array did, so
 * the output bytes are those of the general path (test/samples.test.ts checks it).
 */
function mixUniformFanIn(p: Float32Array, out: Float32Array, t: number, bound: number, seed: number): void {
  // Whole groups of four in WebAssembly SIMD (mix-kernel.ts, the same bits), the rest here.
  const done = mixUniformFanInSimd(p, out, t, bound, seed);
  let state = (seed + Math.imul(done, MULBERRY_STEP)) >>> 0;
  const keep = 1 - t;
  for (let i = done; i < p.length; i++) {
    state = (state + MULBERRY_STEP) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    const u = ((x ^ (x >>> 14)) >>> 0) / 4294967296;
    out[i] = keep * p[i]! + t * Math.fround((2 * u - 1) * bound);
  }
}
