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
export function correlationStd(w: ArrayLike<number>, rows: number, cols: number, rng: Rng): number {
  if (rows < 2 || cols < 2) return 0;
  const unit = standardizedRows(w, rows, cols);
  const pairCount = (rows * (rows - 1)) / 2;
  let sum = 0;
  let sumSquares = 0;
  let used = 0;
  const addPair = (i: number, j: number): void => {
    let c = 0;
    const io = i * cols, jo = j * cols;
    for (let k = 0; k < cols; k++) c += unit[io + k] * unit[jo + k];
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

/** Rows centred and scaled to unit norm (zero rows for constant rows), so a dot product is a correlation. */
function standardizedRows(w: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    let mean = 0;
    for (let k = 0; k < cols; k++) mean += w[o + k];
    mean /= cols;
    let norm = 0;
    for (let k = 0; k < cols; k++) {
      const d = w[o + k] - mean;
      out[o + k] = d;
      norm += d * d;
    }
    const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let k = 0; k < cols; k++) out[o + k] *= scale;
  }
  return out;
}
