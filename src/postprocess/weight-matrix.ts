/**
 * W_mat, the 2-D view diversify works on: a weight as (C_out, −1) in canonical row-major order,
 * in float64, and its tall orientation (column-major m×n with m ≥ n) that the QR takes.
 */
import type { Rng } from '../util/random.js';
import { correlationStd } from './correlation.js';
import { addGaussianNoise } from './gaussian-noise.js';
import { transposeInto } from './transpose.js';

/** A weight's values as stored in the model and W_mat's shape. */
export interface StoredWeight {
  values: Float32Array;
  rows: number;
  cols: number;
  /** Stored as [in, out] (a 2-D weight kept transposed by its exporter). */
  storedTransposed: boolean;
}

/** W_mat in canonical row-major order (row = output unit), in float64, with the noise added, and its standard deviation. */
export function noisyCanonical(
  weight: StoredWeight, noise: number, rng: Rng, w: Float64Array = new Float64Array(weight.rows * weight.cols),
): { values: Float64Array; std: number } {
  const { values, rows, cols, storedTransposed } = weight;
  if (storedTransposed) transposeInto(values, cols, rows, w);
  else w.set(values);
  const sigma = noise > 0 ? noise * correlationStd(w, rows, cols, rng) : 0;
  if (!(sigma > 0)) return { values: w, std: standardDeviation(w) };
  const { sum, sumSquares } = addGaussianNoise(w, sigma, rng);
  return { values: w, std: stdFromMoments(sum, sumSquares, w.length) };
}

/**
 * The tall orientation of row-major W_mat (rows×cols) as a column-major m×n work array. For a wide
 * W_mat the tall matrix is W_matᵀ, whose column-major order is W_mat's row-major order — no
 * transpose needed for the common fan_in ≥ C_out case.
 */
export function tallWork(w: Float64Array, rows: number, cols: number, work: Float64Array = new Float64Array(rows * cols)): { work: Float64Array; m: number; n: number } {
  const wide = rows < cols;
  if (wide) {
    if (work !== w) work.set(w);
    return { work, m: cols, n: rows };
  }
  transposeInto(w, rows, cols, work);
  return { work, m: rows, n: cols };
}

/**
 * Population standard deviation in one pass (Σw and Σw² in float64): the cancellation in
 * Σw²/N − mean² costs ~ε₆₄·mean²/σ², nothing for weights, whose mean is within a few σ of 0.
 */
export function standardDeviation(w: ArrayLike<number>): number {
  let s0 = 0, s1 = 0, q0 = 0, q1 = 0;
  let i = 0;
  for (; i + 2 <= w.length; i += 2) {
    const a = w[i]!, b = w[i + 1]!;
    s0 += a;
    s1 += b;
    q0 += a * a;
    q1 += b * b;
  }
  if (i < w.length) {
    s0 += w[i]!;
    q0 += w[i]! * w[i]!;
  }
  return stdFromMoments(s0 + s1, q0 + q1, w.length);
}

function stdFromMoments(sum: number, sumSquares: number, count: number): number {
  const mean = sum / count;
  return Math.sqrt(Math.max(0, sumSquares / count - mean * mean));
}
