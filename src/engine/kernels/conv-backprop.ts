/**
 * Convolution gradients expressed as ordinary forward convolutions, so they run at the speed of
 * the backend's forward conv (XNNPACK on wasm) instead of a naive loop. Backend-agnostic tf ops;
 * all tensors NHWC, filters HWIO ([kh, kw, C_in, C_out]) or depthwise [kh, kw, C, multiplier].
 *
 * Index algebra (forward): y[b,i,j,o] = Σ x[b, i·s + p·d − top, j·s + q·d − left, c] · w[p,q,c,o].
 */
import * as tf from '../tfjs-core.js';
import { type ConvGeometry, type Pads2D, type Pair, cropNegativePads, rawConv2d, rawDepthwiseConv2d, zeroDilate } from './conv-geometry.js';

/**
 * dL/dw of a conv2d as one forward conv over x and dy with the batch as the reduced channel axis
 * (the backend packs its filter operand on every call, ~6 ns per element, so the smaller of x and
 * dy is made the filter):
 *   first-layer shapes (C_in·kh·kw ≤ PATCH_MAX_ROWS)   explicit patches and one 2-D product
 *   stride 1, C_in < C_out                              dy as the conv input, x as the filter
 *   otherwise, undilated                                x as the conv input, dy as the filter
 *   dilated                                             x as a batch of C_in images, dy as the filter
 */
export function conv2dBackpropFilter(x: tf.Tensor4D, dy: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  const [kh, kw] = g.kernel;
  const undilated = g.dilations[0] === 1 && g.dilations[1] === 1;
  if (undilated && x.shape[3] * kh * kw <= PATCH_MAX_ROWS) return conv2dBackpropFilterPatches(x, dy, g);
  if (!undilated) return conv2dBackpropFilterDilated(x, dy, g);
  const unitStride = g.strides[0] === 1 && g.strides[1] === 1;
  // (Pads wider than the kernel would turn into negative pads of the swapped conv.)
  const padsFit = Math.max(g.pads.top, g.pads.bottom) < kh && Math.max(g.pads.left, g.pads.right) < kw;
  if (unitStride && padsFit && x.shape[3] < dy.shape[3]) return conv2dBackpropFilterDyInput(x, dy, g);
  return conv2dBackpropFilterXInput(x, dy, g);
}

/**
 * [B, H, W, C] → one image [1, H, W·C, B]: each pixel's C values side by side along the width, the
 * batch as channels (a plain matrix transpose [B, H·W·C] → [H·W·C, B]). A conv over it with width
 * dilation C (times the forward stride) reads channel c of pixel w at width w·C + c, so output
 * column q·C + c is tap q for channel c: the filter gradient comes out in HWIO order (x as input)
 * without the 4-D transposes of a batch-of-C-images layout (measured, CPU ms per gradient, B = 64:
 * 28×28 16→16 15.1 → 13.7, 14×14 32→32 10.9 → 8.9, 28×28 16→32 stride 2 7.8 → 5.6).
 */
function channelsAlongWidth(t: tf.Tensor4D): tf.Tensor4D {
  const [b, h, w, c] = t.shape;
  return tf.reshape(tf.transpose(tf.reshape(t, [b, h * w * c])), [1, h, w * c, b]) as tf.Tensor4D;
}

/** dW[p, q, c, o] = Σ x[b, i·s + p − top, j·s + q − left, c]·dy[b, i, j, o]: x as input, dy [Ho, Wo, B, C_out] as filter. */
function conv2dBackpropFilterXInput(x: tf.Tensor4D, dy: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  return tf.tidy(() => {
    const [, h, w, cin] = x.shape;
    const cout = dy.shape[3];
    const [kh, kw] = g.kernel;
    const [sh, sw] = g.strides;
    const [oh, ow] = g.out;
    const dyt = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
    // Pad at the far side only as much as the last tap of the last output position reads; widths in elements.
    const pads = {
      top: g.pads.top,
      left: g.pads.left * cin,
      bottom: Math.max(0, kh - 1 + (oh - 1) * sh + 1 - h - g.pads.top),
      right: Math.max(0, kw - 1 + (ow - 1) * sw + 1 - w - g.pads.left) * cin,
    };
    let grad = rawConv2d(channelsAlongWidth(x), dyt, [1, 1], [sh, sw * cin], pads); // [1, ≥kh, ≥kw·C_in, C_out]
    if (grad.shape[1] !== kh || grad.shape[2] !== kw * cin) grad = tf.slice(grad, [0, 0, 0, 0], [1, kh, kw * cin, cout]);
    return tf.reshape(grad, [kh, kw, cin, cout]) as tf.Tensor4D;
  });
}

