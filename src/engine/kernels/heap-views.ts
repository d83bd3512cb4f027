/**
 * Zero-copy views into the wasm heap, registered as backend tensors so the backend's own kernels
 * can run on a slice of a larger tensor (e.g. one matrix of a batch). A view shares memory with its
 * parent and must be released with releaseView, never disposed (that would free the parent's memory).
 */
import type * as tf from '@tensorflow/tfjs-core';

interface WasmInternals {
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number): tf.TensorInfo;
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number; refCount: number } | undefined; delete(dataId: object): boolean };
  wasm: { tfjs: { disposeData(id: number): void }; HEAPF32: Float32Array };
}

export function internals(backend: unknown): WasmInternals {
  const b = backend as Partial<WasmInternals>;
  if (typeof b.makeOutput !== 'function' || !b.dataIdMap || !b.wasm?.tfjs) {
    throw new Error('heap views need the tfjs wasm backend');
  }
  return b as WasmInternals;
}

/** Byte offset of a tensor's data in the wasm heap. */
export function heapOffset(backend: WasmInternals, info: tf.TensorInfo): number {
  const entry = backend.dataIdMap.get(info.dataId as object);
  if (!entry) throw new Error('tensor not on the wasm backend');
  return entry.memoryOffset;
}

/** A tensor of `shape` aliasing heap bytes [byteOffset, byteOffset + 4·size). float32 only. */
export function makeView(backend: WasmInternals, shape: number[], byteOffset: number): tf.TensorInfo {
  return backend.makeOutput(shape, 'float32', byteOffset);
}

/** Unregisters a view without freeing the memory it aliases. */
export function releaseView(backend: WasmInternals, view: tf.TensorInfo): void {
  const entry = backend.dataIdMap.get(view.dataId as object);
  if (!entry) return;
  backend.wasm.tfjs.disposeData(entry.id); // drops the C++ registration and cached XNNPACK operators
  backend.dataIdMap.delete(view.dataId as object);
}
