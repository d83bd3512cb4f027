/**
 * Convolutions and pooling, computed physically in NHWC. Weights arrive OIHW (as stored in the
 * file or supplied by the caller) and are permuted to HWIO inside the differentiable path.
 * 1-D variants (rank-3 input) run as 2-D with H = 1.
 */
import * as tf from '../tfjs-core.js';
import { GhnError } from '../../errors.js';
import { groupedConv2d } from '../kernels/index.js';
import { nchwToNhwc, nhwcToNchw } from '../layout.js';
import { attrInt, attrInts, attrString } from './attrs.js';
import { nchw, nhwc, physicalNhwc, plain } from './common.js';
import type { OpContext, OpNode, OpOutput, OpTable } from './types.js';

type Pads2D = { top: number; left: number; bottom: number; right: number };

interface Geometry {
  kernel: [number, number];
  strides: [number, number];
  dilations: [number, number];
  pads: Pads2D;
}

const pair = (v: number[] | undefined, fallback: number, rank1d: boolean): [number, number] => {
  if (!v || v.length === 0) return [fallback, fallback];
  return rank1d ? [1, v[0]] : [v[0], v[1]];
};

/** Resolves kernel/strides/dilations/pads (including auto_pad) for spatial size [h, w]. */
function geometry(node: OpNode, kernel: [number, number], inHW: [number, number], rank1d: boolean): Geometry {
  const strides = pair(attrInts(node, 'strides'), 1, rank1d);
  const dilations = pair(attrInts(node, 'dilations'), 1, rank1d);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  let pads: Pads2D;
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const total = [0, 1].map((a) => {
      const out = Math.ceil(inHW[a] / strides[a]);
      return Math.max(0, (out - 1) * strides[a] + (kernel[a] - 1) * dilations[a] + 1 - inHW[a]);
    });
    const lowFirst = autoPad === 'SAME_LOWER';
    const split = (t: number): [number, number] => (lowFirst ? [Math.ceil(t / 2), Math.floor(t / 2)] : [Math.floor(t / 2), Math.ceil(t / 2)]);
    const [top, bottom] = split(total[0]);
    const [left, right] = split(total[1]);
    pads = { top, bottom, left, right };
  } else {
    const p = attrInts(node, 'pads') ?? [];
    pads = rank1d
      ? { top: 0, bottom: 0, left: p[0] ?? 0, right: p[1] ?? 0 }
      : { top: p[0] ?? 0, left: p[1] ?? 0, bottom: p[2] ?? 0, right: p[3] ?? 0 };
  }
  return { kernel, strides, dilations, pads };
}

/** Spatial input as NHWC rank 4 (1-D inputs get H = 1). */
function spatialInput(ctx: OpContext): { x: tf.Tensor4D; rank1d: boolean } {
  const v = ctx.required(0);
  if (v.t.rank === 3) {
    const [n, c, l] = v.t.shape;
    return { x: nchwToNhwc(tf.reshape(v.t, [n, c, 1, l])) as tf.Tensor4D, rank1d: true };
  }
  if (v.t.rank !== 4) throw new GhnError('unsupported', `${ctx.node.opType} node ${ctx.node.label}: only 1-D and 2-D spatial inputs are supported`);
  return { x: nhwc(ctx, 0) as tf.Tensor4D, rank1d: false };
}

function avgPool(x: tf.Tensor4D, g: Geometry): tf.Tensor4D {
  return tf.avgPool(x, g.kernel, g.strides, 'valid') as tf.Tensor4D;
}

function spatialOutput(y: tf.Tensor4D, rank1d: boolean): OpOutput {
  if (!rank1d) return physicalNhwc(y);
  const [n, , l, c] = y.shape;
  return plain(tf.reshape(nhwcToNchw(y), [n, c, l]));
}

function conv(ctx: OpContext): OpOutput[] {
  const { x, rank1d } = spatialInput(ctx);
  const wv = ctx.required(1);
  const ws = wv.t.shape as number[];
  const [cOut, cInPerGroup] = ws;
  const kernel: [number, number] = rank1d ? [1, ws[2]] : [ws[2], ws[3]];
  const g = geometry(ctx.node, kernel, [x.shape[1], x.shape[2]], rank1d);
  const groups = attrInt(ctx.node, 'group', 1);
  // Per-group HWIO [kh, kw, C_in/groups, C_out]: the layout groupedConv2d takes for every group count.
  const hwio = ctx.derive(1, 'hwio', (w) => tf.transpose(rank1d ? tf.reshape(w, [cOut, cInPerGroup, 1, kernel[1]]) : w, [2, 3, 1, 0]));
  // groupedConv2d (src/engine/kernels) picks conv2d, depthwise, block-diagonal or per-group convs,
  // and differentiates dilated convolutions, which tfjs-core cannot.
  let y: tf.Tensor4D = groupedConv2d(x, hwio as tf.Tensor4D, groups, g.strides, g.pads, g.dilations);
  if (ctx.input(2)) y = tf.add(y, ctx.required(2).t);
  return [spatialOutput(y, rank1d)];
}

