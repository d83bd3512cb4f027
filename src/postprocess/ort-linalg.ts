/**
 * Float64 matrix products on onnxruntime-node. Its CPU kernels (MLAS) run a float64 GEMM at
 * ~20–30 GFLOP/s per core and use every core, against ~2.5 for float64 JS loops and ~17 for
 * float32 tfjs-wasm: fast enough to run CholeskyQR in float64, where one pass is exact to
 * rounding for the ill-conditioned (low-rank + noise) weights a GHN predicts. Each product is a
 * one-node (or two-node) ONNX model with symbolic dimensions, built once per process.
 * Matrices are row-major Float64Arrays. One float32 product serves the GHN decoder: its low-rank
 * weights are A·Bᵀ + shift with 32 columns, tens of millions of outputs that MLAS writes at memory speed.
 */
import os from 'node:os';
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../onnx/index.js';
import { AttributeType, DataType, type AttributeProto, type NodeProto, type ValueInfoProto } from '../onnx/types.js';

/** A 2-D input or output: name and two symbolic dimension names. */
type Port = readonly [name: string, rows: string, cols: string];

interface ModelSpec {
  inputs: readonly Port[];
  outputs: readonly Port[];
  nodes: readonly NodeProto[];
  /** Element type of every input and output (default float64). */
  elemType?: DataType;
}

const valueInfo = ([name, rows, cols]: Port, elemType: DataType): ValueInfoProto => ({
  name,
  type: { tensorType: { elemType, shape: { dim: [{ dimParam: rows }, { dimParam: cols }] } } },
});

const intAttr = (name: string, i: number): AttributeProto => ({ name, type: AttributeType.INT, i });
const floatAttr = (name: string, f: number): AttributeProto => ({ name, type: AttributeType.FLOAT, f });

function gemm(inputs: string[], output: string, attrs: { transA?: boolean; transB?: boolean; alpha?: number; beta?: number } = {}): NodeProto {
  const attribute: AttributeProto[] = [];
  if (attrs.transA) attribute.push(intAttr('transA', 1));
  if (attrs.transB) attribute.push(intAttr('transB', 1));
  if (attrs.alpha !== undefined) attribute.push(floatAttr('alpha', attrs.alpha));
  if (attrs.beta !== undefined) attribute.push(floatAttr('beta', attrs.beta));
  return { opType: 'Gemm', input: inputs, output: [output], attribute };
}

/** Concatenation along the first axis. */
function concat(inputs: string[], output: string): NodeProto {
  return { opType: 'Concat', input: inputs, output: [output], attribute: [intAttr('axis', 0)] };
}

/** The products the CholeskyQR needs. Dimension names only document the shapes. */
const MODELS = {
  /** g = x·xᵀ for x [n, m]: the Gram AᵀA of A = xᵀ. */
  gram: { inputs: [['x', 'n', 'm']], outputs: [['g', 'n', 'n']], nodes: [gemm(['x', 'x'], 'g', { transB: true })] },
  /**
   * qt = xᵀ·at (Qᵀ = R⁻ᵀ·Aᵀ for x = R⁻¹, transposed by the GEMM rather than copied) and the
   * orthogonality probe c = Qᵀ·(Q·p), in one run so that Q is not sent back for the check.
   */
  solve: {
    inputs: [['x', 'n', 'n'], ['at', 'n', 'm'], ['p', 'n', 'probes']],
    outputs: [['qt', 'n', 'm'], ['c', 'n', 'probes']],
    nodes: [gemm(['x', 'at'], 'qt', { transA: true }), gemm(['qt', 'p'], 'qp', { transA: true }), gemm(['qt', 'qp'], 'c')],
  },
  /**
   * The Gram of A = [A1 A2] from x1 = A1ᵀ [h, m] and x2 = A2ᵀ [k, m]: its three distinct blocks
   * (the symmetric fourth is not computed, a quarter of the work).
   */
  gram2: {
    inputs: [['x1', 'h', 'm'], ['x2', 'k', 'm']],
    outputs: [['g11', 'h', 'h'], ['g12', 'h', 'k'], ['g22', 'k', 'k']],
    nodes: [gemm(['x1', 'x1'], 'g11', { transB: true }), gemm(['x1', 'x2'], 'g12', { transB: true }), gemm(['x2', 'x2'], 'g22', { transB: true })],
  },
  /**
   * Qᵀ = R⁻ᵀ·Aᵀ by blocks of the upper-triangular R⁻¹ = [[r11, r12], [0, r22]] (its zero block is
   * skipped: a quarter of the work; the GEMMs transpose the blocks): q1 = r11ᵀ·x1,
   * q2 = r12ᵀ·x1 + r22ᵀ·x2, with the probe c = Qᵀ(Q·p) for p = [p1; p2]. The halves are joined
   * here (Qᵀ = [q1; q2]): a native copy instead of one in JS.
   */
  solve2: {
    inputs: [['r11', 'h', 'h'], ['r12', 'h', 'k'], ['r22', 'k', 'k'], ['x1', 'h', 'm'], ['x2', 'k', 'm'], ['p1', 'h', 'probes'], ['p2', 'k', 'probes']],
    outputs: [['qt', 'n', 'm'], ['c', 'n', 'probes']],
    nodes: [
      gemm(['r11', 'x1'], 'q1', { transA: true }),
      gemm(['r12', 'x1'], 't', { transA: true }),
      gemm(['r22', 'x2', 't'], 'q2', { transA: true, beta: 1 }),
      gemm(['q1', 'p1'], 'qp1', { transA: true }),
      gemm(['q2', 'p2', 'qp1'], 'qp', { transA: true, beta: 1 }),
      gemm(['q1', 'qp'], 'c1'),
      gemm(['q2', 'qp'], 'c2'),
      concat(['q1', 'q2'], 'qt'),
      concat(['c1', 'c2'], 'c'),
    ],
  },
  /**
   * Block step of a Cholesky with inverse: r12 = x11ᵀ·g12 and the Schur complement
   * s = g22 − r12ᵀ·r12, for x11 = R11⁻¹.
   */
  schur: {
    inputs: [['x11', 'h', 'h'], ['g12', 'h', 'k'], ['g22', 'k', 'k']],
    outputs: [['r12', 'h', 'k'], ['s', 'k', 'k']],
    nodes: [gemm(['x11', 'g12'], 'r12', { transA: true }), gemm(['r12', 'r12', 'g22'], 's', { transA: true, alpha: -1, beta: 1 })],
  },
  /** Off-diagonal block of an upper-triangular inverse: x12 = −x11·r12·x22. */
  inverseBlock: {
    inputs: [['x11', 'h', 'h'], ['r12', 'h', 'k'], ['x22', 'k', 'k']],
    outputs: [['x12', 'h', 'k']],
    nodes: [gemm(['x11', 'r12'], 't'), gemm(['t', 'x22'], 'x12', { alpha: -1 })],
  },
  /** w = a·bᵀ + shift in float32: a GHN weight from its low-rank factors (see lowRankProduct). */
  lowRank: {
    inputs: [['a', 'm', 'k'], ['b', 'n', 'k'], ['shift', 'one', 'one']], outputs: [['w', 'm', 'n']],
    nodes: [gemm(['a', 'b', 'shift'], 'w', { transB: true, beta: 1 })], elemType: DataType.FLOAT,
  },
} satisfies Record<string, ModelSpec>;

