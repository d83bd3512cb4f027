/**
 * BatchMatMul for wasm. The backend's kernel is fast (XNNPACK, ~18 GFLOP/s) only for a single
 * 2-D product without transpose flags; with a flag or a batch it falls back to a naive loop
 * (~1–2 GFLOP/s). Here every case is reduced to that fast one: flags become explicit transposes,
 * a batch against a shared right-hand matrix folds into one tall product, and other batches
 * (equal batch shapes, or a shared left-hand matrix) run one product per entry on zero-copy views.
 * Batch shapes that broadcast otherwise keep the backend's kernel.
 */
import * as tf from '../tfjs-core.js';
import { internals, heapOffset, makeView, releaseView } from './heap-views.js';
import { WASM, asTensor } from './kernel-utils.js';
import { wasmPoolThreads } from '../wasm-threads.js';

/**
 * Multiply-adds per batch entry up to which the backend's batched loop beats one XNNPACK product
 * per entry (each costs ~45 µs of operator setup and packing, and with a thread pool a dispatch).
 * Measured single-threaded, ms per batch: 256 × 17·17·16 1.4 loop vs 1.5–4.5 per entry (2.1–2.6
 * with a transpose flag); 256 × 24³ 3.3 vs 2.0.
 */
const LOOP_MAX_PRODUCT = { singleThread: 17 * 17 * 17, pooled: 64 * 64 * 64 };

interface MatMulAttrs { transposeA: boolean; transposeB: boolean }

const swapLast = (rank: number): number[] => {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return perm;
};

export function makeBatchMatMulKernel(original: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: 'BatchMatMul',
    backendName: WASM,
    kernelFunc: (args) => {
      const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const { transposeA, transposeB } = args.attrs as unknown as MatMulAttrs;
      const outerA = a.shape.slice(0, -2), outerB = b.shape.slice(0, -2);
      const batchA = outerA.reduce((p, d) => p * d, 1), batchB = outerB.reduce((p, d) => p * d, 1);
      const sameOuter = outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i]);
      const simple = !transposeA && !transposeB && batchA === 1 && batchB === 1;
      // Shapes that broadcast unevenly, or non-float data, keep the backend's implementation.
      const handled = a.dtype === 'float32' && b.dtype === 'float32' && (batchA === 1 || batchB === 1 || sameOuter);
      if (simple || !handled) return original.kernelFunc(args);
      // Small products (attention heads) run in the backend's batched loop. With a thread pool
      // (GHN_WASM_THREADS ≥ 2) every XNNPACK call also pays a dispatch to the pool's threads (~1 ms
      // of CPU when the machine is loaded), so far larger products stay in the loop (vit_small: 10× the step).
      const rows = a.shape[a.shape.length - (transposeA ? 1 : 2)]!, inner = a.shape[a.shape.length - (transposeA ? 2 : 1)]!;
      const cols = b.shape[b.shape.length - (transposeB ? 2 : 1)]!;
      const loopMax = wasmPoolThreads() > 1 ? LOOP_MAX_PRODUCT.pooled : LOOP_MAX_PRODUCT.singleThread;
      if (batchA > 1 && batchB > 1 && rows * inner * cols <= loopMax) return original.kernelFunc(args);
      return tf.tidy(() => {
        if (transposeA && !transposeB && batchA === 1 && batchB === 1 && a.shape.length === 2 && b.shape.length === 2) {
          return transposedLeftProduct(asTensor<tf.Tensor2D>(a), asTensor<tf.Tensor2D>(b));
        }
        let at = asTensor(a), bt = asTensor(b);
        if (transposeA) at = tf.transpose(at, swapLast(at.rank));
        if (transposeB) bt = tf.transpose(bt, swapLast(bt.rank));
        const m = at.shape[at.rank - 2]!, k = at.shape[at.rank - 1]!, n = bt.shape[bt.rank - 1]!;
        if (batchB === 1) {
          // [..., M, K] × [K, N] = one [(…·M), K] × [K, N] product.
          const prod = tf.matMul(tf.reshape(at, [batchA * m, k]), tf.reshape(bt, [k, n]));
          return tf.reshape(prod, [...tf.backend_util.assertAndGetBroadcastShape(outerA, outerB), m, n]);
        }
        // A shared left matrix ([M, K] × [..., K, N]) or equal batches: one product per entry.
        const outer = tf.backend_util.assertAndGetBroadcastShape(outerA, outerB);
        return batchedProduct(args.backend, original, tf.reshape(at, [batchA, m, k]), tf.reshape(bt, [batchB, k, n]), [...outer, m, n]);
      }) as unknown as tf.TensorInfo;
    },
  };
}