/** Output size of a pooling window along one axis, with PyTorch's ceil-mode rule. */
function pooledSize(size: number, k: number, s: number, d: number, lo: number, hi: number, ceil: boolean): number {
  const span = size + lo + hi - ((k - 1) * d + 1);
  let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  // The last window must start inside the input or the low padding.
  if (ceil && (out - 1) * s >= size + lo) out -= 1;
  return out;
}

interface PoolPlan {
  g: Geometry;
  /** Pads including the extra bottom/right rows ceil mode needs. */
  full: Pads2D;
  trivial: boolean;
}

function poolPlan(ctx: OpContext, x: tf.Tensor4D, rank1d: boolean): PoolPlan {
  const ks = attrInts(ctx.node, 'kernel_shape') ?? [];
  const kernel: [number, number] = rank1d ? [1, ks[0] ?? 1] : [ks[0] ?? 1, ks[1] ?? 1];
  const [h, w] = [x.shape[1], x.shape[2]];
  const g = geometry(ctx.node, kernel, [h, w], rank1d);
  const ceil = attrInt(ctx.node, 'ceil_mode', 0) === 1;
  const outH = pooledSize(h, kernel[0], g.strides[0], g.dilations[0], g.pads.top, g.pads.bottom, ceil);
  const outW = pooledSize(w, kernel[1], g.strides[1], g.dilations[1], g.pads.left, g.pads.right, ceil);
  const needH = (outH - 1) * g.strides[0] + (kernel[0] - 1) * g.dilations[0] + 1;
  const needW = (outW - 1) * g.strides[1] + (kernel[1] - 1) * g.dilations[1] + 1;
  const full = {
    top: g.pads.top, left: g.pads.left,
    bottom: Math.max(0, needH - h - g.pads.top), right: Math.max(0, needW - w - g.pads.left),
  };
  const trivial = full.top === 0 && full.left === 0 && full.bottom === 0 && full.right === 0;
  return { g, full, trivial };
}

const padArg = (p: Pads2D): Array<[number, number]> => [[0, 0], [p.top, p.bottom], [p.left, p.right], [0, 0]];

function maxPool(ctx: OpContext): OpOutput[] {
  if (ctx.node.outputCount > 1) throw new GhnError('unsupported', `MaxPool node ${ctx.node.label}: the Indices output is not supported`);
  const { x, rank1d } = spatialInput(ctx);
  const plan = poolPlan(ctx, x, rank1d);
  // Padding with the lowest float makes every window's max come from real data, as ONNX requires.
  const xp = plan.trivial ? x : tf.pad(x, padArg(plan.full), -3.4e38);
  const y = tf.maxPool(xp as tf.Tensor4D, plan.g.kernel, plan.g.strides, 'valid', undefined);
  return [spatialOutput(y, rank1d)];
}

function averagePool(ctx: OpContext): OpOutput[] {
  const { x, rank1d } = spatialInput(ctx);
  const plan = poolPlan(ctx, x, rank1d);
  if (plan.trivial) return [spatialOutput(avgPool(x, plan.g), rank1d)];
  const includePad = attrInt(ctx.node, 'count_include_pad', 0) === 1;
  const xp = tf.pad(x, padArg(plan.full), 0) as tf.Tensor4D;
  const sums = avgPool(xp, plan.g);
  // Divisor per window: positions inside the input (plus the explicit pads when count_include_pad),
  // never the extra ceil-mode rows — the same rule as PyTorch.
  const [h, w] = [x.shape[1], x.shape[2]];
  const p = plan.g.pads;
  const counted = includePad
    ? tf.pad(tf.ones([1, h + p.top + p.bottom, w + p.left + p.right, 1]), [[0, 0], [0, plan.full.bottom - p.bottom], [0, plan.full.right - p.right], [0, 0]])
    : tf.pad(tf.ones([1, h, w, 1]), padArg(plan.full));
  const share = avgPool(counted as tf.Tensor4D, plan.g);
  return [spatialOutput(tf.div(sums, share) as tf.Tensor4D, rank1d)];
}

function globalPool(reduce: (x: tf.Tensor, axes: number[]) => tf.Tensor) {
  return (ctx: OpContext): OpOutput[] => {
    const v = ctx.required(0);
    if (v.t.rank === 4) return [physicalNhwc(reduce(nhwc(ctx, 0), [1, 2]))];
    const x = nchw(ctx, 0);
    const axes = Array.from({ length: x.rank - 2 }, (_, i) => i + 2);
    return [plain(reduce(x, axes))];
  };
}

/** Spatial mean of NHWC data as one full-window average pool (≈10× faster than mean on wasm). */
export function spatialMeanNhwc(x: tf.Tensor): tf.Tensor {
  return tf.avgPool(x as tf.Tensor4D, [x.shape[1]!, x.shape[2]!], 1, 'valid');
}

export const convOps: OpTable = {
  Conv: conv,
  MaxPool: maxPool,
  AveragePool: averagePool,
  GlobalAveragePool: globalPool((x, axes) => (x.rank === 4 && axes.join() === '1,2' ? spatialMeanNhwc(x) : tf.mean(x, axes, true))),
  GlobalMaxPool: globalPool((x, axes) => tf.max(x, axes, true)),
};
