/**
 * How raw pixels become network inputs: x = (pixel · scale − mean[c]) / std[c].
 *
 * A predicted model is only usable with the normalization its predictor was trained with, so it
 * travels inside the ONNX file as metadata (key `ghn.input_normalization`, JSON value).
 */
import { GhnError } from '../errors.js';
import type { ModelProto, StringStringEntryProto } from '../onnx/types.js';

export interface Normalization {
  /** Per-channel mean of the scaled pixels (one entry per channel; one entry applies to all). */
  mean: number[];
  /** Per-channel standard deviation of the scaled pixels. */
  std: number[];
  /** Factor from the stored pixel values to [0, 1], e.g. 1/255 for uint8 images. */
  scale: number;
}

export const NORMALIZATION_METADATA_KEY = 'ghn.input_normalization';

/** Fashion-MNIST training-set statistics: (pixel/255 − 0.2860) / 0.3530. */
export const FASHION_MNIST_NORMALIZATION: Normalization = Object.freeze({
  mean: Object.freeze([0.286]) as number[],
  std: Object.freeze([0.353]) as number[],
  scale: 1 / 255,
});

/** CIFAR-10 training-set channel statistics (R, G, B). */
export const CIFAR10_NORMALIZATION: Normalization = Object.freeze({
  mean: Object.freeze([0.4914, 0.4822, 0.4465]) as number[],
  std: Object.freeze([0.247, 0.2435, 0.2616]) as number[],
  scale: 1 / 255,
});

/** Throws GhnError('bad-input') unless `value` is a well-formed Normalization. */
export function validateNormalization(value: unknown, source: string): Normalization {
  const v = value as Partial<Normalization> | null;
  const finiteArray = (a: unknown): a is number[] =>
    Array.isArray(a) && a.length > 0 && a.every((n) => typeof n === 'number' && Number.isFinite(n));
  if (
    typeof v !== 'object' || v === null ||
    !finiteArray(v.mean) || !finiteArray(v.std) || v.mean.length !== v.std.length ||
    v.std.some((s) => s <= 0) ||
    typeof v.scale !== 'number' || !Number.isFinite(v.scale) || v.scale <= 0
  ) {
    throw new GhnError('bad-input', `${source}: input normalization must be {mean: number[], std: number[] (> 0, same length), scale: number (> 0)}`);
  }
  return { mean: [...v.mean], std: [...v.std], scale: v.scale };
}

/** A copy of `model` whose metadata records `normalization` (replacing any earlier record). */
export function withNormalization(model: ModelProto, normalization: Normalization): ModelProto {
  const checked = validateNormalization(normalization, 'normalization');
  const others = (model.metadataProps ?? []).filter((p) => p.key !== NORMALIZATION_METADATA_KEY);
  const entry: StringStringEntryProto = { key: NORMALIZATION_METADATA_KEY, value: JSON.stringify(checked) };
  return { ...model, metadataProps: [...others, entry] };
}

/** The normalization recorded in `model`'s metadata, or undefined when there is none. */
export function readNormalization(model: ModelProto): Normalization | undefined {
  const entry = model.metadataProps?.find((p) => p.key === NORMALIZATION_METADATA_KEY);
  if (entry === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(entry.value ?? '');
  } catch {
    throw new GhnError('bad-input', `metadata ${NORMALIZATION_METADATA_KEY} is not valid JSON: ${JSON.stringify(entry.value ?? '').slice(0, 80)}`);
  }
  return validateNormalization(parsed, `metadata ${NORMALIZATION_METADATA_KEY}`);
}

/**
 * Normalizes planar (CHW per image) raw pixels into `out` starting at `outOffset`.
 * `pixels` holds `count` images of `channels × plane` values each.
 */
export function normalizePlanar(
  pixels: Uint8Array, channels: number, plane: number, normalization: Normalization,
  out: Float32Array, outOffset = 0,
): void {
  const { mean, std, scale } = normalization;
  if (mean.length !== 1 && mean.length !== channels) {
    throw new GhnError('bad-input', `normalization has ${mean.length} channel statistics for ${channels}-channel images`);
  }
  const images = pixels.length / (channels * plane);
  for (let c = 0; c < channels; c++) {
    // (p·scale − m)/s = p·a + b with a = scale/s, b = −m/s: one multiply-add per pixel.
    const a = scale / std[mean.length === 1 ? 0 : c];
    const b = -mean[mean.length === 1 ? 0 : c] / std[mean.length === 1 ? 0 : c];
    for (let n = 0; n < images; n++) {
      const base = (n * channels + c) * plane;
      for (let i = 0; i < plane; i++) out[outOffset + base + i] = pixels[base + i] * a + b;
    }
  }
}

/**
 * Per-channel mean and standard deviation of planar uint8 images scaled to [0, 1] (`count` images
 * of `channels × plane` bytes): a dataset's normalization, computed on its training split.
 */
export function computeNormalization(pixels: Uint8Array, channels: number, plane: number): Normalization {
  const images = pixels.length / (channels * plane);
  const mean: number[] = [], std: number[] = [];
  for (let c = 0; c < channels; c++) {
    // Byte histograms: exact sums in float64 whatever the dataset's size.
    const hist = new Float64Array(256);
    for (let n = 0; n < images; n++) {
      const base = (n * channels + c) * plane;
      for (let i = 0; i < plane; i++) hist[pixels[base + i]!]++;
    }
    let total = 0, sum = 0, sq = 0;
    for (let v = 0; v < 256; v++) {
      total += hist[v]!;
      sum += hist[v]! * (v / 255);
      sq += hist[v]! * (v / 255) ** 2;
    }
    const m = sum / Math.max(1, total);
    mean.push(m);
    // A constant channel would divide by 0: its inputs become 0 with std 1.
    std.push(Math.sqrt(Math.max(0, sq / Math.max(1, total) - m * m)) || 1);
  }
  return { mean, std, scale: 1 / 255 };
}