export type OrtModelName = Exclude<keyof typeof MODELS, 'lowRank'>;
export type SessionName = keyof typeof MODELS;

/** A row-major float64 matrix. */
export interface Matrix {
  data: Float64Array;
  rows: number;
  cols: number;
}

const sessions = new Map<SessionName, Promise<ort.InferenceSession>>();

function modelBytes(spec: ModelSpec): Uint8Array {
  const elemType = spec.elemType ?? DataType.DOUBLE;
  return encodeModel({
    proto: {
      irVersion: 8,
      producerName: 'ghn',
      opsetImport: [{ domain: '', version: 13 }],
      graph: { name: 'linalg', node: [...spec.nodes], input: spec.inputs.map((p) => valueInfo(p, elemType)), output: spec.outputs.map((p) => valueInfo(p, elemType)) },
    },
  } as Parameters<typeof encodeModel>[0]);
}

function session(name: SessionName): Promise<ort.InferenceSession> {
  let s = sessions.get(name);
  if (!s) {
    // One intra-op thread per core: the products are the only work running while they run. No
    // spinning between runs: the JS work in between needs the core, and spinning threads burn
    // CPU on a shared machine.
    s = ort.InferenceSession.create(modelBytes(MODELS[name]), {
      intraOpNumThreads: os.availableParallelism?.() ?? os.cpus().length,
      graphOptimizationLevel: 'all',
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    sessions.set(name, s);
  }
  return s;
}

/**
 * Starts building the named products' sessions (and, the first time, onnxruntime itself: ~25 ms),
 * for a caller that has idle time before their first use; errors surface at that use.
 */
export function prepareProducts(names: readonly SessionName[]): void {
  for (const name of names) session(name).catch(() => undefined);
}

/** Runs one of the products; outputs come back in the model's output order. */
export async function runProduct(name: OrtModelName, inputs: readonly Matrix[]): Promise<Matrix[]> {
  const spec = MODELS[name];
  const feeds: Record<string, ort.Tensor> = {};
  spec.inputs.forEach(([port], i) => {
    const m = inputs[i]!;
    feeds[port] = new ort.Tensor('float64', m.data, [m.rows, m.cols]);
  });
  const results = await (await session(name)).run(feeds);
  return spec.outputs.map(([port]) => {
    const t = results[port]!;
    return { data: t.data as Float64Array, rows: t.dims[0]!, cols: t.dims[1]! };
  });
}

/** a·bᵀ + shift for row-major float32 a [m, k] and b [n, k], as a row-major [m, n]. */
export async function lowRankProduct(a: Float32Array, m: number, b: Float32Array, n: number, k: number, shift = 0): Promise<Float32Array> {
  const feeds = {
    a: new ort.Tensor('float32', a, [m, k]), b: new ort.Tensor('float32', b, [n, k]), shift: new ort.Tensor('float32', Float32Array.of(shift), [1, 1]),
  };
  return (await (await session('lowRank')).run(feeds)).w!.data as Float32Array;
}

/** Releases the cached sessions (tests; long-lived processes keep them). */
export async function releaseOrtLinalg(): Promise<void> {
  const all = [...sessions.values()];
  sessions.clear();
  for (const s of all) await (await s).release();
}
