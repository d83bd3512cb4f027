/**
 * Convolution geometry shared by the gradient kernels: resolves tfjs padding specs
 * ('same' | 'valid' | number | explicit) to concrete per-side pads, NHWC only.
 */
import * as tf from '../tfjs-core.js';

export type Pair = [number, number];
/** tfjs padding spec as kernels receive it. Explicit form is NHWC: [[0,0],[top,bottom],[left,right],[0,0]]. */
export type PadSpec = 'same' | 'valid' | number | number[][];
export type RoundingMode = 'floor' | 'round' | 'ceil' | undefined;

/** Concrete pads of a 2-D convolution; may include the implicit trailing pad of 'same'. */
export interface Pads2D { top: number; bottom: number; left: number; right: number }

export interface ConvGeometry {
  pads: Pads2D;
  strides: Pair;
  dilations: Pair;
  /** [kh, kw] */
  kernel: Pair;
  /** [outH, outW] */
  out: Pair;
}

export function asPair(v: number | number[] | undefined, dflt = 1): Pair {
  if (v === undefined || v === null) return [dflt, dflt];
  if (typeof v === 'number') return [v, v];
  return [v[0] ?? dflt, v[1] ?? v[0] ?? dflt];
}

/**
 * Geometry of an NHWC conv of input `inShape` [B,H,W,C] with a filter whose first two dims are
 * [kh, kw], exactly as tfjs computes it (so gradients agree with tfjs forward ops).
 */
export function convGeometry(
  inShape: readonly number[], filterShape: readonly number[], strides: number | number[],
  dilations: number | number[] | undefined, pad: PadSpec, roundingMode: RoundingMode, depthwise: boolean,
): ConvGeometry {
  const info = tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number], filterShape as [number, number, number, number],
    asPair(strides), asPair(dilations), pad as 'same', roundingMode, depthwise, 'channelsLast');
  return {
    pads: { top: info.padInfo.top, bottom: info.padInfo.bottom, left: info.padInfo.left, right: info.padInfo.right },
    strides: [info.strideHeight, info.strideWidth],
    dilations: [info.dilationHeight, info.dilationWidth],
    kernel: [info.filterHeight, info.filterWidth],
    out: [info.outHeight, info.outWidth],
  };
}

/** Explicit-pad spec for tfjs conv ops from non-negative pads. */
export function explicitPad(p: Pads2D): number[][] {
  return [[0, 0], [p.top, p.bottom], [p.left, p.right], [0, 0]];
}

/**
 * Applies pads that may be negative to an NHWC tensor: negative sides are cropped here, and the
 * non-negative remainder is returned for the conv to apply (convs pad for free, but cannot crop).
 */
export function cropNegativePads(x: tf.Tensor4D, p: Pads2D): { x: tf.Tensor4D; pads: Pads2D } {
  const cut = { top: Math.max(0, -p.top), bottom: Math.max(0, -p.bottom), left: Math.max(0, -p.left), right: Math.max(0, -p.right) };
  if (cut.top + cut.bottom + cut.left + cut.right === 0) return { x, pads: p };
  const [b, h, w, c] = x.shape;
  const cropped = tf.slice(x, [0, cut.top, cut.left, 0], [b, h - cut.top - cut.bottom, w - cut.left - cut.right, c]);
  return {
    x: cropped,
    pads: { top: Math.max(0, p.top), bottom: Math.max(0, p.bottom), left: Math.max(0, p.left), right: Math.max(0, p.right) },
  };
}

/**
 * Conv2D kernel call that bypasses the op-level "strides or dilations must be 1" check: the
 * backprop formulations need both at once (stride = forward dilation, dilation = forward stride),
 * which the backends compute correctly.
 */
export function rawConv2d(x: tf.Tensor4D, filter: tf.Tensor4D, strides: Pair, dilations: Pair, pads: Pads2D): tf.Tensor4D {
  return tf.engine().runKernel('Conv2D', { x, filter }, {
    strides, pad: explicitPad(pads), dataFormat: 'NHWC', dilations, dimRoundingMode: undefined,
  } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/** Same bypass for the depthwise kernel. Filter [kh, kw, C, multiplier]. */
export function rawDepthwiseConv2d(x: tf.Tensor4D, filter: tf.Tensor4D, strides: Pair, dilations: Pair, pads: Pads2D): tf.Tensor4D {
  return tf.engine().runKernel('DepthwiseConv2dNative', { x, filter }, {
    strides, pad: explicitPad(pads), dilations, dimRoundingMode: undefined,
  } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/**
 * Inserts (s-1) zeros after every element along H and W: [B,H,W,C] → [B,H·sh,W·sw,C].
 * The trailing zeros are left in place; callers subtract (s-1) from the bottom/right pad.
 */
export function zeroDilate(x: tf.Tensor4D, sh: number, sw: number): tf.Tensor4D {
  if (sh === 1 && sw === 1) return x;
  const [b, h, w, c] = x.shape;
  const spread = tf.pad(tf.reshape(x, [b, h, 1, w, 1, c]), [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
  return tf.reshape(spread, [b, h * sh, w * sw, c]);
}
