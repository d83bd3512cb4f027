/**
 * Which images the calibration pass runs on and the classifier is fitted on. Real images of the GHN's training set make the
 * estimated BatchNorm statistics those the model will see; when the model's input does not have
 * their shape (an ImageNet-size export), or they are not on the machine, the pass runs on noise.
 * The GHN's training set is the dataset its header records (Fashion-MNIST for a GHN without a
 * record), normalized as the GHN's predictions are.
 */
import fs from 'node:fs';
import { FASHION_MNIST_RECORD, loadSource, resolveDataset } from '../data/sources.js';
import type { Dataset, DatasetRecord, DatasetSource } from '../data/dataset.js';
import { GhnError } from '../errors.js';
import type { OnnxModel } from '../onnx/types.js';
import type { CalibrationImages } from '../predict/calibrate.js';
import type { LabeledImages } from '../predict/fit-head.js';

/** 'auto': the GHN's training images when present; 'noise': never images; else a dataset folder (IDX files, CIFAR-10 batches or images). */
export type CalibrationDataChoice = 'auto' | 'noise' | (string & {});

/** Images per calibration pass: enough for per-channel statistics within ~1% of the full set's. */
export const CALIBRATION_IMAGES = 256;
/** Labeled images the classifier is fitted on: 1,024 → 4,096 gave +0.4 to +2.6 points (mean +1.5) on 20 benchmark architectures; 4,096 → 8,192 +0.7 mean on 23 (scripts/probe-head-fit.ts --train 8192, λ 0.01), at twice the forward passes. */
export const HEAD_FIT_IMAGES = 8192;

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

/**
 * The calibration images (the first CALIBRATION_IMAGES) and the labeled ones (HEAD_FIT_IMAGES, with
 * labels) for `model`: from the GHN's training dataset (`dataset`, default Fashion-MNIST) or the
 * folder `choice` names, normalized with that dataset's normalization.
 */
export function predictionData(model: OnnxModel, choice: CalibrationDataChoice, options: { labeled?: boolean; dataset?: DatasetRecord } = {}): PredictionData {
  if (choice === 'noise') return {};
  const ghnData = options.dataset ?? FASHION_MNIST_RECORD;
  const explicit = choice !== 'auto';
  if (explicit && !fs.existsSync(choice)) throw new GhnError('not-found', `calibration data not found: ${choice}`);
  const source: DatasetSource = explicit ? resolveDataset(choice) : { kind: ghnData.kind, path: ghnData.path };
  const shape = sampleShape(model);
  const sameShape = (s: readonly number[]) => shape !== undefined && shape.length === s.length && shape.every((d, k) => d === s[k]);
  if (!explicit && (!sameShape(ghnData.shape) || !fs.existsSync(source.path))) return {};
  const limit = options.labeled ? HEAD_FIT_IMAGES : CALIBRATION_IMAGES;
  let data: Dataset;
  try {
    data = loadSource(source, 'train', { limit, normalization: ghnData.normalization });
  } catch (e) {
    // The GHN's own data gone from the machine is the noise case, as for a GHN whose data never were on it.
    if (!explicit && e instanceof GhnError && (e.kind === 'missing-data' || e.kind === 'not-found')) return {};
    throw e;
  }
  if (!sameShape(data.shape)) {
    throw new GhnError('usage', `calibration data in ${choice} are ${data.shape.join('×')} images; the model takes [${shape?.join(', ') ?? '?'}]`);
  }
  if (ghnData.classNames && data.classNames && ghnData.classNames.join('\n') !== data.classNames.join('\n')) {
    throw new GhnError('usage', `calibration data in ${choice} have classes ${data.classNames.join(', ')}; the GHN was trained on ${ghnData.classNames.join(', ')}`);
  }
  const calibrationCount = Math.min(CALIBRATION_IMAGES, data.count);
  const perImage = data.shape.reduce((a, b) => a * b, 1);
  return {
    calibration: { data: data.images.subarray(0, calibrationCount * perImage), count: calibrationCount, shape: data.shape, source: data.name },
    ...(options.labeled
      ? { labeled: { data: data.images, labels: data.labels, count: data.count, shape: data.shape, classes: data.classes, source: data.name } }
      : {}),
  };
}
