/**
 * Plumbing for ghn's wasm kernels: kernels written with ordinary tf ops (nested ops inside a
 * kernel are not taped, and the engine accepts Tensors as kernel outputs), and direct access to
 * the wasm heap for the few kernels written as plain loops.
 */
import * as tf from '../tfjs-core.js';

export const WASM = 'wasm';

/** Kernel inputs arrive as Tensors when called through the engine; wrap bare TensorInfos. */
export function asTensor<T extends tf.Tensor = tf.Tensor>(info: tf.TensorInfo): T {
  if (info instanceof tf.Tensor) return info as T;
  return tf.engine().makeTensorFromTensorInfo(info) as T;
}

/**
 * Builds a kernel config whose implementation is a composition of tf ops on the active backend.
 * Intermediates are freed by tidy; the result is handed to the engine as the kernel's output.
 */
export function opsKernel(
  kernelName: string,
  impl: (inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown>) => tf.Tensor | tf.Tensor[],
): tf.KernelConfig {
  return {
    kernelName,
    backendName: WASM,
    kernelFunc: ({ inputs, attrs }) => tf.tidy(() => {
      const wrapped: Record<string, tf.Tensor> = {};
      for (const [k, v] of Object.entries(inputs)) if (v) wrapped[k] = asTensor(v);
      return impl(wrapped, attrs as Record<string, unknown>);
    }) as unknown as tf.TensorInfo,
  };
}

/** The subset of the wasm backend object the loop kernels use. */
export interface WasmBackendView {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

export function wasmView(backend: unknown): WasmBackendView {
  return backend as WasmBackendView;
}

/** Registers a kernel, replacing any the backend already has under that name. */
export function registerOrReplace(config: tf.KernelConfig): void {
  if (tf.getKernel(config.kernelName, config.backendName)) tf.unregisterKernel(config.kernelName, config.backendName);
  tf.registerKernel(config);
}
