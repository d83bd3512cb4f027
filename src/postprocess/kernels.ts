/**
 * Dense float64 kernels behind the thin QR: Gram matrix, Cholesky, triangular inverse and
 * triangular product. All matrices are column-major (element (r, c) of an m×n matrix at r + c·m)
 * so that the long dimension of a tall matrix is contiguous. The hot loops use 4×4 register
 * blocks: 16 multiply-adds per 8 loads is what keeps scalar JS near its throughput ceiling.
 */

/** Rows of A processed together in the Gram kernel; keeps the active column segments in L2. */
const GRAM_ROW_CHUNK = 512;
/** Rows of A processed together in the triangular product. */
const APPLY_ROW_CHUNK = 64;

/**
 * G = AᵀA for a column-major m×n A. G is n×n and symmetric (so its layout does not matter);
 * only blocks on and above the diagonal are computed, then mirrored.
 */
export function gram(a: Float64Array, m: number, n: number, g: Float64Array): void {
  g.fill(0, 0, n * n);
  const n4 = n - (n % 4);
  for (let k0 = 0; k0 < m; k0 += GRAM_ROW_CHUNK) {
    const k1 = Math.min(m, k0 + GRAM_ROW_CHUNK);
    for (let i = 0; i < n4; i += 4) {
      const a0o = i * m, a1o = a0o + m, a2o = a1o + m, a3o = a2o + m;
      for (let j = i; j < n4; j += 4) {
        const b0o = j * m, b1o = b0o + m, b2o = b1o + m, b3o = b2o + m;
        let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
        let s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
        for (let k = k0; k < k1; k++) {
          const a0 = a[a0o + k], a1 = a[a1o + k], a2 = a[a2o + k], a3 = a[a3o + k];
          const b0 = a[b0o + k], b1 = a[b1o + k], b2 = a[b2o + k], b3 = a[b3o + k];
          s00 += a0 * b0; s01 += a0 * b1; s02 += a0 * b2; s03 += a0 * b3;
          s10 += a1 * b0; s11 += a1 * b1; s12 += a1 * b2; s13 += a1 * b3;
          s20 += a2 * b0; s21 += a2 * b1; s22 += a2 * b2; s23 += a2 * b3;
          s30 += a3 * b0; s31 += a3 * b1; s32 += a3 * b2; s33 += a3 * b3;
        }
        // Stored at (i + r, j + c), i.e. column j + c; the lower triangle is filled at the end.
        let p = j * n + i;
        g[p] += s00; g[p + 1] += s10; g[p + 2] += s20; g[p + 3] += s30; p += n;
        g[p] += s01; g[p + 1] += s11; g[p + 2] += s21; g[p + 3] += s31; p += n;
        g[p] += s02; g[p + 1] += s12; g[p + 2] += s22; g[p + 3] += s32; p += n;
        g[p] += s03; g[p + 1] += s13; g[p + 2] += s23; g[p + 3] += s33;
      }
    }
  }
  // Columns past the last full block of 4: plain dot products (i ≤ j).
  for (let j = n4; j < n; j++) {
    const bo = j * m;
    for (let i = 0; i <= j; i++) {
      const ao = i * m;
      let s = 0;
      for (let k = 0; k < m; k++) s += a[ao + k] * a[bo + k];
      g[j * n + i] = s;
    }
  }
  for (let j = 0; j < n; j++) {
    for (let i = j + 1; i < n; i++) g[j * n + i] = g[i * n + j];
  }
}

/**
 * In-place Cholesky G = RᵀR with R upper triangular, column-major; the strict lower triangle is
 * zeroed. Returns false when a pivot is not clearly positive (relative to the diagonal it came
 * from), i.e. the columns are numerically dependent and the caller must use Householder instead.
 */
export function choleskyUpper(g: Float64Array, n: number, relativePivotFloor: number): boolean {
  for (let j = 0; j < n; j++) {
    const jo = j * n;
    // R[i][j] for i < j: (G[i][j] − R[:i, i]·R[:i, j]) / R[i][i]; columns of R are contiguous.
    for (let i = 0; i < j; i++) {
      const io = i * n;
      let s = g[jo + i];
      for (let k = 0; k < i; k++) s -= g[io + k] * g[jo + k];
      g[jo + i] = s / g[io + i];
    }
    let d = g[jo + j];
    const original = d;
    for (let k = 0; k < j; k++) d -= g[jo + k] * g[jo + k];
    if (!(d > relativePivotFloor * original) || !(original > 0)) return false;
    g[jo + j] = Math.sqrt(d);
    for (let i = j + 1; i < n; i++) g[jo + i] = 0;
  }
  return true;
}

