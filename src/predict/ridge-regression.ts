/**
 * Closed-form ridge regression of targets on features, W = argmin ‖Fc·W − T‖² + λ‖W‖², with Fc the
 * features centered on their mean (when an intercept is fitted). Solved in whichever form is
 * smaller: primal (FcᵀFc + λI)·W = FcᵀT when there are fewer features than samples, dual
 * W = Fcᵀ·(Fc·Fcᵀ + λI)⁻¹·T otherwise (a flattened 128×7×7 map has 6,272 features for 1,024
 * images). The Gram matrix, the only large product, runs on onnxruntime (float64 GEMM); the
 * Cholesky solve of the ≤ 1,024-sized system runs in JS.
 */
import { runProduct } from '../postprocess/ort-linalg.js';

export interface RidgeProblem {
  /** [samples, features], row-major. */
  features: Float32Array;
  samples: number;
  dims: number;
  /** [samples, outputs], row-major. */
  targets: Float64Array;
  outputs: number;
  /**
   * λ relative to the mean squared norm of a centered feature row (trace(FcᵀFc) / samples), or a
   * grid to choose it from by held-out classification accuracy (primal form only; the dual form
   * takes the grid's middle value).
   */
  relativeRidge: number | RidgeSelection;
  /** Fit an intercept: center the features (the caller's bias absorbs the mean). */
  center: boolean;
}

/** Chooses λ by k-fold cross-validation: the fitted classifier's accuracy on each held-out fold. */
export interface RidgeSelection {
  grid: readonly number[];
  /** The class of each sample (argmax of its target row). */
  labels: Int32Array;
  folds: number;
}

export interface RidgeSolution {
  /** [features, outputs], row-major. */
  weights: Float64Array;
  /** Feature means the weights were fitted around (zeros without centering). */
  mean: Float64Array;
  form: 'primal' | 'dual';
  /** The relative λ used. */
  relativeRidge: number;
  /** Held-out accuracy per grid value, when λ was chosen. */
  heldOut?: number[];
}

/** Solves (G + λI)·X = B in place of B for symmetric positive-definite G [n, n] and B [n, k]. */
export function choleskySolve(g: Float64Array, n: number, b: Float64Array, k: number, lambda: number): Float64Array {
  const l = Float64Array.from(g);
  for (let i = 0; i < n; i++) l[i * n + i]! += lambda;
  for (let j = 0; j < n; j++) {
    const rowJ = j * n;
    let d = l[rowJ + j]!;
    for (let p = 0; p < j; p++) d -= l[rowJ + p]! * l[rowJ + p]!;
    if (!(d > 0)) throw new Error('ridge system is not positive definite');
    const ljj = Math.sqrt(d);
    l[rowJ + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      const rowI = i * n;
      let s = l[rowI + j]!;
      for (let p = 0; p < j; p++) s -= l[rowI + p]! * l[rowJ + p]!;
      l[rowI + j] = s / ljj;
    }
  }
  const x = Float64Array.from(b);
  // L·y = b, then Lᵀ·x = y, column by column of the right-hand side.
  for (let c = 0; c < k; c++) {
    for (let i = 0; i < n; i++) {
      let s = x[i * k + c]!;
      for (let p = 0; p < i; p++) s -= l[i * n + p]! * x[p * k + c]!;
      x[i * k + c] = s / l[i * n + i]!;
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = x[i * k + c]!;
      for (let p = i + 1; p < n; p++) s -= l[p * n + i]! * x[p * k + c]!;
      x[i * k + c] = s / l[i * n + i]!;
    }
  }
  return x;
}

/** Gram matrix FᵀF [d, d] and FᵀT [d, k] of the given rows of the centered features. */
async function normalEquations(centered: Float64Array, d: number, rows: readonly number[], targets: Float64Array, k: number) {
  const n = rows.length;
  const transposed = new Float64Array(d * n);
  const rhs = new Float64Array(d * k);
  rows.forEach((row, i) => {
    for (let j = 0; j < d; j++) {
      const f = centered[row * d + j]!;
      transposed[j * n + i] = f;
      if (f !== 0) for (let c = 0; c < k; c++) rhs[j * k + c]! += f * targets[row * k + c]!;
    }
  });
  const [gram] = await runProduct('gram', [{ data: transposed, rows: d, cols: n }]);
  return { gram: gram!.data, rhs };
}

