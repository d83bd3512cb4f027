/**
 * Dense float64 kernels behind the thin QR: Gram matrix, blocked Cholesky and the triangular
 * solve Q = A·R⁻¹. Matrices are column-major (element (r, c) at r + c·ld) so the long dimension
 * of a tall matrix is contiguous, and every dimension is a multiple of 4 — the caller pads (zero
 * rows, and identity for extra columns of R) — so the 4×4 register blocks need no edge cases.
 * A 4×4 block does 16 multiply-adds per 8 loads, which keeps scalar JS near its throughput limit.
 */

/** Rows of A processed together in the Gram kernel; keeps the active column segments in L2. */
const GRAM_ROW_CHUNK = 512;
/** Rows processed together in the triangular solve, so the Q rows being read stay in L2. */
const SOLVE_ROW_CHUNK = 64;

/**
 * acc[4·b + a] += Σ_{k0 ≤ k < k1} x[k, i0 + a] · x[k, j0 + b] for column-major x with leading
 * dimension ld: the 4×4 block of XᵀX at (i0, j0) over a range of rows.
 */
function blockDot(x: Float64Array, ld: number, i0: number, j0: number, k0: number, k1: number, acc: Float64Array): void {
  const a0o = i0 * ld, a1o = a0o + ld, a2o = a1o + ld, a3o = a2o + ld;
  const b0o = j0 * ld, b1o = b0o + ld, b2o = b1o + ld, b3o = b2o + ld;
  let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
  let s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
  for (let k = k0; k < k1; k++) {
    const a0 = x[a0o + k], a1 = x[a1o + k], a2 = x[a2o + k], a3 = x[a3o + k];
    const b0 = x[b0o + k], b1 = x[b1o + k], b2 = x[b2o + k], b3 = x[b3o + k];
    s00 += a0 * b0; s01 += a0 * b1; s02 += a0 * b2; s03 += a0 * b3;
    s10 += a1 * b0; s11 += a1 * b1; s12 += a1 * b2; s13 += a1 * b3;
    s20 += a2 * b0; s21 += a2 * b1; s22 += a2 * b2; s23 += a2 * b3;
    s30 += a3 * b0; s31 += a3 * b1; s32 += a3 * b2; s33 += a3 * b3;
  }
  acc[0] += s00; acc[1] += s10; acc[2] += s20; acc[3] += s30;
  acc[4] += s01; acc[5] += s11; acc[6] += s21; acc[7] += s31;
  acc[8] += s02; acc[9] += s12; acc[10] += s22; acc[11] += s32;
  acc[12] += s03; acc[13] += s13; acc[14] += s23; acc[15] += s33;
}

/** G = AᵀA (n×n, symmetric, fully written) for a column-major m×n A; m and n multiples of 4. */
export function gram(a: Float64Array, m: number, n: number, g: Float64Array): void {
  g.fill(0, 0, n * n);
  const acc = new Float64Array(16);
  for (let k0 = 0; k0 < m; k0 += GRAM_ROW_CHUNK) {
    const k1 = Math.min(m, k0 + GRAM_ROW_CHUNK);
    for (let j = 0; j < n; j += 4) {
      for (let i = 0; i <= j; i += 4) {
        acc.fill(0);
        blockDot(a, m, i, j, k0, k1, acc);
        for (let b = 0; b < 4; b++) {
          const o = (j + b) * n + i;
          for (let r = 0; r < 4; r++) g[o + r] += acc[4 * b + r];
        }
      }
    }
  }
  for (let j = 0; j < n; j++) {
    for (let i = j + 1; i < n; i++) g[j * n + i] = g[i * n + j];
  }
}

/**
 * In-place Cholesky G = RᵀR, R upper triangular column-major (strict lower triangle zeroed);
 * n a multiple of 4. Left-looking by 4×4 blocks: block (I, J) of R needs Σ_k R[k, I]ᵀR[k, J]
 * over the rows above I, the same kernel as the Gram. Returns false when a pivot is not clearly
 * positive relative to its diagonal entry: the columns are numerically dependent.
 */
