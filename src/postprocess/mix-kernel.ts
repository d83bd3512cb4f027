/**
 * The uniform-fan-in mix out[i] = (1 − t)·p[i] + t·fround((2u_i − 1)·bound) in WebAssembly SIMD,
 * u_i the i-th draw of mulberry32 from `seed` (createRng's stream). Mulberry32's state after i
 * draws is seed + i·0x6d2b79f5, so four draws are computed side by side (i32x4); the float part
 * runs two lanes at a time in float64, the operations of the JS loop in its order (no fused
 * multiply-add), rounded to float32 where it rounds: the same bits. The values go through a 1 MiB
 * window of the module's memory (WebAssembly cannot address JS arrays).
 *
 * ResNet-50's 25.5 M values: each sample of `predict --samples` mixes them once (see default-init.ts).
 */
import { assemble, F64, I32, instantiate, loop16, op, V128, WINDOW } from '../engine/wasm-simd.js';

export const MULBERRY_STEP = 0x6d2b79f5;

// Locals after the params (p, end, state, keep, t, bound): v128 each.
const ST = 6, X = 7, Y = 8, PV = 9, LO = 10, HI = 11, KEEP = 12, T = 13, BOUND = 14, TWO = 15, ONE = 16, SCALE = 17, STEP = 18;
const HIGH_HALF = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
const JOIN_LOW_HALVES = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];

/** (1 − t)·p + t·fround((2u − 1)·bound) for the two lanes of draws `y` (u32, low lanes) and floats `pv` (low lanes), as float32 in the low lanes. */
const mixHalf = (y: number[], pv: number[]) => [
  ...op.localGet(KEEP), ...pv, ...op.f64x2PromoteLowF32x4, ...op.f64x2Mul,
  ...op.localGet(T),
  ...op.localGet(TWO), ...y, ...op.f64x2ConvertLowI32x4U, ...op.localGet(SCALE), ...op.f64x2Mul, ...op.f64x2Mul,
  ...op.localGet(ONE), ...op.f64x2Sub, ...op.localGet(BOUND), ...op.f64x2Mul,
  ...op.f32x4DemoteF64x2Zero, ...op.f64x2PromoteLowF32x4,
  ...op.f64x2Mul, ...op.f64x2Add, ...op.f32x4DemoteF64x2Zero,
];

const MODULE = assemble([{
  // mix(p, end, state, keep, t, bound): the floats at bytes [p, end) mixed in place; `state` is
  // mulberry32's before the first of them.
  name: 'mix', params: [I32, I32, I32, F64, F64, F64], results: [], v128Locals: 13,
  code: [
    ...op.localGet(2), ...op.i32x4Splat,
    ...op.v128Const([MULBERRY_STEP, 2 * MULBERRY_STEP, 3 * MULBERRY_STEP, 4 * MULBERRY_STEP].map((v) => v | 0)), ...op.i32x4Add, ...op.localSet(ST),
    ...op.i32Const((4 * MULBERRY_STEP) | 0), ...op.i32x4Splat, ...op.localSet(STEP),
    ...op.localGet(3), ...op.f64x2Splat, ...op.localSet(KEEP),
    ...op.localGet(4), ...op.f64x2Splat, ...op.localSet(T),
    ...op.localGet(5), ...op.f64x2Splat, ...op.localSet(BOUND),
    ...op.f64Const(2), ...op.f64x2Splat, ...op.localSet(TWO),
    ...op.f64Const(1), ...op.f64x2Splat, ...op.localSet(ONE),
    ...op.f64Const(2 ** -32), ...op.f64x2Splat, ...op.localSet(SCALE),
    ...loop16([
      // x = imul(x ^ (x >>> 15), x | 1)
      ...op.localGet(ST), ...op.localGet(ST), ...op.i32Const(15), ...op.i32x4ShrU, ...op.v128Xor,
      ...op.localGet(ST), ...op.v128Const([1, 1, 1, 1]), ...op.v128Or, ...op.i32x4Mul, ...op.localSet(X),
      // x ^= x + imul(x ^ (x >>> 7), x | 61)
      ...op.localGet(X),
      ...op.localGet(X),
      ...op.localGet(X), ...op.localGet(X), ...op.i32Const(7), ...op.i32x4ShrU, ...op.v128Xor,
      ...op.localGet(X), ...op.v128Const([61, 61, 61, 61]), ...op.v128Or, ...op.i32x4Mul,
      ...op.i32x4Add, ...op.v128Xor, ...op.localSet(X),
      // y = x ^ (x >>> 14), the draw as u32
      ...op.localGet(X), ...op.localGet(X), ...op.i32Const(14), ...op.i32x4ShrU, ...op.v128Xor, ...op.localSet(Y),
      ...op.localGet(0), ...op.v128Load, ...op.localSet(PV),
      ...mixHalf(op.localGet(Y), op.localGet(PV)), ...op.localSet(LO),
      ...mixHalf([...op.localGet(Y), ...op.localGet(Y), ...op.shuffle(HIGH_HALF)], [...op.localGet(PV), ...op.localGet(PV), ...op.shuffle(HIGH_HALF)]),
      ...op.localSet(HI),
      ...op.localGet(0), ...op.localGet(LO), ...op.localGet(HI), ...op.shuffle(JOIN_LOW_HALVES), ...op.v128Store,
      ...op.localGet(ST), ...op.localGet(STEP), ...op.i32x4Add, ...op.localSet(ST),
    ]),
  ],
}]);

interface Kernel {
  window: Float32Array;
  mix: (p: number, end: number, state: number, keep: number, t: number, bound: number) => void;
}

let kernel: Kernel | null | undefined;

function simd(): Kernel | null {
  return kernel === undefined ? (kernel = instantiate<Kernel>(MODULE)) : kernel;
}

/** Whether the WebAssembly kernel runs here. */
export function mixUsesWebAssembly(): boolean {
  return simd() !== null;
}

/**
 * out[i] for i < the returned count (a multiple of 4: the rest is the caller's, from state
 * seed + count·MULBERRY_STEP), or 0 without WebAssembly SIMD.
 */
export function mixUniformFanInSimd(p: Float32Array, out: Float32Array, t: number, bound: number, seed: number): number {
  const k = simd();
  if (!k) return 0;
  const keep = 1 - t;
  const whole = p.length & ~3;
  for (let done = 0; done < whole; done += WINDOW) {
    const n = Math.min(WINDOW, whole - done);
    k.window.set(p.subarray(done, done + n));
    k.mix(0, n * 4, (seed + Math.imul(done, MULBERRY_STEP)) | 0, keep, t, bound);
    out.set(k.window.subarray(0, n), done);
  }
  return whole;
}
