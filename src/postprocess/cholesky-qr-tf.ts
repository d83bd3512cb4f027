/**
 * CholeskyQR with its two O(m·n²) products — the Gram AᵀA and Q = A·R⁻¹ — on TensorFlow.js in
 * float32 (XNNPACK on wasm runs them at ~15–20 GFLOP/s against ~3 for the float64 JS loops), and
 * the O(n³) Cholesky and triangular inverse in float64 JS. A float32 Gram puts cond(A)²·ε₃₂ into
 * QᵀQ − I, so the float64 probe check decides whether a second pass on Q (CholeskyQR2) is needed;
 * null tells the caller to use the float64 path: the float32 Gram was not safely positive definite,
 * or two passes did not reach the tolerance (cond(A) ≳ 1/√ε₃₂ ≈ 4e3).
 * Only plain 2-D products without transpose flags are used: those are XNNPACK's fast case on wasm.
 */
import * as tf from '../engine/tfjs-core.js';
import { choleskyUpper, invertUpper } from './kernels.js';
import { orthogonalityError } from './orthogonality.js';

/** Backends whose matMul beats float64 JS loops; the pure-JS cpu backend does not. */
const FAST_BACKENDS = new Set(['wasm', 'tensorflow']);
/**
 * A Cholesky pivot below this fraction of its diagonal means the column is within ~ε₃₂·cond² of
 * the span of the earlier ones: the float32 Gram no longer determines R.
 */
const PIVOT_FLOOR = 1e-5;

/** Whether an initialized tfjs backend can run the products (never initializes one itself). */
export function tfQrAvailable(): boolean {
  // engine().backendName is null until a backend is set; reading tf.getBackend() would pick one.
  return FAST_BACKENDS.has(tf.engine().backendName ?? '');
}

export interface TfQrResult {
  /** m×n with orthonormal columns, column-major, float32. */
  q: Float32Array;
  passes: 1 | 2;
}

/**
 * Sign-corrected thin Q (diag R > 0) of a column-major m×n `a`, orthonormal to `tolerance`
 * (probe estimate of ‖QᵀQ − I‖_F), or null when the float64 path must take over.
 */
export function choleskyQrTf(a: Float32Array | Float64Array, m: number, n: number, tolerance: number): TfQrResult | null {
  // Column-major m×n is row-major n×m: the tensor holds Aᵀ, and Q comes back the same way.
  let at = tf.tensor2d(a instanceof Float32Array ? a : Float32Array.from(a), [n, m]);
  try {
    for (const passes of [1, 2] as const) {
      const qt = choleskyPass(at, m, n);
      at.dispose();
      if (qt === null) return null;
      at = qt;
      const q = qt.dataSync() as Float32Array;
      if (orthogonalityError(q, m, m, n) <= tolerance) return { q, passes };
    }
    return null;
  } finally {
    at.dispose();
  }
}

/** Qᵀ = (A·R⁻¹)ᵀ with RᵀR = AᵀA, from Aᵀ (n×m); null when the Cholesky fails. */
function choleskyPass(at: tf.Tensor2D, m: number, n: number): tf.Tensor2D | null {
  // The wasm matMul is fast only without transpose flags: materialize A once.
  const a = tf.transpose(at);
  try {
    const gramTensor = tf.matMul(at, a);
    const g32 = gramTensor.dataSync();
    gramTensor.dispose();
    // Pad to a multiple of 4 for the blocked Cholesky: identity on the extra columns.
    const np = (n + 3) & ~3;
    const g = new Float64Array(np * np);
    for (let j = 0; j < n; j++) for (let i = 0; i < n; i++) g[j * np + i] = g32[j * n + i];
    for (let j = n; j < np; j++) g[j * np + j] = 1;
    if (!choleskyUpper(g, np, PIVOT_FLOOR)) return null;
    const rInverse = invertUpper(g, np);
    // R⁻¹ as a row-major n×n tensor (the leading corner of the padded inverse).
    const rInv32 = new Float32Array(n * n);
    for (let i = 0; i < n; i++) for (let j = i; j < n; j++) rInv32[i * n + j] = rInverse[j * np + i];
    return tf.tidy(() => tf.transpose(tf.matMul(a, tf.tensor2d(rInv32, [n, n])))) as tf.Tensor2D;
  } finally {
    a.dispose();
  }
}
