/**
 * wasm registrations for the convolution gradients: Conv2DBackpropFilter and the depthwise
 * backprops are missing in tfjs-backend-wasm, its Conv2DBackpropInput is a naive loop (~2 GFLOP/s).
 * All take NHWC; the dense ones also accept NCHW (transposed in and out).
 */
import * as tf from '../tfjs-core.js';
import { conv2dBackpropFilter, conv2dBackpropInput, depthwiseBackpropInput } from './conv-backprop.js';
import { convGeometry, type PadSpec, type RoundingMode } from './conv-geometry.js';
import { opsKernel } from './kernel-utils.js';

interface ConvAttrs {
  strides: number | number[];
  pad: PadSpec;
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: RoundingMode;
  dilations?: number | number[];
}

const toNHWC = (t: tf.Tensor, fmt: string | undefined): tf.Tensor4D =>
  (fmt === 'NCHW' ? tf.transpose(t, [0, 2, 3, 1]) : t) as tf.Tensor4D;
const fromNHWC = (t: tf.Tensor4D, fmt: string | undefined): tf.Tensor4D =>
  fmt === 'NCHW' ? tf.transpose(t, [0, 3, 1, 2]) as tf.Tensor4D : t;
const shapeToNHWC = (s: number[], fmt: string | undefined): number[] =>
  fmt === 'NCHW' ? [s[0]!, s[2]!, s[3]!, s[1]!] : s;

export const conv2dBackpropFilterKernel = opsKernel('Conv2DBackpropFilter', (inputs, attrs) => {
  const a = attrs as unknown as ConvAttrs & { filterShape: number[] };
  const x = toNHWC(inputs.x!, a.dataFormat);
  const dy = toNHWC(inputs.dy!, a.dataFormat);
  const g = convGeometry(x.shape, a.filterShape, a.strides, 1, a.pad, a.dimRoundingMode, false);
  return conv2dBackpropFilter(x, dy, g);
});

export const conv2dBackpropInputKernel = opsKernel('Conv2DBackpropInput', (inputs, attrs) => {
  const a = attrs as unknown as ConvAttrs & { inputShape: number[] };
  const dy = toNHWC(inputs.dy!, a.dataFormat);
  const filter = inputs.filter as tf.Tensor4D;
  const inShape = shapeToNHWC(a.inputShape, a.dataFormat);
  const g = convGeometry(inShape, filter.shape, a.strides, 1, a.pad, a.dimRoundingMode, false);
  return fromNHWC(conv2dBackpropInput(dy, filter, inShape, g), a.dataFormat);
});

export const depthwiseBackpropInputKernel = opsKernel('DepthwiseConv2dNativeBackpropInput', (inputs, attrs) => {
  const a = attrs as unknown as ConvAttrs & { inputShape: number[] };
  const dy = inputs.dy as tf.Tensor4D;
  const filter = inputs.filter as tf.Tensor4D;
  const g = convGeometry(a.inputShape, filter.shape, a.strides, a.dilations, a.pad, a.dimRoundingMode, true);
  return depthwiseBackpropInput(dy, filter, a.inputShape, g);
});

/** DepthwiseConv2dNativeBackpropFilter for wasm is a heap loop (heap-kernels.ts). */
export const convKernels: readonly tf.KernelConfig[] = [
  conv2dBackpropFilterKernel, conv2dBackpropInputKernel, depthwiseBackpropInputKernel,
];
