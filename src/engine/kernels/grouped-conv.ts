/**
 * Grouped 2-D convolution (ONNX Conv with `group`), differentiable, on any backend. tfjs has no
 * groups, so each case maps onto what it has:
 *   groups = 1                 → conv2d
 *   groups = C_in (depthwise)  → depthwiseConv2d with the filter reshaped to [kh, kw, C_in, C_out/C_in]
 *   2 ≤ groups ≤ BLOCK_DIAGONAL_MAX_GROUPS → one conv2d with a block-diagonal filter (groups× the
 *                                FLOPs, but one conv instead of `groups` convs + slicing)
 *   more groups                → per-group conv2d on channel slices, concatenated
 * Measured on wasm (fwd+bwd, 64×14×14, 32–64 channels): the two are within noise of each other
 * for 2–8 groups; block-diagonal wins at 16 groups of 4 channels, but its waste grows with groups.
 * Dilations > 1 are supported everywhere (tfjs-core's own conv gradients refuse them; here they
 * go through ghn's backprop functions via customGrad).
 */
import * as tf from '../tfjs-core.js';
import { conv2dBackpropFilter, conv2dBackpropInput, depthwiseBackpropFilter, depthwiseBackpropInput } from './conv-backprop.js';
import { type ConvGeometry, type Pads2D, type Pair, asPair, convGeometry, explicitPad, rawConv2d, rawDepthwiseConv2d } from './conv-geometry.js';

/** Up to this many groups, use a block-diagonal dense filter instead of per-group slices. */
export const BLOCK_DIAGONAL_MAX_GROUPS = 4;

export type GroupedConvPads = 'same' | 'valid' | Pads2D;

/**
 * x: NHWC [B, H, W, C_in]; w: [kh, kw, C_in/groups, C_out] (HWIO per group: output channels
 * g·C_out/groups … (g+1)·C_out/groups − 1 read input channels g·C_in/groups …). Returns NHWC.
 */
export function groupedConv2d(
  x: tf.Tensor4D, w: tf.Tensor4D, groups: number,
  strides: number | Pair = 1, pads: GroupedConvPads = 'valid', dilations: number | Pair = 1,
): tf.Tensor4D {
  const [kh, kw, cinG, cout] = w.shape;
  const cin = x.shape[3];
  if (!Number.isInteger(groups) || groups < 1 || cin % groups !== 0 || cout % groups !== 0 || cinG !== cin / groups) {
    throw new Error(`groupedConv2d: x has ${cin} channels, filter ${JSON.stringify(w.shape)}, groups ${groups} do not agree`);
  }
  const s = asPair(strides), d = asPair(dilations);
  const pad = typeof pads === 'string' ? pads : explicitPad(pads);
  if (groups === 1) return conv(x, w, s, d, pad, false);
  if (groups === cin) return conv(x, tf.reshape(w, [kh, kw, cin, cout / cin]) as tf.Tensor4D, s, d, pad, true);
  if (groups <= BLOCK_DIAGONAL_MAX_GROUPS) return conv(x, blockDiagonal(w, groups), s, d, pad, false);
  const xs = tf.split(x, groups, 3);
  const ws = tf.split(w, groups, 3);
  return tf.concat(xs.map((xg, g) => conv(xg as tf.Tensor4D, ws[g] as tf.Tensor4D, s, d, pad, false)), 3) as tf.Tensor4D;
}

/** w [kh, kw, C_in/G, C_out] → dense [kh, kw, C_in, C_out] with zeros off the group blocks. */
function blockDiagonal(w: tf.Tensor4D, groups: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, cinG, cout] = w.shape;
    const coutG = cout / groups;
    const perGroup = tf.reshape(w, [kh, kw, 1, cinG, groups, coutG]);
    const mask = tf.reshape(tf.eye(groups), [1, 1, groups, 1, groups, 1]);
    return tf.reshape(tf.mul(perGroup, mask), [kh, kw, groups * cinG, cout]) as tf.Tensor4D;
  });
}

function conv(x: tf.Tensor4D, w: tf.Tensor4D, s: Pair, d: Pair, pad: 'same' | 'valid' | number[][], depthwise: boolean): tf.Tensor4D {
  const dilated = d[0] !== 1 || d[1] !== 1;
  if (!dilated) {
    return depthwise
      ? tf.depthwiseConv2d(x, w, s, pad as 'same', 'NHWC', 1)
      : tf.conv2d(x, w, s, pad as 'same', 'NHWC', 1);
  }
  // Dilated: tfjs-core's gradients refuse dilations, so differentiate here.
  const g = convGeometry(x.shape, w.shape, s, d, pad, undefined, depthwise);
  if (depthwise && (s[0] !== 1 || s[1] !== 1)) {
    // Backends reject depthwise convs that are both strided and dilated (and so would the filter
    // gradient, which swaps the two): run at stride 1 with the strided conv's pads, then subsample.
    const full = dilatedConv(x, w, { ...g, strides: [1, 1], out: stride1Out(x.shape, g) }, true);
    return subsample(full, g.strides, g.out);
  }
  return dilatedConv(x, w, g, depthwise);
}

function stride1Out(inShape: readonly number[], g: ConvGeometry): Pair {
  const [kh, kw] = g.kernel, [dh, dw] = g.dilations;
  return [
    inShape[1]! + g.pads.top + g.pads.bottom - (kh - 1) * dh,
    inShape[2]! + g.pads.left + g.pads.right - (kw - 1) * dw,
  ];
}

/** Keeps every s-th row/column (starting at 0) of an NHWC tensor: out [B, oh, ow, C]. */
function subsample(y: tf.Tensor4D, s: Pair, out: Pair): tf.Tensor4D {
  const [b, h, w, c] = y.shape;
  const [sh, sw] = s, [oh, ow] = out;
  // Pad to a multiple of the stride, split each spatial axis into (index, phase), keep phase 0.
  const padded = tf.pad(y, [[0, 0], [0, oh * sh - h], [0, ow * sw - w], [0, 0]].map(([a, z]) => [a!, Math.max(0, z!)]) as [number, number][]);
  const cropped = tf.slice(padded, [0, 0, 0, 0], [b, oh * sh, ow * sw, c]);
  const phases = tf.reshape(cropped, [b, oh, sh, ow, sw, c]);
  return tf.reshape(tf.slice(phases, [0, 0, 0, 0, 0, 0], [b, oh, 1, ow, 1, c]), [b, oh, ow, c]) as tf.Tensor4D;
}

function dilatedConv(x: tf.Tensor4D, w: tf.Tensor4D, g: ConvGeometry, depthwise: boolean): tf.Tensor4D {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, wi, save] = args as [tf.Tensor4D, tf.Tensor4D, tf.GradSaveFunc];
    save([xi, wi]);
    const y = depthwise
      ? rawDepthwiseConv2d(xi, wi, g.strides, g.dilations, g.pads)
      : rawConv2d(xi, wi, g.strides, g.dilations, g.pads);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws] = saved as [tf.Tensor4D, tf.Tensor4D];
        const dy4 = dy as tf.Tensor4D;
        return depthwise
          ? [depthwiseBackpropInput(dy4, ws, xs.shape, g), depthwiseBackpropFilter(xs, dy4, ws.shape, g)]
          : [conv2dBackpropInput(dy4, ws, xs.shape, g), conv2dBackpropFilter(xs, dy4, g)];
      },
    };
  });
  return op(x, w) as tf.Tensor4D;
}