/** Inverse of an upper-triangular column-major R into `out` (upper triangular, zeros below). */
export function invertUpper(r: Float64Array, n: number, out: Float64Array): void {
  out.fill(0, 0, n * n);
  for (let j = 0; j < n; j++) {
    // Back substitution for column j of R⁻¹ in axpy form: every step reads a contiguous column of R.
    const xo = j * n;
    out[xo + j] = 1;
    for (let k = j; k >= 0; k--) {
      const xk = out[xo + k] / r[k * n + k];
      out[xo + k] = xk;
      if (xk === 0) continue;
      const ko = k * n;
      for (let i = 0; i < k; i++) out[xo + i] -= xk * r[ko + i];
    }
  }
}

/** out (m×n) = A (m×n) · U (n×n upper triangular, zeros below), all column-major. */
export function multiplyUpper(a: Float64Array, m: number, n: number, u: Float64Array, out: Float64Array): void {
  const n4 = n - (n % 4);
  for (let r0 = 0; r0 < m; r0 += APPLY_ROW_CHUNK) {
    const r1 = Math.min(m, r0 + APPLY_ROW_CHUNK);
    const r4 = r0 + ((r1 - r0) - ((r1 - r0) % 4));
    for (let j = 0; j < n4; j += 4) {
      const u0o = j * n, u1o = u0o + n, u2o = u1o + n, u3o = u2o + n;
      // U[i][j + c] is zero for i > j + c, so the sum stops at i = j + 3.
      const iEnd = j + 4;
      for (let r = r0; r < r4; r += 4) {
        let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
        let s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
        for (let i = 0, ao = r; i < iEnd; i++, ao += m) {
          const a0 = a[ao], a1 = a[ao + 1], a2 = a[ao + 2], a3 = a[ao + 3];
          const b0 = u[u0o + i], b1 = u[u1o + i], b2 = u[u2o + i], b3 = u[u3o + i];
          s00 += a0 * b0; s01 += a0 * b1; s02 += a0 * b2; s03 += a0 * b3;
          s10 += a1 * b0; s11 += a1 * b1; s12 += a1 * b2; s13 += a1 * b3;
          s20 += a2 * b0; s21 += a2 * b1; s22 += a2 * b2; s23 += a2 * b3;
          s30 += a3 * b0; s31 += a3 * b1; s32 += a3 * b2; s33 += a3 * b3;
        }
        let p = j * m + r;
        out[p] = s00; out[p + 1] = s10; out[p + 2] = s20; out[p + 3] = s30; p += m;
        out[p] = s01; out[p + 1] = s11; out[p + 2] = s21; out[p + 3] = s31; p += m;
        out[p] = s02; out[p + 1] = s12; out[p + 2] = s22; out[p + 3] = s32; p += m;
        out[p] = s03; out[p + 1] = s13; out[p + 2] = s23; out[p + 3] = s33;
      }
      for (let r = r4; r < r1; r++) {
        for (let c = j; c < j + 4; c++) out[c * m + r] = rowTimesColumn(a, m, u, n, r, c);
      }
    }
    for (let c = n4; c < n; c++) {
      for (let r = r0; r < r1; r++) out[c * m + r] = rowTimesColumn(a, m, u, n, r, c);
    }
  }
}

function rowTimesColumn(a: Float64Array, m: number, u: Float64Array, n: number, r: number, c: number): number {
  let s = 0;
  const uo = c * n;
  for (let i = 0; i <= c; i++) s += a[i * m + r] * u[uo + i];
  return s;
}

/** out = X · Y for upper-triangular column-major n×n X and Y (the product is upper triangular). */
export function multiplyUpperUpper(x: Float64Array, y: Float64Array, n: number, out: Float64Array): void {
  out.fill(0, 0, n * n);
  for (let j = 0; j < n; j++) {
    const yo = j * n, oo = j * n;
    for (let k = 0; k <= j; k++) {
      const ykj = y[yo + k];
      if (ykj === 0) continue;
      const xo = k * n;
      for (let i = 0; i <= k; i++) out[oo + i] += x[xo + i] * ykj;
    }
  }
}
