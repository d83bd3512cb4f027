/**
 * Householder thin QR on a column-major m×n work array (m ≥ n). Unconditionally stable, so it
 * is the fallback for matrices whose columns are (numerically) dependent — exactly the tiled,
 * low-rank weights GHN-2 decoders produce when no noise is added. Reflectors are applied to
 * four columns per pass over the reflector so each load of v serves four multiply-adds.
 */

/**
 * Factor `a` in place: on return R is on and above the diagonal and the reflectors' tails below it.
 * Returns the reflector coefficients τ (v has an implicit leading 1).
 */
function factor(a: Float64Array, m: number, n: number): Float64Array {
  const tau = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const ko = k * m;
    let tail = 0;
    for (let i = k + 1; i < m; i++) tail += a[ko + i] * a[ko + i];
    const alpha = a[ko + k];
    if (tail === 0) {
      // Already zero below the diagonal: H = I, R[k][k] = alpha (sign fixed later).
      tau[k] = 0;
      continue;
    }
    const norm = Math.sqrt(alpha * alpha + tail);
    // beta takes the sign opposite to alpha so alpha − beta does not cancel.
    const beta = alpha >= 0 ? -norm : norm;
    tau[k] = (beta - alpha) / beta;
    const scale = 1 / (alpha - beta);
    for (let i = k + 1; i < m; i++) a[ko + i] *= scale;
    a[ko + k] = beta;
    applyReflector(a, m, k, a, k, m, k + 1, n, tau[k]);
  }
  return tau;
}

/**
 * Apply H = I − τ·v·vᵀ (v = [1, src[vo+k+1 …]] stored in column `vCol` of `src` from row k) to
 * columns [c0, c1) of `dst` (column-major with leading dimension `ld`), rows k … m−1.
 */
function applyReflector(
  src: Float64Array, m: number, vCol: number,
  dst: Float64Array, k: number, ld: number, c0: number, c1: number, tau: number,
): void {
  if (tau === 0) return;
  const vo = vCol * m;
  let c = c0;
  for (; c + 4 <= c1; c += 4) {
    const o0 = c * ld, o1 = o0 + ld, o2 = o1 + ld, o3 = o2 + ld;
    let w0 = dst[o0 + k], w1 = dst[o1 + k], w2 = dst[o2 + k], w3 = dst[o3 + k];
    for (let i = k + 1; i < m; i++) {
      const v = src[vo + i];
      w0 += v * dst[o0 + i]; w1 += v * dst[o1 + i]; w2 += v * dst[o2 + i]; w3 += v * dst[o3 + i];
    }
    w0 *= tau; w1 *= tau; w2 *= tau; w3 *= tau;
    dst[o0 + k] -= w0; dst[o1 + k] -= w1; dst[o2 + k] -= w2; dst[o3 + k] -= w3;
    for (let i = k + 1; i < m; i++) {
      const v = src[vo + i];
      dst[o0 + i] -= w0 * v; dst[o1 + i] -= w1 * v; dst[o2 + i] -= w2 * v; dst[o3 + i] -= w3 * v;
    }
  }
  for (; c < c1; c++) {
    const o = c * ld;
    let w = dst[o + k];
    for (let i = k + 1; i < m; i++) w += src[vo + i] * dst[o + i];
    w *= tau;
    dst[o + k] -= w;
    for (let i = k + 1; i < m; i++) dst[o + i] -= w * src[vo + i];
  }
}

/**
 * Thin QR of column-major `a` (overwritten). Returns Q (m×n, column-major) and R (n×n upper,
 * column-major) with diag(R) ≥ 0: Q's column k is flipped with R's row k, and a zero diagonal
 * counts as positive so that Q stays orthonormal for rank-deficient input.
 */
export function householderQr(a: Float64Array, m: number, n: number): { q: Float64Array; r: Float64Array } {
  const tau = factor(a, m, n);
  const r = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    for (let i = 0; i <= j; i++) r[j * n + i] = a[j * m + i];
  }
  // Q = H_0 … H_{n−1} · I[:, :n], accumulated backwards so each H_k only touches columns ≥ k.
  const q = new Float64Array(m * n);
  for (let k = 0; k < n; k++) q[k * m + k] = 1;
  for (let k = n - 1; k >= 0; k--) applyReflector(a, m, k, q, k, m, k, n, tau[k]);
  for (let k = 0; k < n; k++) {
    if (r[k * n + k] >= 0) continue;
    const qo = k * m;
    for (let i = 0; i < m; i++) q[qo + i] = -q[qo + i];
    for (let j = k; j < n; j++) r[j * n + k] = -r[j * n + k];
  }
  return { q, r };
}
