/**
 * Writes Fashion-MNIST images as an image folder (`<out>/train/<class>/*.png`, `<out>/test/<class>/*.png`)
 * for `ghn train --data <out>`: grayscale 28×28, or with `--rgb` 3×32×32 (padded, each class tinted
 * its own colour, so that the channels carry something).
 *
 *   npx tsx scripts/make-image-folder.ts --out runs/fmnist-png [--train 10000] [--test 2000] [--rgb]
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { PNG } from 'pngjs';
import { FASHION_MNIST_CLASSES, FASHION_MNIST_DIR } from '../src/data/fashion-mnist.js';
import { readIdxFilePrefix } from '../src/data/idx.js';
import type { Split } from '../src/data/dataset.js';

/** Folder-safe class names ("T-shirt/top" has a slash). */
export const CLASS_FOLDERS = FASHION_MNIST_CLASSES.map((c, i) => `${i}-${c.replace(/[^A-Za-z0-9]+/g, '_')}`);

/** Encodes one H×W×C (interleaved) uint8 image as PNG: gray for C = 1, RGB for C = 3. */
export function encodePng(pixels: Uint8Array, width: number, height: number, channels: 1 | 3): Buffer {
  const png = new PNG({ width, height, colorType: channels === 1 ? 0 : 2, inputColorType: channels === 1 ? 0 : 2, inputHasAlpha: false });
  png.data = Buffer.from(pixels);
  return PNG.sync.write(png, { colorType: channels === 1 ? 0 : 2, inputColorType: channels === 1 ? 0 : 2, inputHasAlpha: false });
}

/** A 28×28 image as 3×32×32 interleaved RGB: padded by 2, scaled by the class's tint. */
function rgb32(gray: Uint8Array, label: number): Uint8Array {
  const tint = [[1, 0.4, 0.4], [0.4, 1, 0.4], [0.4, 0.4, 1], [1, 1, 0.4], [1, 0.4, 1], [0.4, 1, 1], [1, 0.7, 0.4], [0.7, 0.4, 1], [0.4, 1, 0.7], [1, 1, 1]][label % 10]!;
  const out = new Uint8Array(32 * 32 * 3);
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      for (let c = 0; c < 3; c++) out[((y + 2) * 32 + x + 2) * 3 + c] = Math.round(gray[y * 28 + x]! * tint[c]!);
    }
  }
  return out;
}

/** Writes the first `count` images of a Fashion-MNIST split from `dir` into `<out>/<split>/<class>/`. */
export function writeFashionMnistFolder(out: string, split: Split, count: number, options: { rgb?: boolean; dir?: string } = {}): void {
  const dir = options.dir ?? FASHION_MNIST_DIR;
  const prefix = split === 'train' ? 'train' : 't10k';
  const file = (kind: string) => [`${prefix}-${kind}.gz`, `${prefix}-${kind}`].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f))!;
  const images = readIdxFilePrefix(file('images-idx3-ubyte'), count);
  const labels = readIdxFilePrefix(file('labels-idx1-ubyte'), count);
  for (const c of CLASS_FOLDERS) fs.mkdirSync(path.join(out, split, c), { recursive: true });
  for (let n = 0; n < images.dims[0]!; n++) {
    const gray = images.data.subarray(n * 784, (n + 1) * 784);
    const label = labels.data[n]!;
    const png = options.rgb ? encodePng(rgb32(gray, label), 32, 32, 3) : encodePng(gray, 28, 28, 1);
    fs.writeFileSync(path.join(out, split, CLASS_FOLDERS[label]!, `${String(n).padStart(5, '0')}.png`), png);
  }
}

// Real paths: run through a symlinked scripts/ folder, argv[1] is the link and import.meta.url the file.
const invokedDirectly = process.argv[1] !== undefined && fs.existsSync(process.argv[1]) && import.meta.url === pathToFileURL(fs.realpathSync(process.argv[1])).href;
if (invokedDirectly) {
  const { values } = parseArgs({ options: {
    out: { type: 'string' }, train: { type: 'string', default: '10000' }, test: { type: 'string', default: '2000' },
    rgb: { type: 'boolean', default: false }, 'data-dir': { type: 'string' },
  } });
  if (!values.out) throw new Error('--out <folder> is required');
  for (const split of ['train', 'test'] as const) {
    writeFashionMnistFolder(values.out, split, Number(values[split]), { rgb: values.rgb, dir: values['data-dir'] });
  }
  process.stdout.write(`${values.out}: ${values.train} train and ${values.test} test images, ${values.rgb ? '3×32×32 RGB' : '1×28×28 gray'}, ${CLASS_FOLDERS.length} classes\n`);
}
