/**
 * ghn's kernels for the tfjs wasm backend, and fused differentiable ops that work on any backend.
 *
 * registerWasmKernels() adds or replaces, for backend 'wasm' only:
 *   Conv2DBackpropFilter, Conv2DBackpropInput (NHWC; NCHW via transposes)
 *   DepthwiseConv2dNativeBackpropInput, DepthwiseConv2dNativeBackpropFilter (NHWC, any dilation)
 *   BatchMatMul, _FusedMatMul (transpose flags and batches reduced to XNNPACK's fast 2-D product)
 *   Sum, Mean over leading axes (as a global average pool)
 *   MaxPoolGrad, AvgPoolGrad, UnsortedSegmentSum, Tile, Slice (loops / memcpy over the wasm heap)
 *   Cast to the same dtype, Identity (share the buffer instead of copying)
 *   Transpose of a matrix whose row count puts the backend's writes in a few cache sets
 *   Add, Sub, Multiply, RealDiv of a short row broadcast over rows (on widened rows)
 *
 * Fused ops (any backend; channel/feature axis last):
 *   batchNormTrain(x [..., C], gamma [C], beta [C], eps) → { y, mean [C], variance [C] }
 *   channelAffine(x [..., C], scale [C], shift? [C]) → x·scale + shift
 *   layerNorm(x [..., D], gamma [D], beta [D], eps) → y
 *   groupedConv2d(x NHWC, w [kh, kw, C_in/groups, C_out], groups, strides, pads, dilations) → NHWC
 */
import * as tf from '../tfjs-core.js';
import { makeBatchMatMulKernel, makeFusedMatMulKernel } from './batch-matmul.js';
import { convKernels } from './conv-kernels.js';
import { heapKernels, makeCastKernel, makeIdentityKernel, makeSliceKernel } from './heap-kernels.js';
import { WASM, registerOrReplace } from './kernel-utils.js';
import { makeLeadingReduceKernel } from './reduce-kernels.js';
import { ROW_BROADCAST_KERNELS, makeRowBroadcastKernel } from './row-broadcast.js';
import { makeTransposeKernel } from './transpose-kernel.js';

let registered = false;

/** Registers every ghn kernel for 'wasm'. Idempotent; call once the wasm backend is registered. */
export function registerWasmKernels(): void {
  if (registered) return;
  const matMul = tf.getKernel('BatchMatMul', WASM);
  const sum = tf.getKernel('Sum', WASM);
  const mean = tf.getKernel('Mean', WASM);
  const slice = tf.getKernel('Slice', WASM);
  const fusedMatMul = tf.getKernel('_FusedMatMul', WASM);
  const cast = tf.getKernel('Cast', WASM);
  const identity = tf.getKernel('Identity', WASM);
  const transpose = tf.getKernel('Transpose', WASM);
  const elementwise = ROW_BROADCAST_KERNELS.map((name) => tf.getKernel(name, WASM));
  if (!matMul || !sum || !mean || !slice || !fusedMatMul || !cast || !identity || !transpose || elementwise.some((k) => !k)) {
    throw new Error('registerWasmKernels: the wasm backend is not loaded');
  }
  for (const k of elementwise) registerOrReplace(makeRowBroadcastKernel(k!));
  for (const k of [...convKernels, ...heapKernels, makeBatchMatMulKernel(matMul), makeFusedMatMulKernel(fusedMatMul), makeLeadingReduceKernel('Sum', sum), makeLeadingReduceKernel('Mean', mean), makeSliceKernel(slice), makeCastKernel(cast), makeIdentityKernel(identity), makeTransposeKernel(transpose)]) registerOrReplace(k);
  registered = true;
}

export { conv2dBackpropFilter, conv2dBackpropInput, depthwiseBackpropFilter, depthwiseBackpropInput } from './conv-backprop.js';
export { convGeometry, type ConvGeometry, type Pads2D, type PadSpec } from './conv-geometry.js';
export { batchNormTrain, layerNorm, type BatchNormTrainResult } from './normalization.js';
export { channelAffine } from './channel-affine.js';
export { columnMeans, columnSums, channelMeans } from './reductions.js';
export { groupedConv2d, BLOCK_DIAGONAL_MAX_GROUPS, type GroupedConvPads } from './grouped-conv.js';
