/**
 * Shape arithmetic and data movement: Shape, Reshape, Flatten, Transpose, (Un)Squeeze, Concat,
 * Slice, Split, Gather, Expand, Tile, Pad, ConstantOfShape, Range, Constant, Cast.
 * Ops whose meaning is tied to memory order work in ONNX layout; Concat, Slice, Split and Pad on
 * rank-4 NHWC values remap their axes instead of converting.
 */
import * as tf from '../tfjs-core.js';
import { GhnError } from '../../errors.js';
import { DataType } from '../../onnx/types.js';
import { NHWC_AXIS_OF_NCHW, normAxis } from '../layout.js';
import { protoToTensor, tfDtypeOf } from '../tensors.js';
import { attrFloat, attrFloats, attrInt, attrInts, attrString, attrTensor } from './attrs.js';
import { logicalShape, nchw, nhwcOperand, plain, stridedAxis } from './common.js';
import type { OpContext, OpImpl, OpOutput, OpTable } from './types.js';

const product = (xs: number[]) => xs.reduce((a, b) => a * b, 1);

/** Axes from the second input (opset ≥ 13) or the `axes` attribute (older). */
function axesOf(ctx: OpContext, inputIndex: number): number[] | undefined {
  return ctx.input(inputIndex) ? ctx.ints(inputIndex) : attrInts(ctx.node, 'axes');
}

function shape(ctx: OpContext): OpOutput[] {
  const dims = logicalShape(ctx.required(0));
  const start = normAxis(attrInt(ctx.node, 'start', 0), dims.length);
  const endAttr = attrInt(ctx.node, 'end', dims.length);
  const end = Math.min(dims.length, normAxis(endAttr, dims.length));
  return [plain(tf.tensor1d(dims.slice(Math.max(0, start), end), 'int32'))];
}

function reshape(ctx: OpContext): OpOutput[] {
  const x = nchw(ctx, 0);
  const allowZero = attrInt(ctx.node, 'allowzero', 0) === 1;
  const target = ctx.ints(1).map((d, i) => (d === 0 && !allowZero ? x.shape[i] : d));
  return [plain(tf.reshape(x, target))];
}

function flatten(ctx: OpContext): OpOutput[] {
  const x = nchw(ctx, 0);
  const axis = normAxis(attrInt(ctx.node, 'axis', 1), x.rank);
  return [plain(tf.reshape(x, [product(x.shape.slice(0, axis)), product(x.shape.slice(axis))]))];
}

