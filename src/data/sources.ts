/**
 * Datasets by what `--data` names: `fashion-mnist` or `cifar10` by name, or a folder of MNIST-style
 * IDX files, of CIFAR-10's binary batches, or of images (one subfolder per class). Folders given
 * by path are told apart by their files. Datasets without published statistics (IDX folders, image
 * folders) are normalized with their training split's per-channel mean and std.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { GhnError } from '../errors.js';
import { loadCifar10 } from './cifar10.js';
import type { Dataset, DatasetKind, DatasetRecord, DatasetSource, Split } from './dataset.js';
import { FASHION_MNIST_DIR, loadFashionMnist, loadFashionMnistImages } from './fashion-mnist.js';
import { readIdxFile, readIdxFilePrefix, type IdxArray } from './idx.js';
import { readImageFolder, type RawImages } from './image-folder.js';
import { computeNormalization, FASHION_MNIST_NORMALIZATION, normalizePlanar, validateNormalization, type Normalization } from './normalization.js';

import { DATA_HELP } from './names.js';

export { DATASET_NAMES, DATA_HELP } from './names.js';

const IDX_PREFIX: Record<Split, string> = { train: 'train', test: 't10k' };

function idxFile(dir: string, split: Split, kind: 'images-idx3-ubyte' | 'labels-idx1-ubyte'): string | undefined {
  const base = path.join(dir, `${IDX_PREFIX[split]}-${kind}`);
  return [`${base}.gz`, base].find((p) => existsSync(p));
}

const isCifarDir = (dir: string) =>
  ['data_batch_1.bin', 'test_batch.bin', 'cifar-10-batches-bin'].some((f) => existsSync(path.join(dir, f)));

/** What `--data` (and `--data-dir`) name: a dataset by name, or a folder whose kind its files tell. */
export function resolveDataset(data: string, dataDir?: string): DatasetSource {
  if (data === 'fashion-mnist') return { kind: 'fashion-mnist', path: path.resolve(dataDir ?? FASHION_MNIST_DIR) };
  if (data === 'cifar10') {
    if (!dataDir) throw new GhnError('usage', 'cifar10 needs --data-dir (a folder with data_batch_*.bin and test_batch.bin)');
    return { kind: 'cifar10', path: path.resolve(dataDir) };
  }
  const dir = path.resolve(data);
  if (!existsSync(dir)) throw new GhnError('not-found', `dataset not found: ${data} (--data takes ${DATA_HELP})`);
  if (!statSync(dir).isDirectory()) throw new GhnError('usage', `--data ${data} is a file; it takes ${DATA_HELP}`);
  if (isCifarDir(dir)) return { kind: 'cifar10', path: dir };
  if (idxFile(dir, 'train', 'images-idx3-ubyte') || idxFile(dir, 'test', 'images-idx3-ubyte')) return { kind: 'idx', path: dir };
  return { kind: 'image-folder', path: dir };
}

export interface LoadSourceOptions {
  /** Only the first `limit` examples (for IDX and image folders, only those are read or decoded). */
  limit?: number;
  /** How pixels become inputs; default the dataset's own (published, or computed on its train split). */
  normalization?: Normalization;
}

function datasetName(source: DatasetSource): string {
  return source.kind === 'fashion-mnist' || source.kind === 'cifar10' ? source.kind : path.basename(source.path);
}

/** Raw IDX images and labels of a split (N×H×W, one channel), checked against each other. */
function readIdx(dir: string, split: Split, limit?: number): RawImages {
  const imagesPath = idxFile(dir, split, 'images-idx3-ubyte');
  const labelsPath = idxFile(dir, split, 'labels-idx1-ubyte');
  if (!imagesPath || !labelsPath) {
    throw new GhnError('missing-data', `${dir}: no ${IDX_PREFIX[split]}-images-idx3-ubyte[.gz] and ${IDX_PREFIX[split]}-labels-idx1-ubyte[.gz] (the ${split} split of an IDX folder)`);
  }
  const read = (p: string): IdxArray => (limit === undefined ? readIdxFile(p) : readIdxFilePrefix(p, limit));
  const images = read(imagesPath), labels = read(labelsPath);
  if (images.dims.length !== 3) throw new GhnError('bad-input', `${imagesPath}: expected N×H×W images, got ${images.dims.join('×')}`);
  if (labels.dims.length !== 1 || labels.dims[0] !== images.dims[0]) {
    throw new GhnError('bad-input', `${imagesPath} has ${images.dims[0]} images but ${labelsPath} has ${labels.dims.join('×')} labels`);
  }
  const [, h, w] = images.dims as [number, number, number];
  return { pixels: images.data, labels: Int32Array.from(labels.data), count: images.dims[0]!, shape: [1, h, w], classNames: [] };
}

