/** An in-memory image-classification dataset, already normalized, in NCHW layout. */
import type { Normalization } from './normalization.js';

export interface Dataset {
  /** Human-readable origin, e.g. "fashion-mnist/train". */
  name: string;
  /** count × C × H × W normalized pixels (NCHW). */
  images: Float32Array;
  /** count class indices in [0, classes). */
  labels: Int32Array;
  count: number;
  /** [C, H, W] of one image. */
  shape: [number, number, number];
  classes: number;
  /** How the raw pixels were mapped to `images`; recorded into predicted models. */
  normalization: Normalization;
}

export type Split = 'train' | 'test';

/** Number of floats in one image. */
export function imageSize(dataset: Pick<Dataset, 'shape'>): number {
  return dataset.shape[0] * dataset.shape[1] * dataset.shape[2];
}

/** Count of each label, length `classes`. */
export function labelHistogram(dataset: Pick<Dataset, 'labels' | 'classes'>): number[] {
  const hist = new Array<number>(dataset.classes).fill(0);
  for (const label of dataset.labels) hist[label]++;
  return hist;
}
