/** Typed reads of node attributes, with ONNX defaults supplied by the caller. */
import type { AttributeProto, Int64, TensorProto } from '../../onnx/types.js';
import type { OpNode } from './types.js';

function int64(v: Int64 | undefined): number {
  if (v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

function get(node: OpNode, name: string): AttributeProto | undefined {
  return node.attributes.get(name);
}

export function attrInt(node: OpNode, name: string, fallback: number): number {
  const a = get(node, name);
  return a ? int64(a.i) : fallback;
}

export function attrFloat(node: OpNode, name: string, fallback: number): number {
  const a = get(node, name);
  return a && a.f !== undefined ? a.f : fallback;
}

export function attrInts(node: OpNode, name: string): number[] | undefined {
  const a = get(node, name);
  return a ? (a.ints ?? []).map(int64) : undefined;
}

export function attrFloats(node: OpNode, name: string): number[] | undefined {
  const a = get(node, name);
  return a ? [...(a.floats ?? [])] : undefined;
}

export function attrString(node: OpNode, name: string, fallback: string): string {
  const a = get(node, name);
  return a && a.s ? new TextDecoder().decode(a.s) : fallback;
}

export function attrTensor(node: OpNode, name: string): TensorProto | undefined {
  return get(node, name)?.t;
}

export { int64 as int64ToNumber };