/**
 * Stride 1 with the roles swapped: dy as input, x ([H, W, B, C_in]) as the filter, which yields the
 * gradient spatially flipped with the channel axes swapped. Packing x instead of dy is cheaper when
 * C_in < C_out; dy goes channels along the width as x does above (measured, CPU ms, B = 64, against
 * the batch-of-C_out-images layout: 14×14 32→64 20.7 → 16.9, 28×28 16→32 27.3 → 22.6).
 */
function conv2dBackpropFilterDyInput(x: tf.Tensor4D, dy: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  const flipped = tf.tidy(() => {
    const [, h, w] = x.shape;
    const cout = dy.shape[3];
    const [kh, kw] = g.kernel;
    const [oh, ow] = g.out;
    const xt = tf.transpose(x, [1, 2, 0, 3]) as tf.Tensor4D;
    // out[0, P, Q·C_out + o, c] = Σ dy_pad[b, P + i, Q + j, o]·x[b, i, j, c] = dW[kh−1−P, kw−1−Q, c, o]
    const pads = { top: kh - 1 - g.pads.top, left: (kw - 1 - g.pads.left) * cout, bottom: h - oh + g.pads.top, right: (w - ow + g.pads.left) * cout };
    return rawConv2d(channelsAlongWidth(dy), xt, [1, 1], [1, cout], pads);
  });
  const grad = unflipFilterGradient(flipped, g.kernel, dy.shape[3]);
  flipped.dispose();
  return grad;
}

/** [1, kh, kw·C_out, C_in] spatially flipped → HWIO [kh, kw, C_in, C_out], on the host (small). */
function unflipFilterGradient(t: tf.Tensor4D, [kh, kw]: Pair, cout: number): tf.Tensor4D {
  const cin = t.shape[3];
  const src = t.dataSync();
  const dst = new Float32Array(src.length);
  for (let p = 0; p < kh; p++) {
    for (let q = 0; q < kw; q++) {
      for (let o = 0; o < cout; o++) {
        const from = (((kh - 1 - p) * kw + (kw - 1 - q)) * cout + o) * cin;
        const to = (p * kw + q) * cin * cout + o;
        for (let c = 0; c < cin; c++) dst[to + c * cout] = src[from + c]!;
      }
    }
  }
  return tf.tensor4d(dst, [kh, kw, cin, cout]);
}

/**
 * Dilated convs: x viewed as a batch of C_in single images with B channels ([C_in, H, W, B])
 * convolved with dy viewed as a filter [Ho, Wo, B, C_out]; the roles of stride and dilation swap.
 * (The channels-along-width form would compute dilation× the outputs.) Output [C_in, kh, kw, C_out] → HWIO.
 */
function conv2dBackpropFilterDilated(x: tf.Tensor4D, dy: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  return tf.tidy(() => {
    const [, h, w, cin] = x.shape;
    const cout = dy.shape[3];
    const [kh, kw] = g.kernel;
    const [sh, sw] = g.strides;
    const [dh, dw] = g.dilations;
    const [oh, ow] = g.out;
    const xt = tf.transpose(x, [3, 1, 2, 0]) as tf.Tensor4D;
    const dyt = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
    // Pad at the far side only as much as the last tap of the last output position reads.
    const pads = {
      top: g.pads.top,
      left: g.pads.left,
      bottom: Math.max(0, (kh - 1) * dh + (oh - 1) * sh + 1 - h - g.pads.top),
      right: Math.max(0, (kw - 1) * dw + (ow - 1) * sw + 1 - w - g.pads.left),
    };
    let grad = rawConv2d(xt, dyt, [dh, dw], [sh, sw], pads);
    if (grad.shape[1] !== kh || grad.shape[2] !== kw) grad = tf.slice(grad, [0, 0, 0, 0], [cin, kh, kw, cout]);
    return tf.transpose(grad, [1, 2, 0, 3]) as tf.Tensor4D;
  });
}

