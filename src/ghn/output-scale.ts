/**
 * How a decoder output becomes a parameter value (hyperfan + MIP), one table row per role.
 *
 * - 'standardized' roles (weights): the raw tensor is standardized over the whole tensor (zero mean,
 *   unit std) and multiplied by a fixed std, so the GHN decides the pattern and the scale is He's by
 *   construction, trained or not.
 *   std = √(gain / fan_in) for conv/linear weights: gain 2 (He, the layer is followed by a ReLU-like
 *   op or a norm) except gain 1 for the classifier (no nonlinearity after it) and for depthwise convs
 *   (a k·k fan-in with gain 2 doubles the variance of every block in deep MobileNets).
 *   Embeddings keep PyTorch's N(0, 1); position embeddings and relative position bias tables 0.02
 *   (ViT's and Swin's trunc-normal std).
 * - 'residual' roles (vectors): value = base + scale·raw with raw ≈ N(0, 1) at initialization, so
 *   an untrained GHN gives the PyTorch defaults plus a small perturbation and a trained one can move
 *   them freely.
 */
import type { ParamRole } from '../graph/vocabulary.js';
import type { SlotSpec } from './encoding.js';

export type OutputRule =
  | { readonly kind: 'standardized'; readonly std: (slot: SlotSpec) => number }
  | { readonly kind: 'residual'; readonly base: number; readonly scale: number };

export const HE_GAIN = 2;
export const LINEAR_GAIN = 1;

/** Gain of a conv/linear weight: 1 for the classifier and depthwise convs, 2 otherwise. */
export function weightGain(slot: SlotSpec): number {
  return slot.isClassifier || slot.isDepthwise ? LINEAR_GAIN : HE_GAIN;
}

const heStd = (slot: SlotSpec): number => Math.sqrt(weightGain(slot) / slot.fanIn);

export const OUTPUT_RULES: Readonly<Record<ParamRole, OutputRule>> = {
  'conv.weight': { kind: 'standardized', std: heStd },
  'linear.weight': { kind: 'standardized', std: heStd },
  'embedding': { kind: 'standardized', std: () => 1 },
  'pos_embedding': { kind: 'standardized', std: () => 0.02 },
  // torchvision's Swin and MaxViT draw the table trunc-normal with std 0.02.
  'relative_position_bias': { kind: 'standardized', std: () => 0.02 },
  'conv.bias': { kind: 'residual', base: 0, scale: 0.05 },
  'linear.bias': { kind: 'residual', base: 0, scale: 0.05 },
  'bias': { kind: 'residual', base: 0, scale: 0.05 },
  'norm.scale': { kind: 'residual', base: 1, scale: 0.1 },
  'norm.shift': { kind: 'residual', base: 0, scale: 0.05 },
  'class_token': { kind: 'residual', base: 0, scale: 0.02 },
  'layer_scale': { kind: 'residual', base: 0.1, scale: 0.02 },
  'prelu.slope': { kind: 'residual', base: 0.25, scale: 0.05 },
};

/** The variance an untrained GHN must produce for a standardized role (what the init test checks). */
export function targetVariance(slot: SlotSpec): number | undefined {
  const rule = OUTPUT_RULES[slot.role];
  return rule.kind === 'standardized' ? rule.std(slot) ** 2 : undefined;
}
