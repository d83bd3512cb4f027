import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { GhnError } from '../src/errors.js';
import {
  CIFAR10_NORMALIZATION, FASHION_MNIST_DIR, FASHION_MNIST_NORMALIZATION, NORMALIZATION_METADATA_KEY,
  batchesPerEpoch, encodeIdx, endlessBatches, epochBatches, labelHistogram, loadCifar10, loadFashionMnist,
  parseIdx, readNormalization, withNormalization, type Dataset,
} from '../src/data/index.js';
import { createRng } from '../src/util/random.js';
import type { ModelProto } from '../src/onnx/types.js';

const SUBSET_DIR = fileURLToPath(new URL('../fixtures/fashion-mnist/', import.meta.url));

function isGhnError(kind: GhnError['kind'], pattern?: RegExp) {
  return (e: unknown) => e instanceof GhnError && e.kind === kind && (pattern === undefined || pattern.test(e.message));
}

function meanStd(a: Float32Array): { mean: number; std: number } {
  let s = 0, s2 = 0;
  for (const v of a) { s += v; s2 += v * v; }
  const mean = s / a.length;
  return { mean, std: Math.sqrt(s2 / a.length - mean * mean) };
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'ghn-data-'));
}

test('committed Fashion-MNIST subset loads with the Debian loader', () => {
  const train = loadFashionMnist({ dir: SUBSET_DIR, split: 'train' });
  const testSet = loadFashionMnist({ dir: SUBSET_DIR, split: 'test' });
  assert.equal(train.count, 4000);
  assert.equal(testSet.count, 1000);
  assert.deepEqual(train.shape, [1, 28, 28]);
  assert.equal(train.images.length, 4000 * 784);
  assert.equal(train.classes, 10);
  // Every class is present in a 4000-image prefix, roughly balanced (400 each on average).
  for (const n of labelHistogram(train)) assert.ok(n > 300 && n < 500, `class count ${n}`);
  // Pixel 0 of a uint8 image maps to −mean/std exactly.
  assert.ok(Math.abs(Math.min(...train.images.subarray(0, 784)) - -0.286 / 0.353) < 1e-6);
  const { mean, std } = meanStd(train.images);
  assert.ok(Math.abs(mean) < 0.05 && Math.abs(std - 1) < 0.05, `mean ${mean} std ${std}`);
  assert.equal(loadFashionMnist({ dir: SUBSET_DIR, split: 'train', limit: 10 }).count, 10);
});

test('subset is a prefix of the real Debian files, which have 60000/10000 examples', { skip: !existsSync(FASHION_MNIST_DIR) }, () => {
  const train = loadFashionMnist({ split: 'train' });
  const testSet = loadFashionMnist({ split: 'test' });
  assert.equal(train.count, 60000);
  assert.equal(testSet.count, 10000);
  assert.deepEqual(labelHistogram(train), new Array(10).fill(6000));
  assert.deepEqual(labelHistogram(testSet), new Array(10).fill(1000));
  const { mean, std } = meanStd(train.images);
  assert.ok(Math.abs(mean) < 0.005 && Math.abs(std - 1) < 0.005, `normalized train mean ${mean} std ${std}`);
  const subset = loadFashionMnist({ dir: SUBSET_DIR, split: 'test' });
  assert.deepEqual(subset.labels, testSet.labels.subarray(0, 1000));
  assert.deepEqual(subset.images, testSet.images.subarray(0, 1000 * 784));
});

test('missing dataset directory is a missing-data error naming the Debian package', () => {
  assert.throws(() => loadFashionMnist({ dir: '/nonexistent/fmnist', split: 'train' }),
    isGhnError('missing-data', /^Fashion-MNIST not found in \/nonexistent\/fmnist: install the Debian package dataset-fashion-mnist \(apt-get install dataset-fashion-mnist\) or pass --data-dir$/));
});

