/**
 * CholeskyQR in float64 with the O(m·n²) products (Gram, Q = A·R⁻¹) and the large blocks of the
 * O(n³) Cholesky and triangular inverse on onnxruntime (see ort-linalg.ts). float64 matters for
 * predicted weights: a GHN's low-rank output plus the diversity noise has cond(A) ~ 1e4–1e5, so a
 * float32 Gram (error ~ε₃₂·‖A‖²) loses the noise directions altogether, while in float64 one pass
 * leaves ~cond(A)²·ε₆₄ ≲ 1e-6 in QᵀQ − I. The result is probe-checked; a second pass is made when
 * needed (CholeskyQR2), and null means the caller must use Householder (numerically dependent columns).
 * Sign convention as everywhere: diag R > 0 (Cholesky pivots are positive).
 */
import { choleskyUpper, invertUpper } from './kernels.js';
import { PROBES, PROBE_SAFETY, probeVectors } from './orthogonality.js';
import { runProduct, type Matrix } from './ort-linalg.js';
import { transposeInto } from './transpose.js';

/** Up to this order the Cholesky and inverse run in JS (float64 4×4-blocked loops); above, blocks recurse. */
const JS_CHOLESKY_MAX = 192;
/** A Cholesky pivot below this fraction of its diagonal: cond(A) ≳ 1e7, the columns are numerically dependent. */
const PIVOT_FLOOR = 1e-14;

export interface OrtQrResult {
  /** Qᵀ (n×m, row-major), i.e. Q column-major. */
  q: Float64Array;
  passes: 1 | 2;
}

/**
 * Sign-corrected thin Q of the tall m×n A (m ≥ n), given column-major (= Aᵀ row-major), with a
 * probe estimate of ‖QᵀQ − I‖_F of at most `tolerance`; null when Householder must take over.
 */
export async function choleskyQrOrt(a: Float64Array, m: number, n: number, tolerance: number): Promise<OrtQrResult | null> {
  let at = a;
  const probes = probeVectors(n);
  for (const passes of [1, 2] as const) {
    const g = await gram(at, m, n);
    const x = await choleskyInverse(g);
    if (x === null) return null;
    const { qt, check } = await solve(x, at, m, n, probes);
    at = qt;
    if (probeError(check, probes) <= tolerance) return { q: at, passes };
  }
  return null;
}

/**
 * Above this order the Gram and the solve are split into 2×2 blocks, skipping the symmetric block
 * of the Gram and the zero block of R⁻ᵀ (a quarter of the O(m·n²) work); below, one product each.
 */
const BLOCKED_MIN_ORDER = 256;

/** AᵀA from Aᵀ (n×m, row-major). */
async function gram(at: Float64Array, m: number, n: number): Promise<Matrix> {
  if (n < BLOCKED_MIN_ORDER) return (await runProduct('gram', [{ data: at, rows: n, cols: m }]))[0]!;
  const h = half(n), k = n - h;
  const [g11, g12, g22] = await runProduct('gram2', [
    { data: at.subarray(0, h * m), rows: h, cols: m }, { data: at.subarray(h * m), rows: k, cols: m },
  ]);
  const g = new Float64Array(n * n);
  const out: Matrix = { data: g, rows: n, cols: n };
  place(g, n, g11!, 0, 0);
  place(g, n, g12!, 0, h);
  place(g, n, transpose(g12!), h, 0);
  place(g, n, g22!, h, h);
  return out;
}

/** Qᵀ = R⁻ᵀ·Aᵀ for upper-triangular x = R⁻¹, and the probe product c = QᵀQ·P. */
async function solve(x: Matrix, at: Float64Array, m: number, n: number, probes: Float64Array): Promise<{ qt: Float64Array; check: Float64Array }> {
  if (n < BLOCKED_MIN_ORDER) {
    const [qt, check] = await runProduct('solve', [x, { data: at, rows: n, cols: m }, { data: probes, rows: n, cols: PROBES }]);
    return { qt: qt!.data, check: check!.data };
  }
  const h = half(n), k = n - h;
  const [qt, check] = await runProduct('solve2', [
    block(x, 0, h, 0, h), block(x, 0, h, h, n), block(x, h, n, h, n),
    { data: at.subarray(0, h * m), rows: h, cols: m }, { data: at.subarray(h * m), rows: k, cols: m },
    { data: probes.subarray(0, h * PROBES), rows: h, cols: PROBES }, { data: probes.subarray(h * PROBES), rows: k, cols: PROBES },
  ]);
  return { qt: qt!.data, check: check!.data };
}

