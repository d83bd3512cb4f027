/**
 * std(corrcoef(W)) for the rows of a row-major matrix, as torch.std(torch.corrcoef(W)) computes
 * it: over all C×C entries, diagonal included, unbiased (N − 1). Only the off-diagonal entries
 * are unknown, and their first two moments are all the std needs, so for many rows a seeded random
 * subset of row pairs estimates them (the diagonal stays exact): O(pairs·K) instead of O(C²·K).
 */
import { randomInt, type Rng } from '../util/random.js';

/** Above this many distinct row pairs the moments are estimated from this many sampled pairs. */
export const MAX_EXACT_PAIRS = 4096;

/**
 * @param w row-major rows×cols values
 * @param rng used only when the pairs are sampled
 * Rows with zero variance have no defined correlation; their pairs count as 0 so that a dead
 * output unit does not turn the noise scale into NaN. One row (or one column) gives 0.
 */
export function correlationStd(w: Float64Array, rows: number, cols: number, rng: Rng): number {
  if (rows < 2 || cols < 2) return 0;
  const { mean, inverseNorm } = rowMoments(w, rows, cols);
  const pairCount = (rows * (rows - 1)) / 2;
  let sum = 0;
  let sumSquares = 0;
  let used = 0;
  const addPair = (i: number, j: number): void => {
    const dot = rowDot(w, i * cols, j * cols, cols) - cols * mean[i]! * mean[j]!;
    const c = dot * inverseNorm[i]! * inverseNorm[j]!;
    sum += c;
    sumSquares += c * c;
    used++;
  };
  if (pairCount <= MAX_EXACT_PAIRS) {
    for (let i = 0; i < rows; i++) for (let j = i + 1; j < rows; j++) addPair(i, j);
  } else {
    for (let p = 0; p < MAX_EXACT_PAIRS; p++) {
      const i = randomInt(rng, rows);
      let j = randomInt(rng, rows - 1);
      if (j >= i) j++; // uniform over j ≠ i
      addPair(i, j);
    }
  }
  const n = rows * rows;
  const offDiagonal = n - rows;
  const s1 = rows + offDiagonal * (sum / used);
  const s2 = rows + offDiagonal * (sumSquares / used);
  const variance = (s2 - (s1 * s1) / n) / (n - 1);
  return Math.sqrt(Math.max(0, variance));
}

/**
 * Σ w_i·w_j over two rows starting at io and jo (4 accumulators). Σ (w_i − μ_i)(w_j − μ_j) is this
 * minus K·μ_i·μ_j: no centred copy; the cancellation costs ~ε₆₄·μ²/σ², nothing for weights. A
 * top-level function: inside the per-pair closure the loop read w and cols from its context.
 */
function rowDot(w: Float64Array, io: number, jo: number, cols: number): number {
  let d0 = 0, d1 = 0, d2 = 0, d3 = 0;
  let k = 0;
  for (; k + 4 <= cols; k += 4) {
    d0 += w[io + k]! * w[jo + k]!;
    d1 += w[io + k + 1]! * w[jo + k + 1]!;
    d2 += w[io + k + 2]! * w[jo + k + 2]!;
    d3 += w[io + k + 3]! * w[jo + k + 3]!;
  }
  for (; k < cols; k++) d0 += w[io + k]! * w[jo + k]!;
  return d0 + d1 + d2 + d3;
}

/** Per row: the mean and 1/‖row − mean‖ (0 for a constant row, so its correlations count as 0). */
function rowMoments(w: Float64Array, rows: number, cols: number): { mean: Float64Array; inverseNorm: Float64Array } {
  const mean = new Float64Array(rows);
  const inverseNorm = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    let m = 0;
    for (let k = 0; k < cols; k++) m += w[o + k]!;
    m /= cols;
    let norm = 0;
    for (let k = 0; k < cols; k++) {
      const d = w[o + k]! - m;
      norm += d * d;
    }
    mean[i] = m;
    inverseNorm[i] = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  }
  return { mean, inverseNorm };
}
