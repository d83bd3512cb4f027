/**
 * Two passes over large float32 arrays that predict makes on every prediction, in WebAssembly SIMD
 * (four floats per instruction) instead of a JS loop (one): scaling a weight tensor by its
 * calibration factor (ResNet-50: 24 M of its 25.5 M values per calibration) and checking that every
 * value is finite (each `--samples` sample's structure check).
 *
 * The module is a few hand-assembled instructions (below; src/engine/wasm-simd.ts encodes them) with its own memory: the arrays live in
 * JS memory, which WebAssembly cannot address, so each is copied through a 1 MiB window (in, work,
 * out), which stays in cache. Measured on the 2-core machine (24 M values): the scale 155–175 ms
 * as a JS loop, 58–69 ms here; the finite check 100–145 ms, 34–53 ms here.
 *
 * Same bits as the JS loops: f32x4.mul is IEEE single multiplication, and `v *= s` on a Float32Array
 * with a float32 `s` rounds the exact double product of two floats to float32 — the same value.
 * Where WebAssembly SIMD is unavailable, the JS loops run instead.
 */

import { assemble, F32, I32, instantiate, loop16, op, WINDOW } from '../engine/wasm-simd.js';

const EXPONENT = 0x7f800000;
const MODULE = assemble([
  {
    // scale(p, end, s): the floats at bytes [p, end) times s (end − p a multiple of 16); local 3: s in every lane.
    name: 'scale', params: [I32, I32, F32], results: [], v128Locals: 1,
    code: [
      ...op.localGet(2), ...op.f32x4Splat, ...op.localSet(3),
      ...loop16([...op.localGet(0), ...op.localGet(0), ...op.v128Load, ...op.localGet(3), ...op.f32x4Mul, ...op.v128Store]),
    ],
  },
  {
    // nonFinite(p, end): 1 if a float at bytes [p, end) has every exponent bit set (±Inf, NaN), else 0.
    // Local 2: the exponent mask in every lane; local 3: the lanes seen non-finite.
    name: 'nonFinite', params: [I32, I32], results: [I32], v128Locals: 2,
    code: [
      ...op.i32Const(EXPONENT), ...op.i32x4Splat, ...op.localSet(2),
      ...loop16([
        ...op.localGet(3), ...op.localGet(0), ...op.v128Load, ...op.localGet(2), ...op.v128And, ...op.localGet(2), ...op.i32x4Eq,
        ...op.v128Or, ...op.localSet(3),
      ]),
      ...op.localGet(3), ...op.v128AnyTrue,
    ],
  },
]);

interface Kernels {
  window: Float32Array;
  scale: (p: number, end: number, s: number) => void;
  nonFinite: (p: number, end: number) => number;
}

let kernels: Kernels | null | undefined;

function simd(): Kernels | null {
  return kernels === undefined ? (kernels = instantiate<Kernels>(MODULE)) : kernels;
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
      k.window.set(window);
      k.scale(0, n * 4, s);
      window.set(k.window.subarray(0, n));
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
      k.window.set(values.subarray(done, done + n));
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

/** Whether the WebAssembly kernels run here (else the JS loops do). */
export function usesWebAssembly(): boolean {
  return simd() !== null;
}
