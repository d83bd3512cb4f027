/**
 * The encoding of small hand-assembled WebAssembly modules (binary format, SIMD proposal) for the
 * float loops predict runs over whole models (src/predict/float-kernels.ts,
 * src/postprocess/mix-kernel.ts): a handful of instructions each, so a toolchain is not worth it.
 * Every module has one memory, exported as `memory`, sized for a 1 MiB window of floats.
 */

export const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};

/** Signed LEB128 of a 32-bit integer (i32.const). */
export const sleb = (n: number): number[] => {
  const out: number[] = [];
  n |= 0;
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
};

const f64Bytes = (x: number): number[] => [...new Uint8Array(Float64Array.of(x).buffer)];
const i32x4Bytes = (lanes: number[]): number[] => [...new Uint8Array(Int32Array.from(lanes).buffer)];

const SIMD = 0xfd;
const simd = (op: number) => [SIMD, ...uleb(op)];

export const op = {
  localGet: (i: number) => [0x20, i],
  localSet: (i: number) => [0x21, i],
  i32Const: (n: number) => [0x41, ...sleb(n)],
  f64Const: (x: number) => [0x44, ...f64Bytes(x)],
  i32Add: [0x6a],
  i32GeU: [0x4f],
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  br: (depth: number) => [0x0c, depth],
  brIf: (depth: number) => [0x0d, depth],
  end: [0x0b],
  v128Load: [...simd(0x00), 2, 0], // memarg: 4-byte alignment, offset 0
  v128Store: [...simd(0x0b), 2, 0],
  v128Const: (lanes: number[]) => [...simd(0x0c), ...i32x4Bytes(lanes)],
  /** Lanes of bytes from a (0–15) and b (16–31). */
  shuffle: (bytes: number[]) => [...simd(0x0d), ...bytes],
  i32x4Splat: simd(0x11),
  f32x4Splat: simd(0x13),
  f64x2Splat: simd(0x14),
  v128And: simd(0x4e),
  v128Or: simd(0x50),
  v128Xor: simd(0x51),
  v128AnyTrue: simd(0x53),
  i32x4Eq: simd(0x37),
  f32x4DemoteF64x2Zero: simd(0x5e),
  f64x2PromoteLowF32x4: simd(0x5f),
  i32x4ShrU: simd(0xad),
  i32x4Add: simd(0xae),
  i32x4Mul: simd(0xb5),
  f32x4Mul: simd(0xe6),
  f64x2Add: simd(0xf0),
  f64x2Sub: simd(0xf1),
  f64x2Mul: simd(0xf2),
  f64x2ConvertLowI32x4U: simd(0xff),
};

export const I32 = 0x7f, F32 = 0x7d, F64 = 0x7c, V128 = 0x7b;

/** `for (p = local 0; p < local 1; p += 16) body` */
export const loop16 = (body: number[]): number[] => [
  ...op.block, ...op.loop,
  ...op.localGet(0), ...op.localGet(1), ...op.i32GeU, ...op.brIf(1),
  ...body,
  ...op.localGet(0), ...op.i32Const(16), ...op.i32Add, ...op.localSet(0), ...op.br(0),
  ...op.end, ...op.end,
];

export interface WasmFunction {
  name: string;
  params: number[];
  results: number[];
  /** Extra locals after the params, all v128. */
  v128Locals: number;
  code: number[];
}

const section = (id: number, bytes: number[]) => [id, ...uleb(bytes.length), ...bytes];
const name = (s: string) => [...uleb(s.length), ...[...s].map((c) => c.charCodeAt(0))];

/** Floats a window holds: 1 MiB, 16 pages of WebAssembly memory. */
export const WINDOW = 1 << 18;

/** The module's bytes: the functions (one type each), a WINDOW-float memory, everything exported. */
export function assemble(functions: WasmFunction[]): Uint8Array<ArrayBuffer> {
  const types = functions.flatMap((f) => [0x60, ...uleb(f.params.length), ...f.params, ...uleb(f.results.length), ...f.results]);
  const bodies = functions.flatMap((f) => {
    const body = [...(f.v128Locals ? [1, ...uleb(f.v128Locals), V128] : [0]), ...f.code, ...op.end];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, [...uleb(functions.length), ...types]),
    ...section(3, [...uleb(functions.length), ...functions.map((_, i) => i)]),
    ...section(5, [1, 0, ...uleb((WINDOW * 4) / 65536)]),
    ...section(7, [...uleb(functions.length + 1), ...name('memory'), 2, 0, ...functions.flatMap((f, i) => [...name(f.name), 0, ...uleb(i)])]),
    ...section(10, [...uleb(functions.length), ...bodies]),
  ]);
}

/** The instance's exports and a view of its window, or null where WebAssembly SIMD is unavailable. */
export function instantiate<T>(bytes: Uint8Array<ArrayBuffer>): (T & { window: Float32Array }) | null {
  if (typeof WebAssembly !== 'object' || !WebAssembly.validate(bytes)) return null;
  // Synchronous: the modules are a few hundred bytes.
  const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as unknown as T & { memory: WebAssembly.Memory };
  return { ...exports, window: new Float32Array(exports.memory.buffer, 0, WINDOW) };
}