/**
 * Up to this many patch rows (C_in·kh·kw), the filter gradient goes through explicit patches:
 * for the first layer of image nets (C_in 1–3) the transposed-conv form packs all of dy as a
 * filter and is ~1.5× slower (measured: 17.6 vs 11.7 ms CPU for 64×28×28×1 → 32, 3×3).
 */
const PATCH_MAX_ROWS = 27;

/**
 * Patches by a depthwise conv with a one-hot filter (channel c, tap t → output channel c·kh·kw + t),
 * then dW = patchesᵀ · dy as one 2-D product.
 */
function conv2dBackpropFilterPatches(x: tf.Tensor4D, dy: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  return tf.tidy(() => {
    const cin = x.shape[3], cout = dy.shape[3];
    const [kh, kw] = g.kernel;
    const taps = kh * kw;
    const oneHot = new Float32Array(taps * cin * taps);
    for (let t = 0; t < taps; t++) for (let c = 0; c < cin; c++) oneHot[(t * cin + c) * taps + t] = 1;
    const patches = rawDepthwiseConv2d(x, tf.tensor4d(oneHot, [kh, kw, cin, taps]), g.strides, [1, 1], g.pads);
    const rows = patches.shape[0] * patches.shape[1] * patches.shape[2];
    const grad = tf.matMul(tf.reshape(patches, [rows, cin * taps]), tf.reshape(dy, [rows, cout]), true, false);
    return tf.transpose(tf.reshape(grad, [cin, kh, kw, cout]), [1, 2, 0, 3]) as tf.Tensor4D;
  });
}

/**
 * dL/dx of a conv2d: the zero-dilated dy (stride s → s−1 zeros between samples) convolved with
 * the spatially flipped filter with C_in/C_out swapped, dilation d, stride 1.
 */
export function conv2dBackpropInput(dy: tf.Tensor4D, filter: tf.Tensor4D, inShape: readonly number[], g: ConvGeometry): tf.Tensor4D {
  const [sh, sw] = g.strides;
  if (sh > 1 && sh === sw && g.dilations[0] === 1 && g.dilations[1] === 1) return conv2dBackpropInputPhases(dy, filter, inShape, g);
  return conv2dBackpropInputDilated(dy, filter, inShape, g);
}

/** The general form (any stride/dilation): conv of the zero-dilated dy. Exported for benchmarks. */
export function conv2dBackpropInputDilated(dy: tf.Tensor4D, filter: tf.Tensor4D, inShape: readonly number[], g: ConvGeometry): tf.Tensor4D {
  return tf.tidy(() => {
    const { x, pads } = dilatedForBackprop(dy, inShape, g);
    return rawConv2d(x, flipFilter(filter, true), [1, 1], g.dilations, pads);
  });
}

/**
 * dL/dx of a strided conv (stride s, no dilation) without the zero-dilated dy: input row
 * y = s·Y + r only receives taps p ≡ r + top (mod s), so each of the s² phases (r_y, r_x) is a
 * stride-1 correlation of dy with a sub-filter. All phases run as ONE conv whose output channels
 * are (r_y, r_x, c_in), then a depth-to-space reshape interleaves them. 2.25× fewer FLOPs than the dilated
 * form for 3×3 / stride 2, and no 6-D pad.
 */
export function conv2dBackpropInputPhases(dy: tf.Tensor4D, filter: tf.Tensor4D, inShape: readonly number[], g: ConvGeometry): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, h, w, cin] = inShape as [number, number, number, number];
    const cout = filter.shape[3];
    const s = g.strides[0];
    const plan = phasePlan(g.kernel, s, g.pads, cin, cout, g.out, [h, w]);
    // Filter entries are picked from w by a cached index map (small: ≤ 4× the filter), on the host.
    const wv = filter.dataSync();
    const picked = new Float32Array(plan.index.length);
    for (let i = 0; i < picked.length; i++) { const j = plan.index[i]!; picked[i] = j < wv.length ? wv[j]! : 0; }
    const phaseFilter = tf.tensor4d(picked, [plan.len[0], plan.len[1], cout, s * s * cin]);
    const { x, pads } = cropNegativePads(dy, plan.pads);
    const phases = rawConv2d(x, phaseFilter, [1, 1], [1, 1], pads); // [B, Nh, Nw, s²·C_in]
    // depthToSpace as reshape/transpose (the wasm DepthToSpace kernel is ~50× slower).
    const [, nh, nw] = phases.shape;
    const full = tf.reshape(tf.transpose(tf.reshape(phases, [b, nh, nw, s, s, cin]), [0, 1, 3, 2, 4, 5]), [b, nh * s, nw * s, cin]) as tf.Tensor4D;
    return (full.shape[1] === h && full.shape[2] === w ? full : tf.slice(full, [0, 0, 0, 0], [b, h, w, cin])) as tf.Tensor4D;
  });
}

