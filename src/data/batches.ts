/**
 * Deterministic mini-batches: the order of epoch e under seed s depends only on (s, e), so a run
 * can be resumed or reproduced exactly.
 */
import { GhnError } from '../errors.js';
import { createRng, deriveSeed, shuffleInPlace } from '../util/random.js';
import { imageSize, type Dataset } from './dataset.js';

export interface Batch {
  /** count × C × H × W */
  x: Float32Array;
  /** count labels */
  y: Int32Array;
  count: number;
}

export interface BatchOptions {
  batchSize: number;
  seed: number;
  /** Epoch number, mixed into the seed so every epoch has its own order (default 0). */
  epoch?: number;
  /** Visit examples in a shuffled order (default true). */
  shuffle?: boolean;
  /** Drop the final batch if it is smaller than batchSize (default false). */
  dropLast?: boolean;
}

/** The example order of one epoch. */
export function epochOrder(count: number, seed: number, epoch = 0, shuffle = true): Int32Array {
  const order = new Int32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  return shuffle ? shuffleInPlace(order, createRng(deriveSeed(seed, epoch))) : order;
}

/** Copies the examples `indices` of `dataset` into one batch. */
export function gatherBatch(dataset: Dataset, indices: ArrayLike<number>): Batch {
  const size = imageSize(dataset);
  const x = new Float32Array(indices.length * size);
  const y = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const k = indices[i];
    x.set(dataset.images.subarray(k * size, (k + 1) * size), i * size);
    y[i] = dataset.labels[k];
  }
  return { x, y, count: indices.length };
}

function checkBatchSize(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize <= 0) throw new GhnError('usage', `batch size must be a positive integer, got ${batchSize}`);
}

/** Number of batches one epoch yields. */
export function batchesPerEpoch(count: number, batchSize: number, dropLast = false): number {
  checkBatchSize(batchSize);
  return dropLast ? Math.floor(count / batchSize) : Math.ceil(count / batchSize);
}

/** The batches of one epoch. */
export function* epochBatches(dataset: Dataset, options: BatchOptions): Generator<Batch> {
  const { batchSize, seed, epoch = 0, shuffle = true, dropLast = false } = options;
  const order = epochOrder(dataset.count, seed, epoch, shuffle);
  const batches = batchesPerEpoch(dataset.count, batchSize, dropLast);
  for (let b = 0; b < batches; b++) yield gatherBatch(dataset, order.subarray(b * batchSize, (b + 1) * batchSize));
}

/** Full-size batches forever, reshuffling at every epoch boundary (epochs 0, 1, 2, …). */
export function* endlessBatches(dataset: Dataset, options: Omit<BatchOptions, 'epoch' | 'dropLast'>): Generator<Batch> {
  checkBatchSize(options.batchSize);
  if (dataset.count < options.batchSize) {
    throw new GhnError('usage', `batch size ${options.batchSize} is larger than the dataset (${dataset.count} examples)`);
  }
  for (let epoch = 0; ; epoch++) yield* epochBatches(dataset, { ...options, epoch, dropLast: true });
}
