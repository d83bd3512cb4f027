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
  /** λ relative to the mean squared norm of a centered feature row (trace(FcᵀFc) / samples). */
  relativeRidge: number;
  /** Fit an intercept: center the features (the caller's bias absorbs the mean). */
  center: boolean;
}

export interface RidgeSolution {
  /** [features, outputs], row-major. */
  weights: Float64Array;
  /** Feature means the weights were fitted around (zeros without centering). */
  mean: Float64Array;
  form: 'primal' | 'dual';
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
  const lambda = Math.max(1e-12, (problem.relativeRidge * trace) / n);

  if (d <= n) {
    const transposed = new Float64Array(d * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) transposed[j * n + i] = centered[i * d + j]!;
    const [gram] = await runProduct('gram', [{ data: transposed, rows: d, cols: n }]);
    const rhs = new Float64Array(d * k);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < d; j++) {
        const f = centered[i * d + j]!;
        if (f !== 0) for (let c = 0; c < k; c++) rhs[j * k + c]! += f * targets[i * k + c]!;
      }
    }
    return { weights: choleskySolve(gram!.data, d, rhs, k, lambda), mean, form: 'primal' };
  }
  const [gram] = await runProduct('gram', [{ data: centered, rows: n, cols: d }]);
  const dual = choleskySolve(gram!.data, n, targets, k, lambda);
  const weights = new Float64Array(d * k);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const f = centered[i * d + j]!;
      if (f !== 0) for (let c = 0; c < k; c++) weights[j * k + c]! += f * dual[i * k + c]!;
    }
  }
  return { weights, mean, form: 'dual' };
}
