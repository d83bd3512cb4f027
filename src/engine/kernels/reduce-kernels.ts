/**
 * Sum and Mean over leading axes for wasm (bias gradients, batch statistics): the backend
 * transposes the reduced axes inward and loops; as a global average pool it is ~10× faster.
 * Other reductions keep the backend's kernel.
 */
import * as tf from '../tfjs-core.js';
import { WASM, asTensor } from './kernel-utils.js';
import { columnMeans } from './reductions.js';

interface ReduceAttrs { axis: number | number[]; keepDims: boolean }

export function makeLeadingReduceKernel(kind: 'Sum' | 'Mean', original: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: kind,
    backendName: WASM,
    kernelFunc: (args) => {
      const x = args.inputs.x!;
      const { axis, keepDims } = args.attrs as unknown as ReduceAttrs;
      const rank = x.shape.length;
      const axes = [...new Set((Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + rank : a)))].sort((p, q) => p - q);
      const leading = axes.length > 0 && axes.length < rank && axes.every((a, i) => a === i);
      if (x.dtype !== 'float32' || !leading) return original.kernelFunc(args);
      return tf.tidy(() => {
        const kept = x.shape.slice(axes.length);
        const rows = x.shape.slice(0, axes.length).reduce((p, d) => p * d, 1);
        const cols = kept.reduce((p, d) => p * d, 1);
        let r: tf.Tensor = columnMeans(tf.reshape(asTensor(x), [rows, cols]) as tf.Tensor2D);
        if (kind === 'Sum') r = tf.mul(r, rows);
        return tf.reshape(r, keepDims ? [...axes.map(() => 1), ...kept] : kept);
      }) as unknown as tf.TensorInfo;
    },
  };
}
