/**
 * Transpose for wasm. The backend's loop for a 2-D transpose [R, C] → [C, R] writes each input row
 * down a column of stride R floats; when R is a multiple of 256 (a 1 KiB stride) those writes keep
 * landing in the same few cache sets, and the transpose runs 4–7× slower than its memory traffic
 * allows (measured, ms: [50176, 32] 11.0, [12544, 64] 3.5, [1024, 1024] 10.1). The same data moved as
 * [R/128, 128, C] → [C, R/128, 128] has a short write stride and gives the identical result
 * (1.7, 0.9, 5.2 ms). Every other transpose keeps the backend's kernel.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { WASM } from './kernel-utils.js';

/** Row counts that are multiples of this put the column writes in a few cache sets. */
const ALIASING_ROWS = 256;
/** Rows per block of the re-split transpose: the write stride it leaves. */
const BLOCK_ROWS = 128;
/** With fewer columns the backend's loop is fast anyway (e.g. [50176, 9]: 0.18 vs 0.28 ms). */
const MIN_COLUMNS = 16;

/**
 * The transpose as [rows, cols] → [cols, rows] when it is one (size-1 axes dropped, the
 * permutation moving one contiguous run of input axes after the rest), else undefined.
 */
export function asMatrixTranspose(shape: readonly number[], perm: readonly number[]): [number, number] | undefined {
  const moved = perm.filter((axis) => shape[axis] !== 1);
  // Split point: the output starts with input axes k..n-1 in order, followed by 0..k-1 in order.
  const k = moved[0];
  if (k === undefined || k === 0) return undefined;
  const expected = [...moved].sort((a, b) => a - b);
  const tail = expected.filter((a) => a >= k), head = expected.filter((a) => a < k);
  const isSwap = [...tail, ...head].every((a, i) => a === moved[i]);
  if (!isSwap || head.length === 0) return undefined;
  const rows = head.reduce((p, a) => p * shape[a]!, 1), cols = tail.reduce((p, a) => p * shape[a]!, 1);
  return [rows, cols];
}

export function makeTransposeKernel(original: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: 'Transpose',
    backendName: WASM,
    kernelFunc: (args) => {
      const x = args.inputs.x!;
      const perm = (args.attrs as { perm: number[] }).perm;
      const matrix = x.dtype === 'string' ? undefined : asMatrixTranspose(x.shape, perm);
      if (!matrix || matrix[0] % ALIASING_ROWS !== 0 || matrix[1] < MIN_COLUMNS) return original.kernelFunc(args);
      const [rows, cols] = matrix;
      // Shapes only: a TensorInfo with another shape over the same data is a reshape.
      const blocked = { dataId: x.dataId, dtype: x.dtype, shape: [rows / BLOCK_ROWS, BLOCK_ROWS, cols] };
      const out = original.kernelFunc({ ...args, inputs: { x: blocked }, attrs: { perm: [2, 0, 1] } }) as tf.TensorInfo;
      return { dataId: out.dataId, dtype: out.dtype, shape: perm.map((a) => x.shape[a]!) };
    },
  };
}
