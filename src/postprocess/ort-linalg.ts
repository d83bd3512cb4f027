/**
 * Float64 matrix products on onnxruntime-node. Its CPU kernels (MLAS) run a float64 GEMM at
 * ~20–30 GFLOP/s per core and use every core, against ~2.5 for float64 JS loops and ~17 for
 * float32 tfjs-wasm: fast enough to run CholeskyQR in float64, where one pass is exact to
 * rounding for the ill-conditioned (low-rank + noise) weights a GHN predicts. Each product is a
 * one-node (or two-node) ONNX model with symbolic dimensions, built once per process.
 * Matrices are row-major Float64Arrays.
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
}

const valueInfo = ([name, rows, cols]: Port): ValueInfoProto => ({
  name,
  type: { tensorType: { elemType: DataType.DOUBLE, shape: { dim: [{ dimParam: rows }, { dimParam: cols }] } } },
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

/** The products the CholeskyQR needs. Dimension names only document the shapes. */
const MODELS = {
  /** g = x·xᵀ for x [n, m]: the Gram AᵀA of A = xᵀ. */
  gram: { inputs: [['x', 'n', 'm']], outputs: [['g', 'n', 'n']], nodes: [gemm(['x', 'x'], 'g', { transB: true })] },
  /**
   * qt = lt·at (Qᵀ = R⁻ᵀ·Aᵀ for lt = R⁻ᵀ) and the orthogonality probe c = Qᵀ·(Q·p), in one run so
   * that Q is not sent back for the check.
   */
  solve: {
    inputs: [['lt', 'n', 'n'], ['at', 'n', 'm'], ['p', 'n', 'probes']],
    outputs: [['qt', 'n', 'm'], ['c', 'n', 'probes']],
    nodes: [gemm(['lt', 'at'], 'qt'), gemm(['qt', 'p'], 'qp', { transA: true }), gemm(['qt', 'qp'], 'c')],
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
} satisfies Record<string, ModelSpec>;

export type OrtModelName = keyof typeof MODELS;

/** A row-major float64 matrix. */
export interface Matrix {
  data: Float64Array;
  rows: number;
  cols: number;
}

const sessions = new Map<OrtModelName, Promise<ort.InferenceSession>>();

function modelBytes(spec: ModelSpec): Uint8Array {
  return encodeModel({
    proto: {
      irVersion: 8,
      producerName: 'ghn',
      opsetImport: [{ domain: '', version: 13 }],
      graph: { name: 'linalg', node: [...spec.nodes], input: spec.inputs.map(valueInfo), output: spec.outputs.map(valueInfo) },
    },
  } as Parameters<typeof encodeModel>[0]);
}

function session(name: OrtModelName): Promise<ort.InferenceSession> {
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

/** Releases the cached sessions (tests; long-lived processes keep them). */
export async function releaseOrtLinalg(): Promise<void> {
  const all = [...sessions.values()];
  sessions.clear();
  for (const s of all) await (await s).release();
}
