/** The executor's op table: ONNX op type → implementation, one family per file. */
import { convOps } from './conv.js';
import { einsumOps } from './einsum.js';
import { elementwiseOps } from './elementwise.js';
import { linearOps } from './linear.js';
import { normOps } from './norm.js';
import { reduceOps } from './reduce.js';
import { resizeOps } from './resize.js';
import { shapeOps } from './shape.js';
import type { OpTable } from './types.js';

export const OPS: OpTable = {
  ...elementwiseOps,
  ...convOps,
  ...normOps,
  ...reduceOps,
  ...linearOps,
  ...einsumOps,
  ...shapeOps,
  ...resizeOps,
};

export type { OpContext, OpImpl, OpNode, OpOutput, Value, BatchStats } from './types.js';
