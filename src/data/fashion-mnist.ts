/**
 * Fashion-MNIST (28×28 grayscale, 10 classes) from its four idx files, as the Debian package
 * dataset-fashion-mnist installs them. The committed subset in fixtures/fashion-mnist/ uses the
 * same file names, so the same loader reads both.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GhnError } from '../errors.js';
import type { Dataset, Split } from './dataset.js';
import { readIdxFile, readIdxFilePrefix, type IdxArray } from './idx.js';
import { FASHION_MNIST_NORMALIZATION, normalizePlanar, type Normalization } from './normalization.js';

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
] as const;

const FILE_PREFIX: Record<Split, string> = { train: 'train', test: 't10k' };
const SIDE = 28;

export interface FashionMnistOptions {
  /** Directory holding the idx files (default: the Debian package's). */
  dir?: string;
  split: Split;
  /** Load only the first `limit` examples. */
  limit?: number;
  /** How pixels become inputs (default: the training-set statistics, FASHION_MNIST_NORMALIZATION). */
  normalization?: Normalization;
}

/** The idx file for `kind` in `dir`, gzipped or not; undefined if neither exists. */
function findFile(dir: string, split: Split, kind: 'images-idx3-ubyte' | 'labels-idx1-ubyte'): string | undefined {
  const base = join(dir, `${FILE_PREFIX[split]}-${kind}`);
  return [`${base}.gz`, base].find((p) => existsSync(p));
}

function missingDataset(dir: string): GhnError {
  return new GhnError('missing-data',
    `Fashion-MNIST not found in ${dir}: install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass --data-dir`);
}

/** Raw 28×28 planes → normalized network inputs. */
function normalizedImages(pixels: Uint8Array, count: number, normalization: Normalization): Float32Array {
  const plane = SIDE * SIDE;
  const out = new Float32Array(count * plane);
  normalizePlanar(pixels.subarray(0, count * plane), 1, plane, normalization, out);
  return out;
}

export function loadFashionMnist(options: FashionMnistOptions): Dataset {
  const dir = options.dir ?? FASHION_MNIST_DIR;
  const imagesPath = findFile(dir, options.split, 'images-idx3-ubyte');
  const labelsPath = findFile(dir, options.split, 'labels-idx1-ubyte');
  if (imagesPath === undefined || labelsPath === undefined) throw missingDataset(dir);
  const images = readIdxFile(imagesPath);
  const labels = readIdxFile(labelsPath);
  checkShapes(images, labels, imagesPath, labelsPath);

  const available = images.dims[0];
  const count = options.limit === undefined ? available : Math.max(0, Math.min(options.limit, available));
  const normalization = options.normalization ?? FASHION_MNIST_NORMALIZATION;
  const out = normalizedImages(images.data, count, normalization);
  const labelArray = checkedLabels(labels, count, labelsPath);
  return {
    name: `fashion-mnist/${options.split}`,
    images: out,
    labels: labelArray,
    count,
    shape: [1, SIDE, SIDE],
    classes: FASHION_MNIST_CLASSES.length,
    normalization: { ...normalization, mean: [...normalization.mean], std: [...normalization.std] },
  };
}

/**
 * Only the first `limit` images of a split, normalized as loadFashionMnist does, and their labels:
 * reads just their part of the files, not the whole (`predict` calibrates on 256 and fits the
 * classifier on 1,024).
 */
export function loadFashionMnistImages(options: FashionMnistOptions & { limit: number }): Pick<Dataset, 'name' | 'images' | 'labels' | 'count' | 'shape' | 'classes'> {
  const dir = options.dir ?? FASHION_MNIST_DIR;
  const imagesPath = findFile(dir, options.split, 'images-idx3-ubyte');
  const labelsPath = findFile(dir, options.split, 'labels-idx1-ubyte');
  if (imagesPath === undefined || labelsPath === undefined) throw missingDataset(dir);
  const limit = Math.max(0, options.limit);
  const images = readIdxFilePrefix(imagesPath, limit);
  const labels = readIdxFilePrefix(labelsPath, limit);
  checkShapes(images, labels, imagesPath, labelsPath);
  const count = images.dims[0]!;
  const out = normalizedImages(images.data, count, options.normalization ?? FASHION_MNIST_NORMALIZATION);
  const labelArray = checkedLabels(labels, count, labelsPath);
  return { name: `fashion-mnist/${options.split}`, images: out, labels: labelArray, count, shape: [1, SIDE, SIDE], classes: FASHION_MNIST_CLASSES.length };
}

function checkedLabels(labels: IdxArray, count: number, labelsPath: string): Int32Array {
  const labelArray = Int32Array.from(labels.data.subarray(0, count));
  const bad = labelArray.findIndex((l) => l >= FASHION_MNIST_CLASSES.length);
  if (bad >= 0) throw new GhnError('bad-input', `${labelsPath}: label ${labelArray[bad]} at index ${bad} is not a Fashion-MNIST class (0–9)`);
  return labelArray;
}

function checkImageDims(images: IdxArray, imagesPath: string): void {
  if (images.dims.length !== 3 || images.dims[1] !== SIDE || images.dims[2] !== SIDE) {
    throw new GhnError('bad-input', `${imagesPath}: expected N×28×28 images, got ${images.dims.join('×')}`);
  }
}

function checkShapes(images: IdxArray, labels: IdxArray, imagesPath: string, labelsPath: string): void {
  checkImageDims(images, imagesPath);
  if (labels.dims.length !== 1) throw new GhnError('bad-input', `${labelsPath}: expected a 1-D label array, got ${labels.dims.join('×')}`);
  if (labels.dims[0] !== images.dims[0]) {
    throw new GhnError('bad-input', `${imagesPath} has ${images.dims[0]} images but ${labelsPath} has ${labels.dims[0]} labels`);
  }
}
