import type { BufferRole, OpKind, ParamRole } from './vocabulary.js';

/**
 * How a parameter is stored relative to its canonical shape.
 * - 'canonical': stored exactly in the canonical shape (conv [C_out, C_in/groups, kH, kW], linear [out, in], …).
 * - 'transposed': a 2-D weight stored as [in, out] (MatMul operand, Gemm with transB = 0).
 */
export type StorageLayout = 'canonical' | 'transposed';

/** One place a parameter tensor is used. A shared initializer gives one slot per use. */
export interface ParamSlot {
  /** Unique id: the consumed value's name, suffixed with `@<node>` when one value fills several slots. */
  readonly id: string;
  readonly role: ParamRole;
  /** The initializer that currently holds the data (shared slots name the same one). */
  readonly initializer: string;
  /** The value name as the using op reads it (after Identity/Transpose…); a good name for a split copy. */
  readonly value: string;
  /** ONNX nodes between the initializer and the using op (Identity, Transpose, …). */
  readonly path: readonly number[];
  /** The ONNX node input that reads this slot's value. */
  readonly consumer: { readonly node: number; readonly input: number };
  readonly storedShape: readonly number[];
  readonly shape: readonly number[];
  readonly layout: StorageLayout;
  /** Canonical op that owns the slot. */
  readonly op: string;
  /** Number of slots the initializer fills (1 when not shared). */
  readonly shareCount: number;
  readonly elements: number;
}

/** Non-trainable state attached to an op (BatchNorm running statistics). */
export interface BufferSlot {
  readonly role: BufferRole;
  readonly initializer: string;
  readonly op: string;
  readonly elements: number;
}

/** Hyper-parameters of an op that shape its parameters and its behaviour. */
export interface OpAttributes {
  kernel?: readonly number[];
  stride?: readonly number[];
  dilation?: readonly number[];
  pads?: readonly number[];
  groups?: number;
  axis?: number;
  epsilon?: number;
  /** BatchNormalization exported in training form (5 outputs). */
  trainingForm?: boolean;
}

export interface OpNode {
  readonly id: string;
  readonly kind: OpKind;
  /** The ONNX node this op is named after. */
  readonly name: string;
  /** ONNX node indices this op covers (several for decomposed layers). */
  readonly onnxNodes: readonly number[];
  /** ONNX operator types covered, for display. */
  readonly onnxOps: readonly string[];
  readonly params: readonly string[];
  readonly buffers: readonly string[];
  readonly attrs: OpAttributes;
  /** Activation values this op produces that others (or the graph outputs) read. */
  readonly outputs: readonly string[];
  readonly isGraphOutput: boolean;
  /** Position in topological order. */
  readonly index: number;
}

/** Something the importer met and could not place. */
export interface Unsupported {
  readonly kind: 'operator' | 'parameter';
  readonly opType: string;
  readonly node: string;
  /** Index of the ONNX node in the graph's node list. */
  readonly onnxNode: number;
  readonly detail: string;
}
