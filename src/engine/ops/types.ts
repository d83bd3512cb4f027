/**
 * Contract between the executor and the per-op implementations in this folder.
 *
 * A runtime value carries its tensor plus a layout flag: 4-D activations may be held physically in
 * NHWC (what tfjs convolutions and pools want) while the ONNX graph speaks NCHW. `nhwc: true` means
 * `t` is the NCHW value permuted by [0, 2, 3, 1]. Everything else is held exactly as ONNX defines it.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { AttributeProto } from '../../onnx/types.js';

export interface Value {
  readonly t: tf.Tensor;
  /** Physically NHWC (only ever true for rank-4 values). */
  readonly nhwc: boolean;
  /**
   * The same tensor on every call with the same input shapes: constants, shape arithmetic and
   * file initializers that the caller did not override. Derived forms of stable values are cached.
   */
  readonly stable: boolean;
  /** Name of the ONNX value, used as a cache key for derived forms. */
  readonly name: string;
}

/** What an op implementation sees of one node. */
export interface OpNode {
  readonly opType: string;
  /** Node name, or its first output when unnamed; used in error messages and as BN stats key. */
  readonly label: string;
  readonly attributes: ReadonlyMap<string, AttributeProto>;
  readonly outputCount: number;
  /** Opset version of the default ONNX domain, for ops whose signature changed across opsets. */
  readonly opset: number;
}

export interface BatchStats {
  mean: tf.Tensor;
  /** Biased batch variance (the one used to normalize). */
  variance: tf.Tensor;
  /** Elements averaged per channel (N·H·W), for the unbiased running-variance update. */
  count: number;
}

export interface OpContext {
  readonly node: OpNode;
  readonly training: boolean;
  /** Input i, or undefined when absent or given as the empty name. */
  input(i: number): Value | undefined;
  /** Input i, which must be present. */
  required(i: number): Value;
  /** Number of declared inputs (including empty optional ones). */
  readonly inputCount: number;
  /** Integer contents of a stable input (shape tensors, axes, pads...). Cached per plan. */
  ints(i: number): number[];
  /** Float contents of a stable scalar-ish input. */
  floats(i: number): number[];
  /**
   * Derived form of input i: cached when the input is stable (e.g. a transposed default weight or a
   * broadcast constant permuted to NHWC), recomputed otherwise so gradients reach supplied params.
   */
  derive(i: number, tag: string, make: (t: tf.Tensor) => tf.Tensor): tf.Tensor;
  /** Report training-mode batch statistics of a normalization node. */
  reportBatchStats(stats: BatchStats): void;
}

/** Output of an op: tensor plus layout. Stability is decided by the executor. */
export interface OpOutput {
  t: tf.Tensor;
  nhwc: boolean;
}

export type OpImpl = (ctx: OpContext) => OpOutput[];

export type OpTable = Readonly<Record<string, OpImpl>>;
