/**
 * Resize / Upsample of 4-D NCHW data over H and W, nearest or (bi)linear, mapped onto tfjs's image
 * resizers. Coordinate modes: asymmetric, half_pixel / pytorch_half_pixel, align_corners.
 */
import * as tf from '../tfjs-core.js';
import { GhnError } from '../../errors.js';
import { attrFloats, attrString } from './attrs.js';
import { nhwc, physicalNhwc } from './common.js';
import type { OpContext, OpOutput, OpTable } from './types.js';

type Coordinates = 'asymmetric' | 'half_pixel' | 'pytorch_half_pixel' | 'align_corners' | 'tf_half_pixel_for_nn';

function targetSize(ctx: OpContext, h: number, w: number): [number, number] {
  const legacy = ctx.node.opType === 'Upsample' || ctx.node.opset < 11;
  if (legacy) {
    const scales = ctx.node.opset >= 9 ? ctx.floats(1) : attrFloats(ctx.node, 'scales')!;
    return [Math.floor(h * scales[2]), Math.floor(w * scales[3])];
  }
  const sizes = ctx.input(3) ? ctx.ints(3) : undefined;
  if (sizes && sizes.length === 4) return [sizes[2], sizes[3]];
  const scales = ctx.input(2) ? ctx.floats(2) : [];
  if (scales.length !== 4) throw new GhnError('bad-input', `Resize node ${ctx.node.label}: needs 4 scales or 4 sizes`);
  return [Math.floor(h * scales[2]), Math.floor(w * scales[3])];
}

function resize(ctx: OpContext): OpOutput[] {
  if (ctx.required(0).t.rank !== 4) throw new GhnError('unsupported', `${ctx.node.opType} node ${ctx.node.label}: only 4-D inputs are supported`);
  const x = nhwc(ctx, 0) as tf.Tensor4D;
  const size = targetSize(ctx, x.shape[1], x.shape[2]);
  const mode = attrString(ctx.node, 'mode', 'nearest');
  const coords = attrString(ctx.node, 'coordinate_transformation_mode', ctx.node.opType === 'Upsample' ? 'asymmetric' : 'half_pixel') as Coordinates;
  const alignCorners = coords === 'align_corners';
  const halfPixel = coords === 'half_pixel' || coords === 'pytorch_half_pixel' || coords === 'tf_half_pixel_for_nn';
  if (mode === 'nearest') return [physicalNhwc(tf.image.resizeNearestNeighbor(x, size, alignCorners, halfPixel))];
  if (mode === 'linear' || mode === 'bilinear') return [physicalNhwc(tf.image.resizeBilinear(x, size, alignCorners, halfPixel))];
  throw new GhnError('unsupported', `${ctx.node.opType} node ${ctx.node.label}: mode '${mode}' is not supported`);
}

export const resizeOps: OpTable = {
  Resize: resize,
  Upsample: resize,
};
