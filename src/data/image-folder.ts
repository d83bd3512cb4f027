/**
 * An image folder: one subfolder per class holding PNG or JPEG files, either as `<dir>/train/<class>/…`
 * and `<dir>/test/<class>/…`, or as `<dir>/<class>/…` (a train split only). Class names sorted are
 * the class indices. Decoding is pngjs's and jpeg-js's; every image must have the size and channel
 * count of the first (PNG: gray 1, gray+alpha 2, RGB or palette 3, with alpha 4; JPEG: RGB, 3).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type jpegJs from 'jpeg-js';
import type * as pngjs from 'pngjs';
import { GhnError } from '../errors.js';
import { createRng, shuffleInPlace } from '../util/random.js';
import type { Split } from './dataset.js';

const PNG_EXT = /\.png$/i;
const JPEG_EXT = /\.jpe?g$/i;
/** The order examples are visited in is shuffled with this seed, so a prefix (calibration's 1,024) mixes the classes. */
const ORDER_SEED = 0x1f01de;

export interface RawImages {
  /** count × C × H × W bytes (planar, per image). */
  pixels: Uint8Array;
  labels: Int32Array;
  count: number;
  shape: [number, number, number];
  classNames: string[];
}

const isDir = (p: string): boolean => existsSync(p) && statSync(p).isDirectory();

/** The folder whose class subfolders make `split`; undefined when the folder has no such split. */
function splitDir(dir: string, split: Split): string | undefined {
  if (isDir(path.join(dir, 'train'))) return isDir(path.join(dir, split)) ? path.join(dir, split) : undefined;
  return split === 'train' ? dir : undefined;
}

function classFolders(dir: string): string[] {
  return readdirSync(dir).filter((name) => !name.startsWith('.') && isDir(path.join(dir, name))).sort();
}

/** Class names of the folder's train split, sorted (their positions are the class indices). */
export function imageFolderClasses(dir: string): string[] {
  const train = splitDir(dir, 'train')!;
  const classes = classFolders(train);
  if (classes.length === 0) {
    throw new GhnError('bad-input', `${train}: no class folders (an image folder holds one subfolder of PNG/JPEG images per class, optionally under train/ and test/)`);
  }
  return classes;
}

/** Every image file of a split with its label, in the shuffled visiting order. */
export function listImageFolder(dir: string, split: Split): { files: string[]; labels: Int32Array; classNames: string[] } {
  if (!isDir(dir)) throw new GhnError('not-found', `image folder not found: ${dir}`);
  const classNames = imageFolderClasses(dir);
  const root = splitDir(dir, split);
  if (root === undefined) throw new GhnError('missing-data', `${dir}: no ${split} split (it needs a ${split}/ folder beside train/)`);
  const present = classFolders(root);
  const unknown = present.filter((c) => !classNames.includes(c));
  if (unknown.length) throw new GhnError('bad-input', `${root}: class folder ${unknown[0]} is not a class of the train split`);
  const entries: Array<[string, number]> = [];
  for (const name of present) {
    const images = readdirSync(path.join(root, name)).filter((f) => PNG_EXT.test(f) || JPEG_EXT.test(f)).sort();
    if (images.length === 0 && split === 'train') throw new GhnError('bad-input', `${path.join(root, name)}: no PNG or JPEG images in class folder ${name}`);
    for (const f of images) entries.push([path.join(root, name, f), classNames.indexOf(name)]);
  }
  if (entries.length === 0) throw new GhnError('bad-input', `${root}: no PNG or JPEG images`);
  shuffleInPlace(entries, createRng(ORDER_SEED));
  return { files: entries.map((e) => e[0]), labels: Int32Array.from(entries, (e) => e[1]), classNames };
}

interface Decoded { width: number; height: number; channels: number; /** interleaved, `stride` bytes per pixel */ data: Uint8Array; stride: number }

// The decoders load on the first image: `ghn predict` imports this module (datasets) but most runs decode no image (~30 ms).
const requireDecoder = createRequire(import.meta.url);
let decoders: { PNG: typeof pngjs.PNG; jpeg: typeof jpegJs } | undefined;
const loadDecoders = () => (decoders ??= { PNG: (requireDecoder('pngjs') as typeof pngjs).PNG, jpeg: requireDecoder('jpeg-js') as typeof jpegJs });

function decodeImage(file: string): Decoded {
  const bytes = readFileSync(file);
  const { PNG, jpeg } = loadDecoders();
  if (PNG_EXT.test(file)) {
    let png: ReturnType<typeof PNG.sync.read>;
    try {
      png = PNG.sync.read(bytes);
    } catch (e) {
      throw new GhnError('bad-input', `${file}: not a readable PNG image (${(e as Error).message})`);
    }
    // pngjs always returns RGBA; how many of those are real channels is in the header.
    const meta = png as unknown as { color: boolean; palette: boolean; alpha: boolean };
    const channels = (meta.color || meta.palette ? 3 : 1) + (meta.alpha ? 1 : 0);
    return { width: png.width, height: png.height, channels, data: png.data, stride: 4 };
  }
  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false });
  } catch (e) {
    throw new GhnError('bad-input', `${file}: not a readable JPEG image (${(e as Error).message})`);
  }
  return { width: img.width, height: img.height, channels: 3, data: img.data, stride: 3 };
}

/** Writes the channels a pixel layout actually has (gray+alpha is R and A of pngjs's RGBA) into CHW planes. */
function toPlanar(d: Decoded, out: Uint8Array, offset: number): void {
  const plane = d.width * d.height;
  const sources = d.stride === 4 ? ([[0], [0, 3], [0, 1, 2], [0, 1, 2, 3]] as const)[d.channels - 1]! : [0, 1, 2];
  sources.forEach((s, c) => {
    const base = offset + c * plane;
    for (let i = 0; i < plane; i++) out[base + i] = d.data[i * d.stride + s]!;
  });
}

/** Decodes the first `limit` images of a split (all by default), in the shuffled order. */
export function readImageFolder(dir: string, split: Split, limit = Infinity): RawImages {
  const { files, labels, classNames } = listImageFolder(dir, split);
  const count = Math.min(files.length, Math.max(0, limit));
  let shape: [number, number, number] | undefined;
  let pixels = new Uint8Array(0);
  for (let n = 0; n < count; n++) {
    const d = decodeImage(files[n]!);
    if (shape === undefined) {
      shape = [d.channels, d.height, d.width];
      pixels = new Uint8Array(count * d.channels * d.height * d.width);
    } else if (shape[0] !== d.channels || shape[1] !== d.height || shape[2] !== d.width) {
      throw new GhnError('bad-input',
        `${files[n]} is ${d.channels}×${d.height}×${d.width} but ${files[0]} is ${shape.join('×')}: every image of a folder must have one size and channel count`);
    }
    toPlanar(d, pixels, n * shape[0] * shape[1] * shape[2]);
  }
  return { pixels, labels: labels.slice(0, count), count, shape: shape ?? [0, 0, 0], classNames };
}