/**
 * aᵀ·b for a [K, M], b [K, N] — the weight-gradient product (Xᵀ·dY). XNNPACK repacks its right
 * operand on every call (~3× the cost of a transpose per element, measured), so pack the smaller
 * one: either transpose a and pack b, or compute (bᵀ·a)ᵀ, packing a.
 */
function transposedLeftProduct(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  const [k, m] = a.shape, n = b.shape[1];
  // Costs in element-visits: transpose 1, pack 3.
  const packB = k * m + 3 * k * n;
  const packA = k * n + 3 * k * m + m * n;
  if (packA < packB) return tf.transpose(tf.matMul(tf.transpose(b), a));
  return tf.matMul(tf.transpose(a), b);
}

/**
 * One fast 2-D product per batch entry, run on zero-copy views of a and b; each result is copied
 * into its slot of one output tensor (memcpy inside the heap).
 */
function batchedProduct(backendObj: unknown, original: tf.KernelConfig, a: tf.Tensor, b: tf.Tensor, outShape: number[]): tf.Tensor {
  const backend = internals(backendObj);
  const [batchA, m, k] = a.shape as [number, number, number];
  const [batchB, , n] = b.shape as [number, number, number];
  const batch = Math.max(batchA, batchB);
  // A batch of 1 is shared by every entry (stride 0).
  const aStride = batchA === 1 ? 0 : m * k * 4, bStride = batchB === 1 ? 0 : k * n * 4;
  const out = tf.engine().makeTensorFromTensorInfo(backend.makeOutput([batch, m, n], 'float32'));
  const aBase = heapOffset(backend, a), bBase = heapOffset(backend, b), outBase = heapOffset(backend, out) >>> 2;
  for (let i = 0; i < batch; i++) {
    const av = makeView(backend, [m, k], aBase + i * aStride);
    const bv = makeView(backend, [k, n], bBase + i * bStride);
    const prod = original.kernelFunc({ inputs: { a: av, b: bv }, attrs: { transposeA: false, transposeB: false }, backend: backendObj as tf.KernelBackend }) as tf.TensorInfo;
    const src = heapOffset(backend, prod) >>> 2;
    const heap = backend.wasm.HEAPF32; // re-read: the product's allocation may have grown the heap
    heap.copyWithin(outBase + i * m * n, src, src + m * n);
    releaseView(backend, av);
    releaseView(backend, bv);
    (backendObj as tf.KernelBackend).disposeData(prod.dataId);
  }
  return tf.reshape(out, outShape);
}

/**
 * _FusedMatMul (matMul + bias + activation, used by fused ops and layers). With a transpose flag
 * the wasm kernel is ~7× slower (measured) and, with transposeB and a bias, WRONG (tfjs-wasm 4.22
 * adds bias[j] along the wrong axis for some rows; checked against cpu). Make transposes explicit.
 */
export function makeFusedMatMulKernel(original: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: '_FusedMatMul',
    backendName: WASM,
    kernelFunc: (args) => {
      const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const attrs = args.attrs as unknown as MatMulAttrs & Record<string, unknown>;
      if ((!attrs.transposeA && !attrs.transposeB) || a.dtype !== 'float32' || b.dtype !== 'float32') {
        return original.kernelFunc(args);
      }
      return tf.tidy(() => {
        const at = attrs.transposeA ? tf.transpose(asTensor(a), swapLast(a.shape.length)) : asTensor(a);
        const bt = attrs.transposeB ? tf.transpose(asTensor(b), swapLast(b.shape.length)) : asTensor(b);
        const inputs: tf.NamedTensorMap = { a: at, b: bt };
        for (const [k, v] of Object.entries(args.inputs)) if (k !== 'a' && k !== 'b' && v) inputs[k] = asTensor(v);
        return tf.engine().runKernel('_FusedMatMul', inputs, { ...attrs, transposeA: false, transposeB: false } as unknown as tf.NamedAttrMap) as tf.Tensor;
      }) as unknown as tf.TensorInfo;
    },
  };
}
