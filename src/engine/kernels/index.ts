/**
 * ghn's kernels for the tfjs wasm backend, and fused differentiable ops that work on any backend.
 *
 * registerWasmKernels() adds/replaces, for backend 'wasm':
 *   Conv2DBackpropFilter, Conv2DBackpropInput, DepthwiseConv2dNativeBackpropInput,
 *   DepthwiseConv2dNativeBackpropFilter (NHWC; conv ones also accept NCHW).
 */
import { convKernels } from './conv-kernels.js';
import { registerOrReplace } from './kernel-utils.js';

let registered = false;

/** Registers every ghn kernel for 'wasm'. Idempotent; call after the wasm backend is registered. */
export function registerWasmKernels(): void {
  if (registered) return;
  for (const k of convKernels) registerOrReplace(k);
  registered = true;
}

export { conv2dBackpropFilter, conv2dBackpropInput, depthwiseBackpropFilter, depthwiseBackpropInput } from './conv-backprop.js';
export { convGeometry, type ConvGeometry, type Pads2D, type PadSpec } from './conv-geometry.js';
