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
  /** Class names by index, when the dataset has them (an image folder's subfolders). */
  classNames?: string[];
  /** Where it was loaded from, so a GHN trained on it can load it again (sources.ts). */
  source?: DatasetSource;
}

export type DatasetKind = 'fashion-mnist' | 'cifar10' | 'idx' | 'image-folder';

/** A dataset on disk: its kind and its folder (absolute). */
export interface DatasetSource {
  kind: DatasetKind;
  path: string;
}

/**
 * What a GHN records about the dataset it was trained on (the .ghn header's `dataset`): the task
 * its predictions serve (input shape, classes) and the normalization every predicted file carries.
 */
export interface DatasetRecord extends DatasetSource {
  /** e.g. "fashion-mnist", or the folder's name. */
  name: string;
  shape: [number, number, number];
  classes: number;
  classNames?: string[];
  normalization: Normalization;
  /** Images of the training split (before any validation hold-out). */
  trainImages: number;
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
