/**
 * Fashion-MNIST test images for the page to run a predicted model on, from the shipped subset
 * (assets/fashion-mnist: the first 256 test images): raw 28×28 uint8 pixels (base64) and labels,
 * with the normalization the GHN was trained with.
 */
import path from 'node:path';
import { FASHION_MNIST_CLASSES } from '../data/fashion-mnist.js';
import { readIdxFile } from '../data/idx.js';
import { FASHION_MNIST_NORMALIZATION, type Normalization } from '../data/normalization.js';

export interface SamplesPayload {
  dataset: 'fashion-mnist/test';
  count: number;
  /** Per image: channels, height, width. */
  shape: [1, 28, 28];
  classes: readonly string[];
  normalization: Normalization;
  labels: number[];
  /** count × 28 × 28 uint8 pixels, row-major, base64. */
  pixels: string;
}

export const MAX_SAMPLES = 256;

export class SampleSet {
  private readonly pixels: Uint8Array;
  private readonly labels: Uint8Array;

  constructor(dir: string) {
    const images = readIdxFile(path.join(dir, 't10k-images-idx3-ubyte.gz'));
    const labels = readIdxFile(path.join(dir, 't10k-labels-idx1-ubyte.gz'));
    const count = Math.min(MAX_SAMPLES, images.dims[0]!, labels.dims[0]!);
    this.pixels = images.data.slice(0, count * 28 * 28);
    this.labels = labels.data.slice(0, count);
  }

  get available(): number {
    return this.labels.length;
  }

  payload(count: number): SamplesPayload {
    const n = Math.max(1, Math.min(count, this.available));
    return {
      dataset: 'fashion-mnist/test',
      count: n,
      shape: [1, 28, 28],
      classes: FASHION_MNIST_CLASSES,
      normalization: { ...FASHION_MNIST_NORMALIZATION, mean: [...FASHION_MNIST_NORMALIZATION.mean], std: [...FASHION_MNIST_NORMALIZATION.std] },
      labels: [...this.labels.subarray(0, n)],
      pixels: Buffer.from(this.pixels.subarray(0, n * 28 * 28)).toString('base64'),
    };
  }
}