export function choleskyUpper(g: Float64Array, n: number, relativePivotFloor: number): boolean {
  const diagonal = new Float64Array(n);
  for (let j = 0; j < n; j++) diagonal[j] = g[j * n + j];
  const s = new Float64Array(16);
  for (let j0 = 0; j0 < n; j0 += 4) {
    for (let i0 = 0; i0 <= j0; i0 += 4) {
      // s = G[I, J] − R[:i0, I]ᵀ R[:i0, J]
      s.fill(0);
      blockDot(g, n, i0, j0, 0, i0, s);
      for (let b = 0; b < 4; b++) for (let a = 0; a < 4; a++) s[4 * b + a] = g[(j0 + b) * n + i0 + a] - s[4 * b + a];
      if (i0 < j0) {
        // R[I, J] = R[I, I]⁻ᵀ s: forward substitution down the 4 rows.
        for (let b = 0; b < 4; b++) {
          const jo = (j0 + b) * n;
          for (let a = 0; a < 4; a++) {
            const io = (i0 + a) * n;
            let v = s[4 * b + a];
            for (let c = 0; c < a; c++) v -= g[io + i0 + c] * g[jo + i0 + c];
            g[jo + i0 + a] = v / g[io + i0 + a];
          }
        }
      } else {
        // Diagonal block: unblocked Cholesky of the 4×4 s.
        for (let a = 0; a < 4; a++) {
          const ao = (j0 + a) * n;
          let d = s[4 * a + a];
          for (let c = 0; c < a; c++) d -= g[ao + j0 + c] * g[ao + j0 + c];
          const original = diagonal[j0 + a];
          if (!(original > 0) || !(d > relativePivotFloor * original)) return false;
          const pivot = Math.sqrt(d);
          g[ao + j0 + a] = pivot;
          for (let b = a + 1; b < 4; b++) {
            const bo = (j0 + b) * n;
            let v = s[4 * b + a];
            for (let c = 0; c < a; c++) v -= g[ao + j0 + c] * g[bo + j0 + c];
            g[bo + j0 + a] = v / pivot;
          }
        }
      }
    }
  }
  for (let j = 0; j < n; j++) g.fill(0, j * n + j + 1, (j + 1) * n);
  return true;
}

/**
 * Q = A·R⁻¹ in place (a becomes Q), R upper triangular column-major n×n; m, n multiples of 4.
 * Q[:, J] = (A[:, J] − Q[:, :j0]·R[:j0, J]) solved against the 4×4 diagonal block of R. Forward
 * substitution instead of an explicit inverse: no extra n³/6 pass and better accuracy.
 * `upperInput`: a (n×n) is upper triangular, so is Q, and the zero blocks are skipped.
 */
export function solveUpperRight(a: Float64Array, m: number, n: number, r: Float64Array, upperInput = false): void {
  for (let r0 = 0; r0 < m; r0 += SOLVE_ROW_CHUNK) {
    const r1 = Math.min(m, r0 + SOLVE_ROW_CHUNK);
    for (let j0 = 0; j0 < n; j0 += 4) {
      const u0o = j0 * n, u1o = u0o + n, u2o = u1o + n, u3o = u2o + n;
      const c0 = j0 * m, c1 = c0 + m, c2 = c1 + m, c3 = c2 + m;
      for (let row = r0; row < r1; row += 4) {
        if (upperInput && j0 < row) continue;
        let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
        let s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
        const i0 = upperInput ? row : 0;
        for (let i = i0, qo = row + i0 * m; i < j0; i++, qo += m) {
          const q0 = a[qo], q1 = a[qo + 1], q2 = a[qo + 2], q3 = a[qo + 3];
          const b0 = r[u0o + i], b1 = r[u1o + i], b2 = r[u2o + i], b3 = r[u3o + i];
          s00 += q0 * b0; s01 += q0 * b1; s02 += q0 * b2; s03 += q0 * b3;
          s10 += q1 * b0; s11 += q1 * b1; s12 += q1 * b2; s13 += q1 * b3;
          s20 += q2 * b0; s21 += q2 * b1; s22 += q2 * b2; s23 += q2 * b3;
          s30 += q3 * b0; s31 += q3 * b1; s32 += q3 * b2; s33 += q3 * b3;
        }
        // Column j0 + b of the block: subtract the block's earlier columns, divide by the pivot.
        const d0 = r[u0o + j0], d1 = r[u1o + j0 + 1], d2 = r[u2o + j0 + 2], d3 = r[u3o + j0 + 3];
        const r01 = r[u1o + j0], r02 = r[u2o + j0], r12 = r[u2o + j0 + 1];
        const r03 = r[u3o + j0], r13 = r[u3o + j0 + 1], r23 = r[u3o + j0 + 2];
        for (let t = 0; t < 4; t++) {
          const x0 = (a[c0 + row + t] - (t === 0 ? s00 : t === 1 ? s10 : t === 2 ? s20 : s30)) / d0;
          const x1 = (a[c1 + row + t] - (t === 0 ? s01 : t === 1 ? s11 : t === 2 ? s21 : s31) - x0 * r01) / d1;
          const x2 = (a[c2 + row + t] - (t === 0 ? s02 : t === 1 ? s12 : t === 2 ? s22 : s32) - x0 * r02 - x1 * r12) / d2;
          const x3 = (a[c3 + row + t] - (t === 0 ? s03 : t === 1 ? s13 : t === 2 ? s23 : s33) - x0 * r03 - x1 * r13 - x2 * r23) / d3;
          a[c0 + row + t] = x0; a[c1 + row + t] = x1; a[c2 + row + t] = x2; a[c3 + row + t] = x3;
        }
      }
    }
  }
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

/**
 * R⁻¹ (upper triangular, column-major n×n, n a multiple of 4) of an upper-triangular R with a
 * positive diagonal: the blocked solve I·R⁻¹, skipping the blocks that are zero in an upper
 * triangular result (n³/6 multiply-adds, at the 4×4 kernel's speed).
 */
export function invertUpper(r: Float64Array, n: number): Float64Array {
  const x = new Float64Array(n * n);
  for (let j = 0; j < n; j++) x[j * n + j] = 1;
  solveUpperRight(x, n, n, r, true);
  return x;
}
