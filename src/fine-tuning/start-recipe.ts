/**
 * The optimizer and learning rate fine-tuning picks for a model when not told (`auto`), from where its
 * parameters came from: LAMB for a `ghn predict` output (its file records `ghn.model`), AdamW
 * for anything else (PyTorch's init, a trained model).
 *
 * Why: a prediction's head is large and its features a small spread on a large constant, so
 * AdamW's first steps (each weight by ~lr) wreck it; LAMB moves each tensor by lr relative to its
 * norm and keeps it. From a random init LAMB learns far slower than AdamW (docs/benchmarks.md,
 * issue 18), so the choice depends on the start.
 */
import type { OnnxModel } from '../onnx/types.js';
import type { OptimizerKind } from './optimizers.js';

/** The metadata key `ghn predict` writes into every predicted file. */
const PREDICTED_KEY = 'ghn.model';

export type StartKind = 'ghn-prediction' | 'other';

export function startKind(model: OnnxModel): StartKind {
  return (model.proto.metadataProps ?? []).some((p) => p.key === PREDICTED_KEY) ? 'ghn-prediction' : 'other';
}

export function optimizerForStart(start: StartKind): OptimizerKind {
  return start === 'ghn-prediction' ? 'lamb' : 'adamw';
}

/**
 * The learning rate for an optimizer when not told: 3e-3 for LAMB from a prediction (with the head
 * refit, 25 steps: +1.5 points over 1e-3 on vgg_bn, resnet18_narrow and lenet5; 1e-2 lost), 1e-3
 * otherwise (AdamW's usual rate).
 */
export function learningRateFor(optimizer: OptimizerKind, start: StartKind): number {
  return optimizer === 'lamb' && start === 'ghn-prediction' ? 3e-3 : 1e-3;
}
