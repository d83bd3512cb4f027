/**
 * Which images the calibration pass runs on and the classifier is fitted on. Real images of the GHN's training set make the
 * estimated BatchNorm statistics those the model will see; when the model's input does not have
 * their shape (an ImageNet-size export), or they are not on the machine, the pass runs on noise.
 */
import fs from 'node:fs';
import { FASHION_MNIST_DIR, loadFashionMnistImages } from '../data/index.js';
import { GhnError } from '../errors.js';
import type { OnnxModel } from '../onnx/types.js';
import type { CalibrationImages } from '../predict/calibrate.js';
import type { LabeledImages } from '../predict/fit-head.js';

/** 'auto': the GHN's training images when present; 'noise': never images; else a directory of Fashion-MNIST-style idx files. */
export type CalibrationDataChoice = 'auto' | 'noise' | (string & {});

/** Images per calibration pass: enough for per-channel statistics within ~1% of the full set's. */
export const CALIBRATION_IMAGES = 256;
/** Labeled images the classifier is fitted on: 256 → 1,024 gave +1 to +11 points on six benchmark architectures, 2,048 ≤ +3 more. */
export const HEAD_FIT_IMAGES = 1024;
const FASHION_MNIST_SHAPE = [1, 28, 28];

/** The [C, H, W…] of the model's first data input (batch dimension dropped), if declared. */
function sampleShape(model: OnnxModel): number[] | undefined {
  const g = model.proto.graph;
  const initializers = new Set((g?.initializer ?? []).map((t) => t.name));
  const input = (g?.input ?? []).find((v) => !initializers.has(v.name));
  const dims = input?.type?.tensorType?.shape?.dim;
  if (!dims) return undefined;
  return dims.slice(1).map((d) => (d.dimValue === undefined ? 0 : Number(d.dimValue)));
}

export interface PredictionData {
  calibration?: CalibrationImages;
  labeled?: LabeledImages;
}

/** The calibration images (the first CALIBRATION_IMAGES) and the labeled ones (HEAD_FIT_IMAGES, with labels) for `model`. */
export function predictionData(model: OnnxModel, choice: CalibrationDataChoice, options: { labeled?: boolean } = {}): PredictionData {
  if (choice === 'noise') return {};
  const explicit = choice !== 'auto';
  const dir = explicit ? choice : FASHION_MNIST_DIR;
  if (explicit && !fs.existsSync(dir)) throw new GhnError('not-found', `calibration data not found: ${dir}`);
  const shape = sampleShape(model);
  const fits = shape !== undefined && shape.length === FASHION_MNIST_SHAPE.length && shape.every((d, k) => d === FASHION_MNIST_SHAPE[k]);
  if (!fits) {
    if (explicit) throw new GhnError('usage', `calibration data in ${dir} are 1×28×28 images; the model takes [${shape?.join(', ') ?? '?'}]`);
    return {};
  }
  if (!explicit && !fs.existsSync(dir)) return {};
  const data = loadFashionMnistImages({ dir, split: 'train', limit: options.labeled ? HEAD_FIT_IMAGES : CALIBRATION_IMAGES });
  const calibrationCount = Math.min(CALIBRATION_IMAGES, data.count);
  const perImage = data.shape.reduce((a, b) => a * b, 1);
  return {
    calibration: { data: data.images.subarray(0, calibrationCount * perImage), count: calibrationCount, shape: data.shape, source: data.name },
    ...(options.labeled
      ? { labeled: { data: data.images, labels: data.labels, count: data.count, shape: data.shape, classes: data.classes, source: data.name } }
      : {}),
  };
}
