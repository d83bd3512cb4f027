/**
 * Add, Sub, Multiply, RealDiv for wasm when one operand is a short row broadcast over the rows of
 * the other ([..., C] ⊕ [C]: biases, per-channel statistics). The backend's broadcasting loop pays
 * per row, so short rows are slow (measured, 802,816 elements, ms: rows of 16 0.73, of 64 0.30,
 * of 256 0.15). The same op on rows k times longer, against the row tiled k times, gives the same
 * result: out[r·k + i, j] = a[r·k + i, j] ⊕ b[j] for every i < k. Other shapes keep the backend's kernel.
 */
import * as tf from '../tfjs-core.js';
import { WASM, type WasmBackendView, wasmView } from './kernel-utils.js';

/** Rows are widened to at least this many elements, when a divisor of the row count allows. */
const WIDE_ROW = 256;
/** ... and to at most this many (the tiled row is a fresh heap tensor per call). */
const MAX_WIDE_ROW = 2048;

export interface RowBroadcastPlan {
  /** Which input is the full-size one. */
  full: 'a' | 'b';
  /** Row length (the short operand's size) and row count of the full operand. */
  row: number;
  rows: number;
  /** Times the row is tiled. */
  k: number;
}

/** The widening of a ⊕ b, or undefined when the shapes are not a short row broadcast over rows. */
export function rowBroadcastPlan(aShape: readonly number[], bShape: readonly number[]): RowBroadcastPlan | undefined {
  const size = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);
  const [aSize, bSize] = [size(aShape), size(bShape)];
  if (aSize === bSize || Math.min(aSize, bSize) === 0) return undefined;
  const full = aSize > bSize ? 'a' : 'b';
  const [long, short] = full === 'a' ? [aShape, bShape] : [bShape, aShape];
  const shortDims = short.slice(short.findIndex((d) => d !== 1));
  if (shortDims.length > long.length) return undefined;
  const trailing = long.slice(long.length - shortDims.length);
  if (!shortDims.every((d, i) => d === trailing[i])) return undefined;
  const row = size(shortDims), rows = size(long) / row;
  // (A scalar operand is already fast: the backend has a separate path for it.)
  if (row === 1 || row >= WIDE_ROW) return undefined;
  for (let k = Math.ceil(WIDE_ROW / row); k * row <= MAX_WIDE_ROW; k++) {
    if (rows % k === 0) return { full, row, rows, k };
  }
  return undefined;
}

/** The short operand repeated k times, as a new heap tensor. */
function tiledRow(backend: WasmBackendView, row: tf.TensorInfo, length: number, k: number): tf.TensorInfo {
  const tiled = backend.makeOutput([length * k], 'float32');
  const dst = backend.typedArrayFromHeap(tiled);
  const src = backend.typedArrayFromHeap(row);
  for (let i = 0; i < k; i++) dst.set(src, i * length);
  return tiled;
}

export function makeRowBroadcastKernel(original: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: original.kernelName,
    backendName: WASM,
    kernelFunc: (args) => {
      const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const plan = a.dtype === 'float32' && b.dtype === 'float32' ? rowBroadcastPlan(a.shape, b.shape) : undefined;
      if (!plan) return original.kernelFunc(args);
      const backend = wasmView(args.backend);
      const [long, short] = plan.full === 'a' ? [a, b] : [b, a];
      const wide = plan.row * plan.k;
      const widened = { dataId: long.dataId, dtype: long.dtype, shape: [plan.rows / plan.k, wide] };
      const tiled = tiledRow(backend, short, plan.row, plan.k);
      const inputs = plan.full === 'a' ? { a: widened, b: tiled } : { a: tiled, b: widened };
      const out = original.kernelFunc({ ...args, inputs }) as tf.TensorInfo;
      (args.backend as tf.KernelBackend).disposeData(tiled.dataId);
      return { dataId: out.dataId, dtype: out.dtype, shape: tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape) };
    },
  };
}

/** The elementwise kernels this applies to. */
export const ROW_BROADCAST_KERNELS = ['Add', 'Sub', 'Multiply', 'RealDiv'] as const;
