/**
 * Datasets `--data` names by path: image folders (pngjs / jpeg-js), IDX folders, and how they are
 * told apart; the normalization computed on the train split; the bad inputs (no classes, mixed
 * sizes or channels, a file that is not an image). Every folder is written here, in a temp dir.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { GhnError } from '../src/errors.js';
import { computeNormalization, encodeIdx, loadSource, loadTrainTest, readImageFolder, resolveDataset } from '../src/data/index.js';
import { loadDataset } from '../src/api/datasets.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-imgfolder-'));

/** A PNG of `channels` (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) whose every byte is f(x, y, c). */
function png(width: number, height: number, channels: 1 | 2 | 3 | 4, f: (x: number, y: number, c: number) => number): Buffer {
  const colorType = ({ 1: 0, 2: 4, 3: 2, 4: 6 } as const)[channels];
  const img = new PNG({ width, height });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      // pngjs writes from RGBA; gray is taken from R, its alpha from A.
      const v = [0, 1, 2, 3].map((c) => (channels <= 2 ? (c < 3 ? f(x, y, 0) : channels === 2 ? f(x, y, 1) : 255) : c < channels ? f(x, y, c) : 255));
      img.data.set(v, i);
    }
  }
  return PNG.sync.write(img, { colorType, inputColorType: 6, inputHasAlpha: true } as never);
}

function writeFolder(root: string, files: Record<string, Buffer | string>): string {
  for (const [rel, bytes] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), bytes);
  }
  return root;
}

/** The GhnError a call throws (fails if it throws something else or nothing). */
function thrown(fn: () => unknown): GhnError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof GhnError, `expected a GhnError, got ${(e as Error).stack}`);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    return e;
  }
  assert.fail('expected an error');
}

