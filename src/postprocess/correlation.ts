/**
 * std(corrcoef(W)) for the rows of a row-major matrix, as torch.std(torch.corrcoef(W)) computes
 * it: over all C×C entries, diagonal included, unbiased (N − 1). Only the off-diagonal entries
 * are unknown, and their first two moments are all the std needs, so for many rows they are
 * estimated from every pair within a seeded random subset of rows (the diagonal stays exact): each
 * pair is still a uniformly drawn pair, and the subset's rows stay in cache, where independently
 * drawn pairs read two rows from anywhere in a 10–40 MB matrix (3× slower on ResNet-50's weights).
 */
import { randomInt, type Rng } from '../util/random.js';

/** Above this many distinct row pairs the moments are estimated from the pairs of a row subset. */
export const MAX_EXACT_PAIRS = 496;
/**
 * Rows in that subset: 496 pairs, an estimate within ~3% (relative spread over 20 seeds on
 * rank-8-plus-noise matrices of 200×30 to 2048×512; 1.2–1.6% with 64 rows, at 4× the time, which
 * on ResNet-50 was ~0.1 s of every prediction). A 3% error in a noise scale of β = 3e-5 is immaterial.
 */
const SAMPLED_ROWS = 32;

/**
 * @param w row-major rows×cols values
 * @param rng used only when the pairs are sampled
 * Rows with zero variance have no defined correlation; their pairs count as 0 so that a dead
 * output unit does not turn the noise scale into NaN. One row (or one column) gives 0.
 */
export function correlationStd(w: Float64Array, rows: number, cols: number, rng: Rng): number {
  if (rows < 2 || cols < 2) return 0;
  const pairCount = (rows * (rows - 1)) / 2;
  const subset = pairCount <= MAX_EXACT_PAIRS ? Array.from({ length: rows }, (_, i) => i) : sampleRows(rows, SAMPLED_ROWS, rng);
  const { mean, inverseNorm } = rowMoments(w, subset, cols);
  let sum = 0;
  let sumSquares = 0;
  let used = 0;
  for (let a = 0; a < subset.length; a++) {
    for (let b = a + 1; b < subset.length; b++) {
      const i = subset[a]!, j = subset[b]!;
      const dot = rowDot(w, i * cols, j * cols, cols) - cols * mean[a]! * mean[b]!;
      const c = dot * inverseNorm[a]! * inverseNorm[b]!;
      sum += c;
      sumSquares += c * c;
      used++;
    }
  }
  const n = rows * rows;
  const offDiagonal = n - rows;
  const s1 = rows + offDiagonal * (sum / used);
  const s2 = rows + offDiagonal * (sumSquares / used);
  const variance = (s2 - (s1 * s1) / n) / (n - 1);
  return Math.sqrt(Math.max(0, variance));
}

/** `count` distinct row indices of `rows`, uniformly (a partial Fisher–Yates shuffle), ascending. */
function sampleRows(rows: number, count: number, rng: Rng): number[] {
  const order = Array.from({ length: rows }, (_, i) => i);
  for (let k = 0; k < count; k++) {
    const j = k + randomInt(rng, rows - k);
    [order[k], order[j]] = [order[j]!, order[k]!];
  }
  return order.slice(0, count).sort((a, b) => a - b);
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

/** Per listed row: the mean and 1/‖row − mean‖ (0 for a constant row, so its correlations count as 0). */
function rowMoments(w: Float64Array, subset: readonly number[], cols: number): { mean: Float64Array; inverseNorm: Float64Array } {
  const mean = new Float64Array(subset.length);
  const inverseNorm = new Float64Array(subset.length);
  subset.forEach((row, i) => {
    const o = row * cols;
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
  });
  return { mean, inverseNorm };
}
