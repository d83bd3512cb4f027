/**
 * Which images the calibration pass runs on. Real images of the GHN's training set make the
 * estimated BatchNorm statistics those the model will see; when the model's input does not have
 * their shape (an ImageNet-size export), or they are not on the machine, the pass runs on noise.
 */
import fs from 'node:fs';
import { FASHION_MNIST_DIR, loadFashionMnistImages } from '../data/index.js';
import { GhnError } from '../errors.js';
import type { OnnxModel } from '../onnx/types.js';
import type { CalibrationImages } from '../predict/calibrate.js';

/** 'auto': the GHN's training images when present; 'noise': never images; else a directory of Fashion-MNIST-style idx files. */
export type CalibrationDataChoice = 'auto' | 'noise' | (string & {});

/** Images per calibration pass: enough for per-channel statistics within ~1% of the full set's. */
export const CALIBRATION_IMAGES = 256;
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

export function calibrationImages(model: OnnxModel, choice: CalibrationDataChoice): CalibrationImages | undefined {
  if (choice === 'noise') return undefined;
  const explicit = choice !== 'auto';
  const dir = explicit ? choice : FASHION_MNIST_DIR;
  if (explicit && !fs.existsSync(dir)) throw new GhnError('not-found', `calibration data not found: ${dir}`);
  const shape = sampleShape(model);
  const fits = shape !== undefined && shape.length === FASHION_MNIST_SHAPE.length && shape.every((d, k) => d === FASHION_MNIST_SHAPE[k]);
  if (!fits) {
    if (explicit) throw new GhnError('usage', `calibration data in ${dir} are 1×28×28 images; the model takes [${shape?.join(', ') ?? '?'}]`);
    return undefined;
  }
  if (!explicit && !fs.existsSync(dir)) return undefined;
  const data = loadFashionMnistImages({ dir, split: 'train', limit: CALIBRATION_IMAGES });
  return { data: data.images, count: data.count, shape: data.shape, source: data.name };
}
