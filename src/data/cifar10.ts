/**
 * CIFAR-10, binary version (cifar-10-batches-bin): records of 1 label byte + 3072 pixel bytes
 * (1024 R, 1024 G, 1024 B, each a row-major 32×32 plane, i.e. already CHW).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GhnError } from '../errors.js';
import type { Dataset, Split } from './dataset.js';
import { CIFAR10_NORMALIZATION, normalizePlanar, type Normalization } from './normalization.js';

export const CIFAR10_CLASSES = [
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
] as const;
const SIDE = 32;
const CHANNELS = 3;
const PIXELS = CHANNELS * SIDE * SIDE;
const RECORD = 1 + PIXELS;
const FILES: Record<Split, string[]> = {
  train: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'],
  test: ['test_batch.bin'],
};

export interface Cifar10Options {
  /** The cifar-10-batches-bin directory (or its parent). */
  dir: string;
  split: Split;
  /** Load only the first `limit` examples. */
  limit?: number;
  /** How pixels become inputs (default: the training-set statistics, CIFAR10_NORMALIZATION). */
  normalization?: Normalization;
}

function resolveDir(dir: string): string {
  const nested = join(dir, 'cifar-10-batches-bin');
  return existsSync(nested) ? nested : dir;
}

export function loadCifar10(options: Cifar10Options): Dataset {
  const dir = resolveDir(options.dir);
  const files = FILES[options.split].map((f) => join(dir, f));
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length > 0) {
    throw new GhnError('missing-data',
      `CIFAR-10 (${options.split}) not found in ${options.dir}: missing ${missing.map((m) => m.slice(dir.length + 1)).join(', ')}; ` +
      'download the binary version from https://www.cs.toronto.edu/~kriz/cifar.html and pass its cifar-10-batches-bin directory');
  }
  const limit = options.limit ?? Infinity;
  const normalization = options.normalization ?? CIFAR10_NORMALIZATION;
  const chunks: { bytes: Uint8Array; records: number; path: string }[] = [];
  let count = 0;
  for (const path of files) {
    if (count >= limit) break;
    const bytes = readFileSync(path);
    if (bytes.length === 0 || bytes.length % RECORD !== 0) {
      throw new GhnError('bad-input', `${path}: ${bytes.length} bytes is not a whole number of ${RECORD}-byte CIFAR-10 records`);
    }
    const records = Math.min(bytes.length / RECORD, limit - count);
    chunks.push({ bytes, records, path });
    count += records;
  }

  const images = new Float32Array(count * PIXELS);
  const labels = new Int32Array(count);
  const pixels = new Uint8Array(PIXELS);
  let n = 0;
  for (const { bytes, records, path } of chunks) {
    for (let r = 0; r < records; r++, n++) {
      const offset = r * RECORD;
      const label = bytes[offset];
      if (label >= CIFAR10_CLASSES.length) throw new GhnError('bad-input', `${path}: record ${r} has label ${label} (CIFAR-10 has 10 classes)`);
      labels[n] = label;
      pixels.set(bytes.subarray(offset + 1, offset + RECORD));
      normalizePlanar(pixels, CHANNELS, SIDE * SIDE, normalization, images, n * PIXELS);
    }
  }
  return {
    name: `cifar10/${options.split}`,
    images,
    labels,
    count,
    shape: [CHANNELS, SIDE, SIDE],
    classes: CIFAR10_CLASSES.length,
    normalization: { ...normalization, mean: [...normalization.mean], std: [...normalization.std] },
  };
}