test('idx parser: round trip, gzip, and malformed files', () => {
  const data = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i);
  const plain = encodeIdx({ dims: [2, 3, 4], data });
  for (const bytes of [plain, gzipSync(plain)]) {
    const parsed = parseIdx(bytes);
    assert.deepEqual(parsed.dims, [2, 3, 4]);
    assert.deepEqual(parsed.data, data);
  }
  assert.throws(() => parseIdx(plain.subarray(0, plain.length - 1), 'cut.idx'), isGhnError('bad-input', /cut\.idx: .*24 bytes.*23/));
  assert.throws(() => parseIdx(Uint8Array.of(1, 2, 3, 4, 5)), isGhnError('bad-input', /magic/));
  assert.throws(() => parseIdx(Uint8Array.of(0, 0, 8, 3, 0, 0)), isGhnError('bad-input', /truncated/));
  assert.throws(() => parseIdx(Uint8Array.of(0, 0, 0x42, 1, 0, 0, 0, 0)), isGhnError('bad-input', /element type/));
  assert.throws(() => parseIdx(Uint8Array.of(0, 0, 0x0d, 1, 0, 0, 0, 0)), isGhnError('unsupported', /float32/));
  assert.throws(() => parseIdx(gzipSync(plain).subarray(0, 20)), isGhnError('bad-input', /gzip/));

  // A mismatched label file in an otherwise valid directory is reported, not silently truncated.
  const dir = tempDir();
  try {
    writeFileSync(join(dir, 't10k-images-idx3-ubyte'), encodeIdx({ dims: [3, 28, 28], data: new Uint8Array(3 * 784) }));
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), encodeIdx({ dims: [2], data: new Uint8Array(2) }));
    assert.throws(() => loadFashionMnist({ dir, split: 'test' }), isGhnError('bad-input', /3 images but .* 2 labels/));
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), encodeIdx({ dims: [3], data: Uint8Array.of(1, 2, 10) }));
    assert.throws(() => loadFashionMnist({ dir, split: 'test' }), isGhnError('bad-input', /label 10/));
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('CIFAR-10 binary records load as normalized CHW', () => {
  const dir = tempDir();
  try {
    const records = 5;
    const bytes = new Uint8Array(records * 3073);
    for (let r = 0; r < records; r++) {
      bytes[r * 3073] = (r * 3) % 10;
      // Channel c of record r is the constant 50·c + r.
      for (let c = 0; c < 3; c++) bytes.fill(50 * c + r, r * 3073 + 1 + c * 1024, r * 3073 + 1 + (c + 1) * 1024);
    }
    writeFileSync(join(dir, 'test_batch.bin'), bytes);
    const ds = loadCifar10({ dir, split: 'test' });
    assert.equal(ds.count, 5);
    assert.deepEqual(ds.shape, [3, 32, 32]);
    assert.deepEqual(Array.from(ds.labels), [0, 3, 6, 9, 2]);
    const { mean, std } = CIFAR10_NORMALIZATION;
    for (let r = 0; r < records; r++) {
      for (let c = 0; c < 3; c++) {
        const expected = ((50 * c + r) / 255 - mean[c]) / std[c];
        for (const at of [0, 517, 1023]) assert.ok(Math.abs(ds.images[r * 3072 + c * 1024 + at] - expected) < 1e-6);
      }
    }
    assert.equal(loadCifar10({ dir, split: 'test', limit: 2 }).count, 2);
    assert.throws(() => loadCifar10({ dir, split: 'train' }), isGhnError('missing-data', /data_batch_1\.bin/));
    writeFileSync(join(dir, 'test_batch.bin'), bytes.subarray(0, 3073 * 2 + 100));
    assert.throws(() => loadCifar10({ dir, split: 'test' }), isGhnError('bad-input', /whole number/));
  } finally {
    rmSync(dir, { recursive: true });
  }
});

function tinyDataset(count: number): Dataset {
  const images = new Float32Array(count * 4);
  for (let i = 0; i < count; i++) images.fill(i, i * 4, (i + 1) * 4);
  return {
    name: 'tiny', images, labels: Int32Array.from({ length: count }, (_, i) => i % 3), count,
    shape: [1, 2, 2], classes: 3, normalization: FASHION_MNIST_NORMALIZATION,
  };
}

test('batches are deterministic per (seed, epoch), cover the data once, and keep x/y aligned', () => {
  const ds = tinyDataset(23);
  const run = (seed: number, epoch: number) => [...epochBatches(ds, { batchSize: 5, seed, epoch })];
  const a = run(7, 0);
  assert.deepEqual(a, run(7, 0));
  assert.notDeepEqual(a.map((b) => Array.from(b.y)), run(8, 0).map((b) => Array.from(b.y)));
  assert.notDeepEqual(a.map((b) => Array.from(b.x)), run(7, 1).map((b) => Array.from(b.x)));
  assert.deepEqual(a.map((b) => b.count), [5, 5, 5, 5, 3]);
  assert.equal(batchesPerEpoch(23, 5), 5);
  assert.equal(batchesPerEpoch(23, 5, true), 4);
  const seen: number[] = [];
  for (const b of a) {
    for (let i = 0; i < b.count; i++) {
      const index = b.x[i * 4];
      assert.ok(b.x.subarray(i * 4, i * 4 + 4).every((v) => v === index));
      assert.equal(b.y[i], index % 3);
      seen.push(index);
    }
  }
  assert.deepEqual([...seen].sort((p, q) => p - q), Array.from({ length: 23 }, (_, i) => i));
  assert.notDeepEqual(seen, Array.from({ length: 23 }, (_, i) => i), 'shuffled');
  const ordered = [...epochBatches(ds, { batchSize: 10, seed: 1, shuffle: false, dropLast: true })];
  assert.deepEqual(ordered.map((b) => b.x[0]), [0, 10]);

  const endless = endlessBatches(ds, { batchSize: 10, seed: 3 });
  const first = Array.from({ length: 5 }, () => endless.next().value as { count: number });
  assert.ok(first.every((b) => b.count === 10));
  assert.throws(() => endlessBatches(ds, { batchSize: 30, seed: 3 }).next(), isGhnError('usage'));
  assert.throws(() => batchesPerEpoch(10, 0), isGhnError('usage'));
});

test('random helpers are seeded and well distributed', () => {
  const a = createRng(42), b = createRng(42);
  const xs = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(xs, Array.from({ length: 1000 }, () => b()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.03, `uniform mean ${mean}`);
});

test('normalization round-trips through ONNX metadata_props', () => {
  const model: ModelProto = { irVersion: 8, metadataProps: [{ key: 'other', value: 'x' }, { key: NORMALIZATION_METADATA_KEY, value: '{}' }] };
  assert.throws(() => readNormalization(model), isGhnError('bad-input'));
  const recorded = withNormalization(model, FASHION_MNIST_NORMALIZATION);
  assert.equal(recorded.metadataProps?.length, 2);
  assert.deepEqual(recorded.metadataProps?.[0], { key: 'other', value: 'x' });
  assert.deepEqual(readNormalization(recorded), { mean: [0.286], std: [0.353], scale: 1 / 255 });
  assert.equal(model.metadataProps?.[1].value, '{}', 'input model untouched');
  assert.equal(readNormalization({ irVersion: 8 }), undefined);
  assert.throws(() => readNormalization({ metadataProps: [{ key: NORMALIZATION_METADATA_KEY, value: 'not json' }] }), isGhnError('bad-input', /JSON/));
  assert.throws(() => withNormalization(model, { mean: [0, 0], std: [1], scale: 1 }), isGhnError('bad-input'));
});
