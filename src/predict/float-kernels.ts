/**
 * Two passes over large float32 arrays that predict makes on every prediction, in WebAssembly SIMD
 * (four floats per instruction) instead of a JS loop (one): scaling a weight tensor by its
 * calibration factor (ResNet-50: 24 M of its 25.5 M values per calibration) and checking that every
 * value is finite (each `--samples` sample's structure check).
 *
 * The module is a few hand-assembled instructions (below) with its own memory: the arrays live in
 * JS memory, which WebAssembly cannot address, so each is copied through a 1 MiB window (in, work,
 * out), which stays in cache. Measured on the 2-core machine (24 M values): the scale 155–175 ms
 * as a JS loop, 58–69 ms here; the finite check 100–145 ms, 34–53 ms here.
 *
 * Same bits as the JS loops: f32x4.mul is IEEE single multiplication, and `v *= s` on a Float32Array
 * with a float32 `s` rounds the exact double product of two floats to float32 — the same value.
 * Where WebAssembly SIMD is unavailable, the JS loops run instead.
 */

/** Floats per window: 1 MiB, 16 pages of WebAssembly memory. */
const WINDOW = 1 << 18;

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const section = (id: number, bytes: number[]) => [id, ...uleb(bytes.length), ...bytes];
const name = (s: string) => [...uleb(s.length), ...[...s].map((c) => c.charCodeAt(0))];
const SIMD = 0xfd;
const LOCAL_GET = 0x20, LOCAL_SET = 0x21, I32_CONST = 0x41, BLOCK = 0x02, LOOP = 0x03, VOID = 0x40, END = 0x0b;
const BR = 0x0c, BR_IF = 0x0d, I32_GE_U = 0x4f, I32_ADD = 0x6a, V128 = 0x7b;
const V128_LOAD = [SIMD, 0x00, 2, 0], V128_STORE = [SIMD, 0x0b, 2, 0]; // memarg: 4-byte alignment, offset 0
const F32X4_SPLAT = [SIMD, 0x13], F32X4_MUL = [SIMD, ...uleb(0xe6)], I32X4_SPLAT = [SIMD, 0x11];
const V128_AND = [SIMD, 0x4e], V128_OR = [SIMD, 0x50], I32X4_EQ = [SIMD, 0x37], V128_ANY_TRUE = [SIMD, 0x53];
/** `for (p = param 0; p < param 1; p += 16) body` */
const loop16 = (body: number[]) => [
  BLOCK, VOID, LOOP, VOID,
  LOCAL_GET, 0, LOCAL_GET, 1, I32_GE_U, BR_IF, 1,
  ...body,
  LOCAL_GET, 0, I32_CONST, 16, I32_ADD, LOCAL_SET, 0, BR, 0,
  END, END,
];
/** scale(p, end, s): the floats at bytes [p, end) times s (end − p a multiple of 16). */
const scaleBody = [
  1, 1, V128, // local 3: s in every lane
  LOCAL_GET, 2, ...F32X4_SPLAT, LOCAL_SET, 3,
  ...loop16([LOCAL_GET, 0, LOCAL_GET, 0, ...V128_LOAD, LOCAL_GET, 3, ...F32X4_MUL, ...V128_STORE]),
  END,
];
/** nonFinite(p, end): 1 if a float at bytes [p, end) has every exponent bit set (±Inf, NaN), else 0. */
const EXPONENT = [0x80, 0x80, 0x80, 0xfc, 0x07]; // 0x7f800000 as a signed LEB128
const nonFiniteBody = [
  2, 1, V128, 1, V128, // local 2: the exponent mask in every lane; local 3: lanes seen non-finite
  I32_CONST, ...EXPONENT, ...I32X4_SPLAT, LOCAL_SET, 2,
  ...loop16([LOCAL_GET, 3, LOCAL_GET, 0, ...V128_LOAD, LOCAL_GET, 2, ...V128_AND, LOCAL_GET, 2, ...I32X4_EQ, ...V128_OR, LOCAL_SET, 3]),
  LOCAL_GET, 3, ...V128_ANY_TRUE,
  END,
];
const MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
  ...section(1, [2, 0x60, 3, 0x7f, 0x7f, 0x7d, 0, 0x60, 2, 0x7f, 0x7f, 1, 0x7f]), // (i32, i32, f32) → (), (i32, i32) → i32
  ...section(3, [2, 0, 1]),
  ...section(5, [1, 0, (WINDOW * 4) / 65536]),
  ...section(7, [3, ...name('memory'), 2, 0, ...name('scale'), 0, 0, ...name('nonFinite'), 0, 1]),
  ...section(10, [2, ...uleb(scaleBody.length), ...scaleBody, ...uleb(nonFiniteBody.length), ...nonFiniteBody]),
]);

interface Kernels {
  heap: Float32Array;
  scale: (p: number, end: number, s: number) => void;
  nonFinite: (p: number, end: number) => number;
}

let kernels: Kernels | null | undefined;

/** The instantiated module (synchronous: it is 200 bytes), or null without WebAssembly SIMD. */
function simd(): Kernels | null {
  if (kernels !== undefined) return kernels;
  if (typeof WebAssembly !== 'object' || !WebAssembly.validate(MODULE)) return (kernels = null);
  const exports = new WebAssembly.Instance(new WebAssembly.Module(MODULE)).exports as unknown as {
    memory: WebAssembly.Memory; scale: Kernels['scale']; nonFinite: Kernels['nonFinite'];
  };
  return (kernels = { heap: new Float32Array(exports.memory.buffer, 0, WINDOW), scale: exports.scale, nonFinite: exports.nonFinite });
}

/**
 * values[i] *= scale for every i, in place. A float32 `scale` (as calibration's factors are) runs in
 * WebAssembly; another (a product of doubles, rounded once) only in the JS loop, which is that.
 */
export function scaleInPlace(values: Float32Array, scale: number): void {
  const s = scale;
  const k = Math.fround(s) === s ? simd() : null;
  let done = 0;
  if (k) {
    for (; values.length - done >= 4; done += WINDOW) {
      const n = Math.min(WINDOW, values.length - done) & ~3;
      const window = values.subarray(done, done + n);
      k.heap.set(window);
      k.scale(0, n * 4, s);
      window.set(k.heap.subarray(0, n));
      if (n < WINDOW) {
        done += n;
        break;
      }
    }
  }
  for (let i = done; i < values.length; i++) values[i]! *= s;
}

/** The index of the first value that is ±Infinity or NaN, or -1 when every value is finite. */
export function firstNonFinite(values: Float32Array): number {
  const k = simd();
  if (k) {
    let done = 0;
    for (; done < values.length; done += WINDOW) {
      const n = Math.min(WINDOW, values.length - done) & ~3;
      if (n === 0) break;
      k.heap.set(values.subarray(done, done + n));
      if (k.nonFinite(0, n * 4)) return scanFrom(values, done);
      if (n < WINDOW) {
        done += n;
        break;
      }
    }
    return scanFrom(values, done);
  }
  return scanFrom(values, 0);
}

function scanFrom(values: Float32Array, from: number): number {
  for (let i = from; i < values.length; i++) if (!Number.isFinite(values[i]!)) return i;
  return -1;
}