function heldOutAccuracy(centered: Float64Array, d: number, rows: readonly number[], weights: Float64Array, k: number, labels: Int32Array): number {
  let correct = 0;
  const z = new Float64Array(k);
  for (const row of rows) {
    z.fill(0);
    for (let j = 0; j < d; j++) {
      const f = centered[row * d + j]!;
      if (f !== 0) for (let c = 0; c < k; c++) z[c]! += f * weights[j * k + c]!;
    }
    let best = 0;
    for (let c = 1; c < k; c++) if (z[c]! > z[best]!) best = c;
    if (best === labels[row]) correct++;
  }
  return correct / Math.max(1, rows.length);
}

/**
 * The grid value with the best mean held-out accuracy (the larger λ on ties: the smoother fit).
 * Each fold's system is the whole Gram minus the fold's own, so the features are multiplied once.
 */
async function chooseRidge(centered: Float64Array, n: number, d: number, targets: Float64Array, k: number, scale: number, selection: RidgeSelection) {
  const folds = Array.from({ length: selection.folds }, (_, f) => Array.from({ length: Math.ceil((n - f) / selection.folds) }, (_, i) => f + i * selection.folds));
  const parts: { gram: Float64Array; rhs: Float64Array }[] = [];
  for (const rows of folds) parts.push(await normalEquations(centered, d, rows, targets, k));
  const total = { gram: new Float64Array(d * d), rhs: new Float64Array(d * k) };
  for (const p of parts) {
    p.gram.forEach((v, i) => { total.gram[i]! += v; });
    p.rhs.forEach((v, i) => { total.rhs[i]! += v; });
  }
  const heldOut = selection.grid.map((relative) => {
    let sum = 0;
    folds.forEach((rows, f) => {
      const gram = total.gram.map((v, i) => v - parts[f]!.gram[i]!);
      const rhs = total.rhs.map((v, i) => v - parts[f]!.rhs[i]!);
      const weights = choleskySolve(gram, d, rhs, k, Math.max(1e-12, (relative * scale * (n - rows.length)) / (n * n)));
      sum += heldOutAccuracy(centered, d, rows, weights, k, selection.labels);
    });
    return sum / folds.length;
  });
  let best = 0;
  heldOut.forEach((a, i) => { if (a > heldOut[best]! || (a === heldOut[best]! && selection.grid[i]! > selection.grid[best]!)) best = i; });
  return { relativeRidge: selection.grid[best]!, heldOut, total };
}

export async function ridgeRegression(problem: RidgeProblem): Promise<RidgeSolution> {
  const { features, samples: n, dims: d, targets, outputs: k } = problem;
  const mean = new Float64Array(d);
  if (problem.center) {
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += features[i * d + j]!;
    for (let j = 0; j < d; j++) mean[j]! /= n;
  }
  const centered = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) centered[i * d + j] = features[i * d + j]! - mean[j]!;
  let trace = 0;
  for (const v of centered) trace += v * v;
  // λ = relative × trace(FcᵀFc) / n, the mean squared row norm: alike at any feature scale. A fold's
  // system, on fewer rows, gets λ in proportion, so the chosen value means the same on all of them.
  const scale = trace;
  const choice = problem.relativeRidge;

  if (d <= n) {
    if (typeof choice !== 'number') {
      const chosen = await chooseRidge(centered, n, d, targets, k, scale, choice);
      const weights = choleskySolve(chosen.total.gram, d, chosen.total.rhs, k, Math.max(1e-12, (chosen.relativeRidge * scale) / n));
      return { weights, mean, form: 'primal', relativeRidge: chosen.relativeRidge, heldOut: chosen.heldOut };
    }
    const all = Array.from({ length: n }, (_, i) => i);
    const { gram, rhs } = await normalEquations(centered, d, all, targets, k);
    return { weights: choleskySolve(gram, d, rhs, k, Math.max(1e-12, (choice * scale) / n)), mean, form: 'primal', relativeRidge: choice };
  }
  const relative = typeof choice === 'number' ? choice : choice.grid[Math.floor(choice.grid.length / 2)]!;
  const [gram] = await runProduct('gram', [{ data: centered, rows: n, cols: d }]);
  const dual = choleskySolve(gram!.data, n, targets, k, Math.max(1e-12, (relative * scale) / n));
  const weights = new Float64Array(d * k);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const f = centered[i * d + j]!;
      if (f !== 0) for (let c = 0; c < k; c++) weights[j * k + c]! += f * dual[i * k + c]!;
    }
  }
  return { weights, mean, form: 'dual', relativeRidge: relative };
}