describe('image folders', () => {
  it('reads PNGs class by class (sorted names are the indices), planar, with their real channel count', () => {
    const dir = writeFolder(path.join(tmp, 'rgba'), {
      'train/b-cat/0.png': png(5, 4, 4, (x, y, c) => 10 * c + x + 5 * y),
      'train/a-dog/0.png': png(5, 4, 4, () => 7),
      'train/a-dog/1.png': png(5, 4, 4, (x, y, c) => (c === 3 ? 128 : 200)),
      'train/a-dog/notes.txt': 'ignored: not an image extension',
      'test/b-cat/0.png': png(5, 4, 4, () => 1),
    });
    const raw = readImageFolder(dir, 'train');
    assert.deepEqual(raw.classNames, ['a-dog', 'b-cat']);
    assert.deepEqual(raw.shape, [4, 4, 5]);
    assert.equal(raw.count, 3);
    const cat = [...raw.labels].indexOf(1);
    const img = raw.pixels.subarray(cat * 80, (cat + 1) * 80);
    // channel c, row y, column x of the planar image is the byte written there
    for (const [x, y, c] of [[0, 0, 0], [4, 3, 2], [2, 1, 3]] as const) assert.equal(img[c * 20 + y * 5 + x], 10 * c + x + 5 * y);
    const test = loadSource(resolveDataset(dir), 'test');
    assert.deepEqual([...test.labels], [1]);
  });

  it('gray PNGs are 1 channel, gray+alpha 2, JPEGs 3; any size; the normalization is the train split\'s per channel', () => {
    const gray = writeFolder(path.join(tmp, 'gray'), Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`c${i % 3}/${i}.png`, png(7, 3, 1, (x) => 40 * (i % 3) + x)])));
    const data = loadSource(resolveDataset(gray), 'train');
    assert.deepEqual(data.shape, [1, 3, 7]);
    assert.equal(data.classes, 3);
    assert.deepEqual(data.classNames, ['c0', 'c1', 'c2']);
    const raw = readImageFolder(gray, 'train');
    const expected = computeNormalization(raw.pixels, 1, 21);
    let sum = 0;
    for (const p of raw.pixels) sum += p / 255;
    assert.ok(Math.abs(expected.mean[0]! - sum / raw.pixels.length) < 1e-12);
    assert.deepEqual(data.normalization, expected);
    // normalized with it: mean 0, std 1 over the train split
    const m = data.images.reduce((a, b) => a + b, 0) / data.images.length;
    const v = data.images.reduce((a, b) => a + (b - m) ** 2, 0) / data.images.length;
    assert.ok(Math.abs(m) < 1e-5 && Math.abs(v - 1) < 1e-4, `${m} ${v}`);

    const ga = writeFolder(path.join(tmp, 'gray-alpha'), { 'k/0.png': png(4, 4, 2, (x, y, c) => (c ? 99 : x)) });
    const two = readImageFolder(ga, 'train');
    assert.deepEqual(two.shape, [2, 4, 4]);
    assert.equal(two.pixels[16 + 5], 99);

    const rgb = new Uint8Array(8 * 6 * 4).fill(180);
    const jpg = writeFolder(path.join(tmp, 'jpeg'), { 'x/0.jpg': Buffer.from(jpeg.encode({ width: 8, height: 6, data: rgb }, 95).data), 'y/1.JPEG': Buffer.from(jpeg.encode({ width: 8, height: 6, data: rgb }, 95).data) });
    const j = readImageFolder(jpg, 'train');
    assert.deepEqual(j.shape, [3, 6, 8]);
    assert.ok(j.pixels.every((p) => Math.abs(p - 180) <= 3));
  });

  it('bad folders are one-line errors: no classes, an empty class, mixed sizes, mixed channels, not an image, a test class the train split lacks', () => {
    const none = writeFolder(path.join(tmp, 'no-classes'), { 'loose.png': png(4, 4, 1, () => 0) });
    assert.match(thrown(() => loadSource(resolveDataset(none), 'train')).message, /no class folders/);
    const empty = writeFolder(path.join(tmp, 'empty-class'), { 'a/0.png': png(4, 4, 1, () => 0), 'b/readme.txt': 'x' });
    assert.match(thrown(() => loadSource(resolveDataset(empty), 'train')).message, /no PNG or JPEG images in class folder b/);
    const sizes = writeFolder(path.join(tmp, 'sizes'), { 'a/0.png': png(4, 4, 1, () => 0), 'b/0.png': png(5, 4, 1, () => 0) });
    assert.match(thrown(() => loadSource(resolveDataset(sizes), 'train')).message, /is 1×4×(5|4) but .* is 1×4×(4|5): every image of a folder must have one size and channel count/);
    const channels = writeFolder(path.join(tmp, 'channels'), { 'a/0.png': png(4, 4, 1, () => 0), 'b/0.png': png(4, 4, 3, () => 0) });
    assert.match(thrown(() => loadSource(resolveDataset(channels), 'train')).message, /one size and channel count/);
    const garbage = writeFolder(path.join(tmp, 'garbage'), { 'a/0.png': png(4, 4, 1, () => 0), 'b/0.png': 'not a png at all', 'c/0.jpg': png(4, 4, 1, () => 0) });
    const e = thrown(() => loadSource(resolveDataset(garbage), 'train'));
    assert.equal(e.kind, 'bad-input');
    assert.match(e.message, /(b\/0\.png: not a readable PNG|c\/0\.jpg: not a readable JPEG)/);
    const extra = writeFolder(path.join(tmp, 'extra-class'), { 'train/a/0.png': png(4, 4, 1, () => 0), 'test/z/0.png': png(4, 4, 1, () => 0) });
    assert.match(thrown(() => loadSource(resolveDataset(extra), 'test')).message, /class folder z is not a class of the train split/);
    const mismatch = writeFolder(path.join(tmp, 'test-size'), { 'train/a/0.png': png(4, 4, 1, () => 0), 'test/a/0.png': png(6, 6, 1, () => 0) });
    assert.match(thrown(() => loadTrainTest(resolveDataset(mismatch))).message, /test images are 1×6×6 but train images are 1×4×4/);
    assert.equal(thrown(() => resolveDataset(path.join(tmp, 'nowhere'))).kind, 'not-found');
    assert.equal(thrown(() => resolveDataset(path.join(garbage, 'b', '0.png'))).kind, 'usage');
  });

  it('a folder of class subfolders is a train split only; the order mixes the classes, so a prefix holds several', () => {
    const files: Record<string, Buffer> = {};
    for (let c = 0; c < 4; c++) for (let i = 0; i < 25; i++) files[`class${c}/${i}.png`] = png(3, 3, 1, () => c);
    const dir = writeFolder(path.join(tmp, 'train-only'), files);
    const { train, test } = loadTrainTest(resolveDataset(dir));
    assert.equal(test, undefined);
    assert.equal(train.count, 100);
    const prefix = loadSource(resolveDataset(dir), 'train', { limit: 12, normalization: train.normalization });
    assert.ok(new Set(prefix.labels).size >= 3, `labels of the first 12: ${[...prefix.labels]}`);
    // each image's pixels say its class: the labels follow the files through the shuffle
    for (let n = 0; n < prefix.count; n++) {
      const pixel = (prefix.images[n * 9]! * train.normalization.std[0]! + train.normalization.mean[0]!) * 255;
      assert.ok(Math.abs(pixel - prefix.labels[n]!) < 1e-3, `image ${n}: pixel ${pixel}, label ${prefix.labels[n]}`);
    }
    assert.equal(thrown(() => loadSource(resolveDataset(dir), 'test')).kind, 'missing-data');
  });
});