interface PhasePlan { index: Int32Array; len: Pair; pads: Pads2D }
const phasePlans = new Map<string, PhasePlan>();

/** Per axis: phase r gets taps p = p0 + s·t; their dy offsets relative to the phase row. */
function axisPhases(k: number, s: number, padBefore: number) {
  const phases = [];
  for (let r = 0; r < s; r++) {
    const p0 = (((r + padBefore) % s) + s) % s;
    const taps = p0 < k ? Math.ceil((k - p0) / s) : 0;
    const c = (r + padBefore - p0) / s; // tap t reads dy[Y + c − t]
    phases.push({ p0, taps, c });
  }
  const used = phases.filter((ph) => ph.taps > 0);
  const lo = Math.min(...used.map((ph) => ph.c - ph.taps + 1));
  const hi = Math.max(...used.map((ph) => ph.c));
  return { phases, lo, len: hi - lo + 1, hi };
}

function phasePlan(kernel: Pair, s: number, pads: Pads2D, cin: number, cout: number, out: Pair, inHW: Pair): PhasePlan {
  const key = JSON.stringify([kernel, s, pads, cin, cout, out, inHW]);
  let plan = phasePlans.get(key);
  if (!plan) {
    const [kh, kw] = kernel;
    const ay = axisPhases(kh, s, pads.top), ax = axisPhases(kw, s, pads.left);
    const zero = kh * kw * cin * cout; // index of the appended zero
    const index = new Int32Array(ay.len * ax.len * cout * s * s * cin).fill(zero);
    for (let ry = 0; ry < s; ry++) {
      const py = ay.phases[ry]!;
      for (let ty = 0; ty < py.taps; ty++) {
        const uy = py.c - ty - ay.lo, p = py.p0 + s * ty;
        for (let rx = 0; rx < s; rx++) {
          const px = ax.phases[rx]!;
          for (let tx = 0; tx < px.taps; tx++) {
            const ux = px.c - tx - ax.lo, q = px.p0 + s * tx;
            for (let co = 0; co < cout; co++) {
              const dst = ((uy * ax.len + ux) * cout + co) * s * s * cin + (ry * s + rx) * cin;
              const src = ((p * kw + q) * cin) * cout + co;
              for (let ci = 0; ci < cin; ci++) index[dst + ci] = src + ci * cout;
            }
          }
        }
      }
    }
    // Output rows per phase: ceil(H / s); dy rows read: Y + lo … Y + hi.
    const nh = Math.ceil(inHW[0] / s), nw = Math.ceil(inHW[1] / s);
    plan = {
      index, len: [ay.len, ax.len],
      pads: { top: -ay.lo, left: -ax.lo, bottom: nh - 1 + ay.hi - (out[0] - 1), right: nw - 1 + ax.hi - (out[1] - 1) },
    };
    if (phasePlans.size > 256) phasePlans.clear();
    phasePlans.set(key, plan);
  }
  return plan;
}

/** dL/dx of a depthwise conv (filter [kh, kw, C, m], dy channel c·m + j). */
export function depthwiseBackpropInput(dy: tf.Tensor4D, filter: tf.Tensor4D, inShape: readonly number[], g: ConvGeometry): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, c, m] = filter.shape;
    const flipped = flipFilter(filter, false);
    const { x, pads } = dilatedForBackprop(dy, inShape, g);
    if (m === 1) return rawDepthwiseConv2d(x, flipped, [1, 1], g.dilations, pads);
    // Multiplier > 1: each of the m filter columns maps channel c to output c·m + j; sum them.
    const [b, h, w] = x.shape;
    const split = tf.reshape(x, [b, h, w, c, m]);
    let sum: tf.Tensor4D | undefined;
    for (let j = 0; j < m; j++) {
      const part = tf.reshape(tf.slice(split, [0, 0, 0, 0, j], [b, h, w, c, 1]), [b, h, w, c]) as tf.Tensor4D;
      const fj = tf.slice(flipped, [0, 0, 0, j], [kh, kw, c, 1]);
      const term = rawDepthwiseConv2d(part, fj, [1, 1], g.dilations, pads);
      sum = sum ? tf.add(sum, term) : term;
    }
    return sum as tf.Tensor4D;
  });
}