const samePerm = (a: number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

function transpose(ctx: OpContext): OpOutput[] {
  const v = ctx.required(0);
  const rank = v.t.rank;
  const perm = attrInts(ctx.node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  // NHWC data permuted NCHW→NHWC is already in memory order; the reverse makes an NHWC value.
  if (v.nhwc && samePerm(perm, [0, 2, 3, 1])) return [plain(v.t)];
  if (!v.nhwc && rank === 4 && samePerm(perm, [0, 3, 1, 2])) return [{ t: v.t, nhwc: true }];
  return [plain(tf.transpose(nchw(ctx, 0), perm))];
}

function squeeze(ctx: OpContext): OpOutput[] {
  const x = nchw(ctx, 0);
  const axes = axesOf(ctx, 1)?.map((a) => normAxis(a, x.rank));
  return [plain(tf.squeeze(x, axes && axes.length ? axes : undefined))];
}

function unsqueeze(ctx: OpContext): OpOutput[] {
  const x = nchw(ctx, 0);
  const axes = axesOf(ctx, 1) ?? [];
  const rank = x.rank + axes.length;
  const inserted = new Set(axes.map((a) => normAxis(a, rank)));
  const dims: number[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) dims.push(inserted.has(i) ? 1 : x.shape[k++]);
  return [plain(tf.reshape(x, dims))];
}

/** For multi-input axis ops: NHWC with a remapped axis when any rank-4 input is NHWC. */
function axisLayout(ctx: OpContext, indices: number[], axis: number): { tensors: tf.Tensor[]; axis: number; nhwc: boolean } {
  const anyNhwc = indices.some((i) => ctx.required(i).nhwc);
  if (anyNhwc && indices.every((i) => ctx.required(i).t.rank === 4)) {
    return { tensors: indices.map((i) => nhwcOperand(ctx, i)), axis: NHWC_AXIS_OF_NCHW[axis], nhwc: true };
  }
  return { tensors: indices.map((i) => nchw(ctx, i)), axis, nhwc: false };
}

function concat(ctx: OpContext): OpOutput[] {
  const indices: number[] = [];
  for (let i = 0; i < ctx.inputCount; i++) if (ctx.input(i)) indices.push(i);
  const rank = ctx.required(indices[0]).t.rank;
  const { tensors, axis, nhwc } = axisLayout(ctx, indices, normAxis(attrInt(ctx.node, 'axis', 0), rank));
  const nonEmpty = tensors.filter((t) => t.size > 0);
  return [{ t: nonEmpty.length === 1 ? nonEmpty[0] : tf.concat(nonEmpty.length ? nonEmpty : tensors, axis), nhwc }];
}

function slice(ctx: OpContext): OpOutput[] {
  const v = ctx.required(0);
  const dims = logicalShape(v);
  const legacy = ctx.node.opset < 10;
  const starts = legacy ? attrInts(ctx.node, 'starts')! : ctx.ints(1);
  const ends = legacy ? attrInts(ctx.node, 'ends')! : ctx.ints(2);
  const axes = (legacy ? attrInts(ctx.node, 'axes') : ctx.input(3) ? ctx.ints(3) : undefined) ?? starts.map((_, i) => i);
  const steps = !legacy && ctx.input(4) ? ctx.ints(4) : starts.map(() => 1);
  const physical = (a: number) => (v.nhwc ? NHWC_AXIS_OF_NCHW[a] : a);
  let x = v.t;
  const begin = new Array(x.rank).fill(0);
  const end = [...x.shape];
  const stride = new Array(x.rank).fill(1);
  axes.forEach((rawAxis, i) => {
    const a = normAxis(rawAxis, dims.length);
    const d = dims[a];
    const step = steps[i];
    const clamp = (n: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, n < 0 ? n + d : n));
    const p = physical(a);
    if (step > 0) {
      begin[p] = clamp(starts[i], 0, d);
      end[p] = clamp(ends[i], 0, d);
      stride[p] = step;
    } else {
      // Negative steps: reverse the axis and slice forward with mirrored bounds.
      const s = clamp(starts[i], -1, d - 1);
      const e = clamp(ends[i], -1, d - 1);
      x = tf.reverse(x, p);
      begin[p] = d - 1 - s;
      end[p] = d - 1 - e;
      stride[p] = -step;
    }
  });
  const empty = begin.some((b, i) => end[i] <= b);
  if (empty) return [{ t: tf.zeros(begin.map((b, i) => Math.max(0, Math.ceil((end[i] - b) / stride[i]))), x.dtype), nhwc: v.nhwc }];
  const t = stride.reduce((acc, s, axis) => (s === 1 && begin[axis] === 0 && end[axis] === acc.shape[axis] ? acc : stridedAxis(acc, axis, begin[axis], end[axis], s)), x);
  return [{ t, nhwc: v.nhwc }];
}

function split(ctx: OpContext): OpOutput[] {
  const v = ctx.required(0);
  const rank = v.t.rank;
  const axis = normAxis(attrInt(ctx.node, 'axis', 0), rank);
  const { tensors: [x], axis: physAxis, nhwc } = axisLayout(ctx, [0], axis);
  const dim = x.shape[physAxis];
  let sizes = ctx.input(1) ? ctx.ints(1) : attrInts(ctx.node, 'split');
  if (!sizes || sizes.length === 0) {
    const n = attrInt(ctx.node, 'num_outputs', ctx.node.outputCount);
    const chunk = Math.ceil(dim / n);
    sizes = Array.from({ length: n }, (_, i) => Math.min(chunk, dim - i * chunk));
  }
  return tf.split(x, sizes, physAxis).map((t) => ({ t, nhwc }));
}

function gather(ctx: OpContext): OpOutput[] {
  const x = nchw(ctx, 0);
  const axis = normAxis(attrInt(ctx.node, 'axis', 0), x.rank);
  const idx = ctx.required(1);
  const dim = x.shape[axis];
  let indices: tf.Tensor;
  if (idx.stable) {
    indices = ctx.derive(1, `gather-index-${dim}`, (t) => {
      const data = Array.from(t.dataSync(), (i) => (i < 0 ? i + dim : i));
      return tf.tensor(data, t.shape, 'int32');
    });
  } else {
    indices = idx.t.dtype === 'int32' ? idx.t : tf.cast(idx.t, 'int32');
  }
  return [plain(tf.gather(x, indices, axis))];
}

function expand(ctx: OpContext): OpOutput[] {
  const x = nchw(ctx, 0);
  const target = tf.broadcast_util.assertAndGetBroadcastShape(x.shape, ctx.ints(1));
  const t = x.shape.join() === target.join() ? x : tf.broadcastTo(x.rank === target.length ? x : tf.reshape(x, [...new Array(target.length - x.rank).fill(1), ...x.shape]), target);
  return [plain(t)];
}

function tile(ctx: OpContext): OpOutput[] {
  return [plain(tf.tile(nchw(ctx, 0), ctx.ints(1)))];
}

type PadMode = 'constant' | 'reflect' | 'edge';

/** Edge padding: repeat the border slice along one axis. */
function edgePad(x: tf.Tensor, axis: number, before: number, after: number): tf.Tensor {
  const n = x.shape[axis];
  const parts: tf.Tensor[] = [];
  if (before > 0) parts.push(tf.concat(new Array(before).fill(tf.slice(x, x.shape.map((_, i) => 0), x.shape.map((d, i) => (i === axis ? 1 : d)))), axis));
  parts.push(x);
  if (after > 0) {
    const last = tf.slice(x, x.shape.map((_, i) => (i === axis ? n - 1 : 0)), x.shape.map((d, i) => (i === axis ? 1 : d)));
    parts.push(tf.concat(new Array(after).fill(last), axis));
  }
  return parts.length === 1 ? x : tf.concat(parts, axis);
}

function pad(ctx: OpContext): OpOutput[] {
  const v = ctx.required(0);
  const rank = v.t.rank;
  const raw = ctx.node.opset < 11 ? attrInts(ctx.node, 'pads')! : ctx.ints(1);
  const value = ctx.node.opset < 11 ? attrFloat(ctx.node, 'value', 0) : ctx.input(2) ? ctx.floats(2)[0] : 0;
  const axes = (ctx.input(3) ? ctx.ints(3) : Array.from({ length: rank }, (_, i) => i)).map((a) => normAxis(a, rank));
  const mode = attrString(ctx.node, 'mode', 'constant') as PadMode;
  const pairs: Array<[number, number]> = Array.from({ length: rank }, () => [0, 0]);
  const physical = (a: number) => (v.nhwc ? NHWC_AXIS_OF_NCHW[a] : a);
  axes.forEach((a, i) => { pairs[physical(a)] = [raw[i], raw[i + axes.length]]; });
  if (pairs.some(([b, e]) => b < 0 || e < 0)) {
    throw new GhnError('unsupported', `Pad node ${ctx.node.label}: negative pads are not supported`);
  }
  let t: tf.Tensor;
  if (mode === 'constant') t = tf.pad(v.t, pairs, value);
  else if (mode === 'reflect') t = tf.mirrorPad(v.t, pairs, 'reflect');
  else if (mode === 'edge') t = pairs.reduce((acc, [b, e], axis) => edgePad(acc, axis, b, e), v.t);
  else throw new GhnError('unsupported', `Pad node ${ctx.node.label}: mode '${mode}' is not supported`);
  return [{ t, nhwc: v.nhwc }];
}

function constantOfShape(ctx: OpContext): OpOutput[] {
  const proto = attrTensor(ctx.node, 'value');
  const dtype = proto ? tfDtypeOf(proto.dataType) : 'float32';
  const fill = proto ? protoToTensor(proto).dataSync()[0] : 0;
  return [plain(tf.fill(ctx.ints(0), fill, dtype))];
}

function range(ctx: OpContext): OpOutput[] {
  const [start, limit, delta] = [0, 1, 2].map((i) => ctx.floats(i)[0]);
  const dtype = ctx.required(0).t.dtype === 'int32' ? 'int32' : 'float32';
  return [plain(tf.range(start, limit, delta, dtype))];
}

/** Constant: a tensor attribute, or one of the scalar/list shorthand attributes. */
function constant(ctx: OpContext): OpOutput[] {
  const proto = attrTensor(ctx.node, 'value');
  if (proto) return [plain(protoToTensor(proto))];
  const f = ctx.node.attributes.get('value_float');
  if (f) return [plain(tf.scalar(attrFloat(ctx.node, 'value_float', 0)))];
  const i = ctx.node.attributes.get('value_int');
  if (i) return [plain(tf.scalar(attrInt(ctx.node, 'value_int', 0), 'int32'))];
  const fs = attrFloats(ctx.node, 'value_floats');
  if (fs) return [plain(tf.tensor1d(fs))];
  const is = attrInts(ctx.node, 'value_ints');
  if (is) return [plain(tf.tensor1d(is, 'int32'))];
  throw new GhnError('unsupported', `Constant node ${ctx.node.label}: only tensor, float and int values are supported`);
}

function cast(ctx: OpContext): OpOutput[] {
  const v = ctx.required(0);
  const to = attrInt(ctx.node, 'to', DataType.FLOAT);
  const dtype = tfDtypeOf(to);
  return [{ t: v.t.dtype === dtype ? v.t : tf.cast(v.t, dtype), nhwc: v.nhwc }];
}

function size(ctx: OpContext): OpOutput[] {
  return [plain(tf.scalar(ctx.required(0).t.size, 'int32'))];
}

/** ScatterND without reduction: a copy of data with the slices at `indices` replaced by `updates`. */
function scatterNd(ctx: OpContext): OpOutput[] {
  const reduction = attrString(ctx.node, 'reduction', 'none');
  if (reduction !== 'none') throw new GhnError('unsupported', `ScatterND node ${ctx.node.label}: reduction '${reduction}' is not supported`);
  const data = nchw(ctx, 0);
  const indices = ctx.required(1).t;
  const updates = nchw(ctx, 2);
  return [plain(tf.tensorScatterUpdate(data, indices.dtype === 'int32' ? indices : tf.cast(indices, 'int32'), updates))];
}

export const shapeOps: OpTable = {
  ScatterND: scatterNd,
  Shape: shape,
  Size: size,
  Reshape: reshape,
  Flatten: flatten,
  Transpose: transpose,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  Concat: concat,
  Slice: slice,
  Split: split,
  Gather: gather,
  Expand: expand,
  Tile: tile,
  Pad: pad,
  ConstantOfShape: constantOfShape,
  Range: range,
  Constant: constant,
  Cast: cast,
  CastLike: ((ctx) => {
    const v = ctx.required(0);
    const dtype = ctx.required(1).t.dtype;
    return [{ t: v.t.dtype === dtype ? v.t : tf.cast(v.t, dtype), nhwc: v.nhwc }];
  }) as OpImpl,
};