describe('IDX and CIFAR-10 folders by path', () => {
  it('an MNIST-style IDX folder of any image size: classes from its train labels, normalization from its train images', () => {
    const dir = path.join(tmp, 'idx');
    fs.mkdirSync(dir);
    const pixels = Uint8Array.from({ length: 6 * 5 * 4 }, (_, i) => (i * 37) % 256);
    fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), encodeIdx({ dims: [6, 5, 4], data: pixels }));
    fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), encodeIdx({ dims: [6], data: Uint8Array.from([0, 1, 2, 3, 4, 0]) }));
    fs.writeFileSync(path.join(dir, 't10k-images-idx3-ubyte'), encodeIdx({ dims: [2, 5, 4], data: pixels.subarray(0, 40) }));
    fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), encodeIdx({ dims: [2], data: Uint8Array.from([4, 1]) }));
    assert.equal(resolveDataset(dir).kind, 'idx');
    const { train, test } = loadTrainTest(resolveDataset(dir));
    assert.deepEqual(train.shape, [1, 5, 4]);
    assert.equal(train.classes, 5);
    assert.deepEqual(train.normalization, computeNormalization(pixels, 1, 20));
    assert.deepEqual(test!.normalization, train.normalization);
    assert.deepEqual([...test!.labels], [4, 1]);
    // the committed Fashion-MNIST subset is such a folder too
    const fm = loadDataset('fixtures/fashion-mnist', 'test', { limit: 10 });
    assert.deepEqual([fm.shape, fm.classes, fm.count], [[1, 28, 28], 10, 10]);
  });

  it('a CIFAR-10 binary folder is recognized by its files', () => {
    const dir = path.join(tmp, 'cifar');
    fs.mkdirSync(dir);
    const record = new Uint8Array(3073);
    record[0] = 7;
    for (const f of ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin']) fs.writeFileSync(path.join(dir, f), record);
    assert.equal(resolveDataset(dir).kind, 'cifar10');
    const d = loadDataset(dir, 'train');
    assert.deepEqual([d.shape, d.classes, d.count, d.labels[0]], [[3, 32, 32], 10, 5, 7]);
  });
});