/**
 * dL/dw of a depthwise conv. One depthwise conv with batch folded into channels: x as a single
 * image [1, H, W, C·B] and dy as a depthwise filter [Ho, Wo, C·B, m]; stride and dilation swap;
 * then the B partial filters are summed.
 */
export function depthwiseBackpropFilter(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: readonly number[], g: ConvGeometry): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, h, w, c] = x.shape;
    const [kh, kw, , m] = filterShape as [number, number, number, number];
    const [sh, sw] = g.strides;
    const [dh, dw] = g.dilations;
    const [oh, ow] = g.out;
    const xt = tf.reshape(tf.transpose(x, [1, 2, 3, 0]), [1, h, w, c * b]) as tf.Tensor4D;
    const dyt = tf.reshape(tf.transpose(tf.reshape(dy, [b, oh, ow, c, m]), [1, 2, 3, 0, 4]), [oh, ow, c * b, m]) as tf.Tensor4D;
    const pads = {
      top: g.pads.top,
      left: g.pads.left,
      bottom: Math.max(0, (kh - 1) * dh + (oh - 1) * sh + 1 - h - g.pads.top),
      right: Math.max(0, (kw - 1) * dw + (ow - 1) * sw + 1 - w - g.pads.left),
    };
    let grad = rawDepthwiseConv2d(xt, dyt, [dh, dw], [sh, sw], pads); // [1, kh', kw', C·B·m]
    if (grad.shape[1] !== kh || grad.shape[2] !== kw) grad = tf.slice(grad, [0, 0, 0, 0], [1, kh, kw, c * b * m]);
    const perBatch = tf.reshape(grad, [kh, kw, c, b, m]);
    // Sum over B with B innermost: innermost-axis reductions are the fast path on every backend.
    const batchLast = m === 1 ? tf.reshape(perBatch, [kh, kw, c, b]) : tf.transpose(perBatch, [0, 1, 2, 4, 3]);
    return tf.reshape(tf.sum(batchLast, -1), [kh, kw, c, m]) as tf.Tensor4D;
  });
}

/**
 * w[kh−1−p, kw−1−q] (optionally with the last two axes swapped), on the host: filters are small,
 * and the wasm Reverse kernel costs ~75 ns per element (1–3 ms per layer per step, measured).
 */
function flipFilter(filter: tf.Tensor4D, swapInOut: boolean): tf.Tensor4D {
  const [kh, kw, a, b] = filter.shape;
  const src = filter.dataSync();
  const dst = new Float32Array(src.length);
  let o = 0;
  for (let p = 0; p < kh; p++) {
    for (let q = 0; q < kw; q++) {
      const base = ((kh - 1 - p) * kw + (kw - 1 - q)) * a * b;
      if (!swapInOut) {
        dst.set(src.subarray(base, base + a * b), o);
        o += a * b;
        continue;
      }
      for (let j = 0; j < b; j++) for (let i = 0; i < a; i++) dst[o++] = src[base + i * b + j]!;
    }
  }
  return tf.tensor4d(dst, swapInOut ? [kh, kw, b, a] : [kh, kw, a, b]);
}

/** dy zero-dilated by the stride and the pads that make a stride-1 conv of it produce dx. */
function dilatedForBackprop(dy: tf.Tensor4D, inShape: readonly number[], g: ConvGeometry): { x: tf.Tensor4D; pads: ReturnType<typeof cropNegativePads>['pads'] } {
  const [, h, w] = inShape as [number, number, number, number];
  const [kh, kw] = g.kernel;
  const [sh, sw] = g.strides;
  const [dh, dw] = g.dilations;
  const [oh, ow] = g.out;
  const dilated = zeroDilate(dy, sh, sw); // length o·s, including s−1 trailing zeros
  const pads = {
    top: (kh - 1) * dh - g.pads.top,
    left: (kw - 1) * dw - g.pads.left,
    bottom: h - ((oh - 1) * sh + 1) + g.pads.top - (sh - 1),
    right: w - ((ow - 1) * sw + 1) + g.pads.left - (sw - 1),
  };
  return cropNegativePads(dilated, pads);
}
