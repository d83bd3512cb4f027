/**
 * Tiled matrix transposes. A plain double loop over a large matrix reads or writes with a stride
 * of a whole row, one cache miss per element; tiles of TILE×TILE keep both sides in cache
 * (~3–5× faster on the 1024×256 … 4608×512 weights diversify reorients).
 */
const TILE = 32;

type Numbers = Float32Array | Float64Array;

/** dst[c·rows + r] = src[r·cols + c] · scale for the row-major rows×cols `src`. */
export function transposeInto(src: Numbers, rows: number, cols: number, dst: Numbers, scale = 1): void {
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let r = r0; r < r1; r++) {
        const o = r * cols;
        for (let c = c0; c < c1; c++) dst[c * rows + r] = src[o + c]! * scale;
      }
    }
  }
}
