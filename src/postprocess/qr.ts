/**
 * Thin QR of a tall matrix, returning the sign-corrected Q (diag R ≥ 0), which is unique for a
 * full-rank input: Q = A·R⁻¹ with R the Cholesky factor of AᵀA. That identity gives the fast path,
 * CholeskyQR in float64: one Gram product and one triangular product (m·n² multiply-adds, half of
 * Householder's 2·m·n² − 2n³/3, and both are 4×4-blocked level-3 loops). Its loss of
 * orthogonality grows like cond(A)²·ε, so the result is checked with random probes and, when
 * needed, a second pass is made (CholeskyQR2, exact to rounding for cond(A) up to ~1e7). Columns
 * that are numerically dependent make the Cholesky fail, and Householder takes over.
 */
import { GhnError } from '../errors.js';
import { householderQr } from './householder.js';
import { choleskyUpper, gram, multiplyUpperUpper, solveUpperRight } from './kernels.js';
import { orthogonalityError } from './orthogonality.js';

export type MatrixLayout = 'row-major' | 'column-major';
export type QrMethod = 'auto' | 'householder';
/** Which algorithm produced Q: CholeskyQR with one or two passes, or Householder. */
export type QrAlgorithm = 'cholesky' | 'cholesky2' | 'householder';

export interface QrOptions {
  /** Layout of the input and of the returned Q. Default 'row-major'. */
  layout?: MatrixLayout;
  /** 'auto' (default): CholeskyQR with checks and Householder fallback; 'householder': always Householder. */
  method?: QrMethod;
  /** Also return R (n×n upper, same layout). Costs an extra n³/6 for the CholeskyQR path. */
  computeR?: boolean;
  /** Accepted ‖QᵀQ − I‖_F, estimated by probes, before another pass is made. Default 1e-9. */
  tolerance?: number;
}

export interface QrResult {
  /** m×n with orthonormal columns, in the requested layout. */
  q: Float64Array;
  /** n×n upper triangular with non-negative diagonal, in the requested layout; null unless asked for. */
  r: Float64Array | null;
  algorithm: QrAlgorithm;
}

const DEFAULT_TOLERANCE = 1e-9;
/** A Cholesky pivot below this fraction of its diagonal means cond(A) ≳ 1e7: too close to dependent. */
const PIVOT_FLOOR = 1e-14;

/** Thin QR of the m×n matrix `a` (m ≥ n). `a` is not modified. */
export function thinQr(a: Float32Array | Float64Array, m: number, n: number, options: QrOptions = {}): QrResult {
  const layout = options.layout ?? 'row-major';
  if (!Number.isInteger(m) || !Number.isInteger(n) || n < 1 || m < n) {
    throw new GhnError('bad-input', `thinQr needs a tall matrix (m ≥ n ≥ 1), got ${m}×${n}`);
  }
  if (a.length !== m * n) {
    throw new GhnError('bad-input', `thinQr: ${a.length} values for a ${m}×${n} matrix`);
  }
  const work = toColumnMajor(a, m, n, layout);
  const result = thinQrColumnMajor(work, m, n, options);
  if (layout === 'column-major') return result;
  return {
    q: transposeColumnMajor(result.q, m, n),
    r: result.r === null ? null : transposeColumnMajor(result.r, n, n),
    algorithm: result.algorithm,
  };
}

/**
 * Thin QR of a column-major Float64Array that the function may overwrite (no copy is made).
 * Q and R are column-major.
 */
export function thinQrColumnMajor(work: Float64Array, m: number, n: number, options: QrOptions = {}): QrResult {
  const computeR = options.computeR ?? false;
  if ((options.method ?? 'auto') === 'auto') {
    const fast = choleskyQr(work, m, n, options.tolerance ?? DEFAULT_TOLERANCE, computeR);
    if (fast !== null) return fast;
  }
  const { q, r } = householderQr(work, m, n);
  return { q, r: computeR ? r : null, algorithm: 'householder' };
}

/** CholeskyQR, then CholeskyQR2 if the probes say so; null when Householder must take over. */
function choleskyQr(a: Float64Array, m: number, n: number, tolerance: number, computeR: boolean): QrResult | null {
  // Pad to multiples of 4 for the blocked kernels: zero rows leave AᵀA unchanged, and zero columns
  // get a unit diagonal in the Gram so R = diag(R_A, I) and Q's extra columns stay zero.
  const mp = roundUp4(m), np = roundUp4(n);
  const work = new Float64Array(mp * np);
  for (let j = 0; j < n; j++) work.set(a.subarray(j * m, (j + 1) * m), j * mp);
  const g = new Float64Array(np * np);
  if (!choleskyPass(work, mp, n, np, g)) return null;
  const r1 = computeR ? unpad(g, np, n, n) : null;
  if (orthogonalityError(work, mp, m, n) <= tolerance) {
    return { q: unpad(work, mp, m, n), r: r1, algorithm: 'cholesky' };
  }
  if (!choleskyPass(work, mp, n, np, g) || orthogonalityError(work, mp, m, n) > tolerance) return null;
  let r: Float64Array | null = null;
  if (r1 !== null) {
    r = new Float64Array(n * n);
    multiplyUpperUpper(unpad(g, np, n, n), r1, n, r);
  }
  return { q: unpad(work, mp, m, n), r, algorithm: 'cholesky2' };
}

/** In place A → A·R⁻¹ with RᵀR = AᵀA (columns ≥ n are padding); leaves R in `g`. */
function choleskyPass(work: Float64Array, mp: number, n: number, np: number, g: Float64Array): boolean {
  gram(work, mp, np, g);
  for (let j = n; j < np; j++) g[j * np + j] = 1;
  if (!choleskyUpper(g, np, PIVOT_FLOOR)) return false;
  solveUpperRight(work, mp, np, g);
  return true;
}

function roundUp4(x: number): number {
  return (x + 3) & ~3;
}

/** The leading rows×cols corner of a column-major matrix with leading dimension ld. */
function unpad(x: Float64Array, ld: number, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let j = 0; j < cols; j++) out.set(x.subarray(j * ld, j * ld + rows), j * rows);
  return out;
}

function toColumnMajor(a: Float32Array | Float64Array, m: number, n: number, layout: MatrixLayout): Float64Array {
  if (layout === 'column-major') return Float64Array.from(a);
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const ro = i * n;
    for (let j = 0; j < n; j++) out[j * m + i] = a[ro + j];
  }
  return out;
}

/** Row-major copy of a column-major rows×cols matrix. */
function transposeColumnMajor(a: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let j = 0; j < cols; j++) {
    const co = j * rows;
    for (let i = 0; i < rows; i++) out[i * cols + j] = a[co + i];
  }
  return out;
}
