/** Reductions, Softmax/LogSoftmax and ArgMax/ArgMin. */
import * as tf from '../tfjs-core.js';
import { NHWC_AXIS_OF_NCHW, normAxis } from '../layout.js';
import { attrInt, attrInts } from './attrs.js';
import { nchw } from './common.js';
import { spatialMeanNhwc } from './conv.js';
import type { OpContext, OpImpl, OpOutput, OpTable } from './types.js';

type Reducer = (x: tf.Tensor, axes: number[], keepDims: boolean) => tf.Tensor;

/** Axes come from the attribute (older opsets) or the second input (ReduceSum ≥ 13, all ≥ 18). */
function reduceAxes(ctx: OpContext, rank: number): number[] {
  const fromInput = ctx.input(1) ? ctx.ints(1) : undefined;
  const axes = fromInput ?? attrInts(ctx.node, 'axes');
  if (!axes || axes.length === 0) {
    // Empty axes: reduce everything, unless noop_with_empty_axes.
    return attrInt(ctx.node, 'noop_with_empty_axes', 0) ? [] : Array.from({ length: rank }, (_, i) => i);
  }
  return axes.map((a) => normAxis(a, rank));
}

function reduce(fn: Reducer): OpImpl {
  return (ctx) => {
    const v = ctx.required(0);
    const rank = v.t.rank;
    const axes = reduceAxes(ctx, rank);
    const keep = attrInt(ctx.node, 'keepdims', 1) === 1;
    if (axes.length === 0) return [{ t: v.t, nhwc: v.nhwc }];
    if (v.nhwc) {
      // Physical reduction keeps the logical order of the remaining axes unless both C and a
      // spatial axis survive a keepdims=0 reduction.
      const left = [0, 1, 2, 3].filter((a) => !axes.includes(a));
      const orderKept = keep || !(left.includes(1) && (left.includes(2) || left.includes(3)));
      if (orderKept) {
        const physical = axes.map((a) => NHWC_AXIS_OF_NCHW[a]).sort();
        if (fn === tf.mean && physical.join() === '1,2') {
          // x.mean((2, 3)) of an NHWC activation: a global average pool.
          const pooled = spatialMeanNhwc(v.t);
          return [{ t: keep ? pooled : tf.reshape(pooled, [v.t.shape[0], v.t.shape[3]] as number[]), nhwc: keep }];
        }
        const t = fn(v.t, physical, keep);
        return [{ t, nhwc: keep }];
      }
    }
    return [{ t: fn(nchw(ctx, 0), axes, keep), nhwc: false }];
  };
}

const sumSquare: Reducer = (x, axes, keep) => tf.sum(tf.mul(x, x), axes, keep);

/** Softmax along one axis; opsets < 13 flatten to 2-D at `axis` first. */
function softmaxLike(log: boolean): OpImpl {
  return (ctx) => {
    const x = nchw(ctx, 0);
    const legacy = ctx.node.opset < 13;
    const axis = normAxis(attrInt(ctx.node, 'axis', legacy ? 1 : -1), x.rank);
    const apply = (t: tf.Tensor, ax: number): tf.Tensor => {
      if (ax === t.rank - 1) return log ? tf.logSoftmax(t) : tf.softmax(t);
      const shifted = tf.sub(t, tf.max(t, ax, true));
      const lse = tf.log(tf.sum(tf.exp(shifted), ax, true));
      return log ? tf.sub(shifted, lse) : tf.exp(tf.sub(shifted, lse));
    };
    if (legacy) {
      const outer = x.shape.slice(0, axis).reduce((a, b) => a * b, 1);
      return [{ t: tf.reshape(apply(tf.reshape(x, [outer, -1]), 1), x.shape), nhwc: false }];
    }
    return [{ t: apply(x, axis), nhwc: false }];
  };
}

function argReduce(fn: (x: tf.Tensor, axis: number) => tf.Tensor): OpImpl {
  return (ctx): OpOutput[] => {
    const x = nchw(ctx, 0);
    const axis = normAxis(attrInt(ctx.node, 'axis', 0), x.rank);
    let t = fn(x, axis);
    if (attrInt(ctx.node, 'keepdims', 1) === 1) t = tf.expandDims(t, axis);
    return [{ t, nhwc: false }];
  };
}

export const reduceOps: OpTable = {
  ReduceMean: reduce(tf.mean),
  ReduceSum: reduce(tf.sum),
  ReduceMax: reduce(tf.max),
  ReduceMin: reduce(tf.min),
  ReduceProd: reduce(tf.prod),
  ReduceSumSquare: reduce(sumSquare),
  ReduceL2: reduce((x, axes, keep) => tf.sqrt(sumSquare(x, axes, keep))),
  ReduceL1: reduce((x, axes, keep) => tf.sum(tf.abs(x), axes, keep)),
  Softmax: softmaxLike(false),
  LogSoftmax: softmaxLike(true),
  ArgMax: argReduce(tf.argMax),
  ArgMin: argReduce(tf.argMin),
};