/** The first block's order: about half, a multiple of 4 (the JS Cholesky's block size). */
function half(n: number): number {
  return (Math.ceil(n / 2) + 3) & ~3;
}

/** PROBE_SAFETY · max over probes of ‖QᵀQ·p − p‖ from c = QᵀQ·P (both n×PROBES row-major). */
function probeError(c: Float64Array, p: Float64Array): number {
  let worst = 0;
  for (let k = 0; k < PROBES; k++) {
    let squared = 0;
    for (let j = k; j < c.length; j += PROBES) squared += (c[j]! - p[j]!) ** 2;
    if (!(squared <= Infinity)) return Infinity; // NaN
    worst = Math.max(worst, squared);
  }
  return PROBE_SAFETY * Math.sqrt(worst);
}

/**
 * R⁻¹ (upper triangular, row-major) for the Cholesky factor RᵀR = G of a symmetric n×n G, or null
 * when G is not numerically positive definite. Recursive 2×2 blocking: with R11 = chol(G11),
 * R12 = R11⁻ᵀG12, R22 = chol(G22 − R12ᵀR12), the inverse's off-diagonal block is −R11⁻¹·R12·R22⁻¹;
 * the products go to onnxruntime, small diagonal blocks to JS.
 */
export async function choleskyInverse(g: Matrix): Promise<Matrix | null> {
  const n = g.rows;
  if (n <= JS_CHOLESKY_MAX) return choleskyInverseJs(g);
  const h = half(n);
  const x11 = await choleskyInverse(block(g, 0, h, 0, h));
  if (x11 === null) return null;
  const [r12, s] = await runProduct('schur', [x11, block(g, 0, h, h, n), block(g, h, n, h, n)]);
  const x22 = await choleskyInverse(s!);
  if (x22 === null) return null;
  const [x12] = await runProduct('inverseBlock', [x11, r12!, x22]);
  const x = new Float64Array(n * n);
  place(x, n, x11, 0, 0);
  place(x, n, x12!, 0, h);
  place(x, n, x22, h, h);
  return { data: x, rows: n, cols: n };
}

function choleskyInverseJs(g: Matrix): Matrix | null {
  const n = g.rows;
  // Padded to a multiple of 4 for the blocked kernels, identity on the extra columns; G is
  // symmetric, so its row-major values are also its column-major ones.
  const np = (n + 3) & ~3;
  const work = new Float64Array(np * np);
  for (let i = 0; i < n; i++) work.set(g.data.subarray(i * n, (i + 1) * n), i * np);
  for (let j = n; j < np; j++) work[j * np + j] = 1;
  if (!choleskyUpper(work, np, PIVOT_FLOOR)) return null;
  const inverse = invertUpper(work, np); // column-major
  const x = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) x[i * n + j] = inverse[j * np + i]!;
  return { data: x, rows: n, cols: n };
}

function transpose(x: Matrix): Matrix {
  const out = new Float64Array(x.data.length);
  transposeInto(x.data, x.rows, x.cols, out);
  return { data: out, rows: x.cols, cols: x.rows };
}

function block(g: Matrix, r0: number, r1: number, c0: number, c1: number): Matrix {
  const cols = c1 - c0;
  const out = new Float64Array((r1 - r0) * cols);
  for (let r = r0; r < r1; r++) out.set(g.data.subarray(r * g.cols + c0, r * g.cols + c1), (r - r0) * cols);
  return { data: out, rows: r1 - r0, cols };
}

function place(target: Float64Array, ld: number, b: Matrix, r0: number, c0: number): void {
  for (let r = 0; r < b.rows; r++) target.set(b.data.subarray(r * b.cols, (r + 1) * b.cols), (r0 + r) * ld + c0);
}
