/**
 * Typed getters for node attributes. Without a default they return undefined when the attribute
 * is absent; an attribute of the wrong type is a GhnError('bad-input').
 */
import { GhnError } from '../errors.js';
import { toNumber } from './int64.js';
import { AttributeType, type AttributeProto, type GraphProto, type NodeProto, type TensorProto } from './types.js';

const utf8 = new TextDecoder();

export function findAttr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}

function typed(node: NodeProto, name: string, expected: AttributeType): AttributeProto | undefined {
  const attr = findAttr(node, name);
  if (!attr) return undefined;
  // type is mandatory since IR 2; files without it are accepted when the value field is present.
  const actual = attr.type ?? AttributeType.UNDEFINED;
  if (actual !== expected && actual !== AttributeType.UNDEFINED) {
    throw new GhnError('bad-input', `node ${node.name || '?'} (${node.opType}): attribute '${name}' is ${AttributeType[actual] ?? actual}, expected ${AttributeType[expected]}`);
  }
  return attr;
}

export function attrInt(node: NodeProto, name: string): number | undefined;
export function attrInt(node: NodeProto, name: string, fallback: number): number;
export function attrInt(node: NodeProto, name: string, fallback?: number): number | undefined {
  const a = typed(node, name, AttributeType.INT);
  return a ? toNumber(a.i ?? 0, `attribute ${name}`) : fallback;
}

export function attrInts(node: NodeProto, name: string): number[] | undefined;
export function attrInts(node: NodeProto, name: string, fallback: number[]): number[];
export function attrInts(node: NodeProto, name: string, fallback?: number[]): number[] | undefined {
  const a = typed(node, name, AttributeType.INTS);
  return a ? (a.ints ?? []).map((v) => toNumber(v, `attribute ${name}`)) : fallback;
}

export function attrFloat(node: NodeProto, name: string): number | undefined;
export function attrFloat(node: NodeProto, name: string, fallback: number): number;
export function attrFloat(node: NodeProto, name: string, fallback?: number): number | undefined {
  const a = typed(node, name, AttributeType.FLOAT);
  return a ? (a.f ?? 0) : fallback;
}

export function attrFloats(node: NodeProto, name: string): number[] | undefined;
export function attrFloats(node: NodeProto, name: string, fallback: number[]): number[];
export function attrFloats(node: NodeProto, name: string, fallback?: number[]): number[] | undefined {
  const a = typed(node, name, AttributeType.FLOATS);
  return a ? [...(a.floats ?? [])] : fallback;
}

/** A STRING attribute decoded as UTF-8. */
export function attrString(node: NodeProto, name: string): string | undefined;
export function attrString(node: NodeProto, name: string, fallback: string): string;
export function attrString(node: NodeProto, name: string, fallback?: string): string | undefined {
  const a = typed(node, name, AttributeType.STRING);
  return a ? utf8.decode(a.s ?? new Uint8Array()) : fallback;
}

export function attrStrings(node: NodeProto, name: string): string[] | undefined {
  const a = typed(node, name, AttributeType.STRINGS);
  return a ? (a.strings ?? []).map((s) => utf8.decode(s)) : undefined;
}

export function attrTensor(node: NodeProto, name: string): TensorProto | undefined {
  return typed(node, name, AttributeType.TENSOR)?.t;
}

export function attrGraph(node: NodeProto, name: string): GraphProto | undefined {
  return typed(node, name, AttributeType.GRAPH)?.g;
}