/** Class count of an IDX folder: one more than the largest training label. */
function idxClasses(dir: string): number {
  const p = idxFile(dir, 'train', 'labels-idx1-ubyte');
  if (!p) throw new GhnError('missing-data', `${dir}: no train-labels-idx1-ubyte[.gz] (an IDX folder's class count comes from its train labels)`);
  return readIdxFile(p).data.reduce((a, b) => Math.max(a, b), 0) + 1;
}

function readRaw(source: DatasetSource, split: Split, limit?: number): RawImages {
  return source.kind === 'idx' ? readIdx(source.path, split, limit) : readImageFolder(source.path, split, limit);
}

/** A split of `source`, normalized. */
export function loadSource(source: DatasetSource, split: Split, options: LoadSourceOptions = {}): Dataset {
  const { limit } = options;
  if (source.kind === 'fashion-mnist' || source.kind === 'cifar10') {
    const normalization = options.normalization;
    if (source.kind === 'cifar10') return { ...loadCifar10({ dir: source.path, split, limit, normalization }), source };
    if (limit !== undefined) {
      // Reads only the first `limit` images' part of the files (calibration needs 256 of 60,000).
      const n = normalization ?? FASHION_MNIST_NORMALIZATION;
      return { ...loadFashionMnistImages({ dir: source.path, split, limit, normalization: n }), normalization: validateNormalization(n, 'normalization'), source };
    }
    return { ...loadFashionMnist({ dir: source.path, split, normalization }), source };
  }
  const raw = readRaw(source, split, limit);
  const [c, h, w] = raw.shape;
  const classes = source.kind === 'idx' ? idxClasses(source.path) : raw.classNames.length;
  const bad = raw.labels.findIndex((l) => l >= classes);
  if (bad >= 0) throw new GhnError('bad-input', `${source.path} (${split}): label ${raw.labels[bad]} at index ${bad} is not below the ${classes} classes of the train split`);
  let normalization = options.normalization;
  if (normalization === undefined) {
    const train = split === 'train' && limit === undefined ? raw : readRaw(source, 'train');
    if (split !== 'train') checkSameShape(source, train.shape, raw.shape);
    normalization = computeNormalization(train.pixels, train.shape[0], train.shape[1] * train.shape[2]);
  }
  const images = new Float32Array(raw.count * c * h * w);
  normalizePlanar(raw.pixels, c, h * w, normalization, images);
  return {
    name: `${datasetName(source)}/${split}`, images, labels: raw.labels, count: raw.count, shape: raw.shape, classes,
    normalization: validateNormalization(normalization, 'normalization'),
    ...(raw.classNames.length ? { classNames: raw.classNames } : {}),
    source,
  };
}

function checkSameShape(source: DatasetSource, train: number[], test: number[]): void {
  if (train.join() !== test.join()) {
    throw new GhnError('bad-input', `${source.path}: test images are ${test.join('×')} but train images are ${train.join('×')}`);
  }
}

/** The train and test splits of a dataset, the test split normalized as the train split is. */
export function loadTrainTest(source: DatasetSource, options: { testLimit?: number; test?: boolean } = {}): { train: Dataset; test?: Dataset } {
  const train = loadSource(source, 'train');
  if (options.test === false) return { train };
  let test: Dataset | undefined;
  try {
    test = loadSource(source, 'test', { limit: options.testLimit, normalization: train.normalization });
  } catch (e) {
    // A folder of class subfolders is a train split only: there is then nothing to test on.
    if (e instanceof GhnError && e.kind === 'missing-data' && source.kind === 'image-folder') return { train };
    throw e;
  }
  checkSameShape(source, train.shape, test.shape);
  return { train, test };
}

/** What a GHN trained on `train` records about it. */
export function datasetRecord(train: Dataset): DatasetRecord {
  const source = train.source ?? { kind: 'fashion-mnist' as DatasetKind, path: FASHION_MNIST_DIR };
  return {
    name: datasetName(source), kind: source.kind, path: source.path, shape: [...train.shape], classes: train.classes,
    ...(train.classNames ? { classNames: [...train.classNames] } : {}),
    normalization: validateNormalization(train.normalization, 'normalization'), trainImages: train.count,
  };
}

/** What GHNs trained before datasets were recorded (the shipped one) were trained on. */
export const FASHION_MNIST_RECORD: Readonly<DatasetRecord> = Object.freeze({
  name: 'fashion-mnist', kind: 'fashion-mnist', path: FASHION_MNIST_DIR, shape: [1, 28, 28], classes: 10,
  normalization: FASHION_MNIST_NORMALIZATION, trainImages: 60000,
}) as DatasetRecord;

/** "3×32×32 images, 10 classes" */
export function describeTask(shape: readonly (number | string)[], classes: number | undefined): string {
  return `${shape.join('×')} images, ${classes ?? '?'} classes`;
}
