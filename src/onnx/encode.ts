/**
 * Encoding without big copies. protobufjs's Writer grows one buffer by doubling and, when it
 * closes a length-delimited message whose length needs more than one varint byte, shifts the whole
 * message forward; for a 100 MB model that is several 100 MB copies per nesting level. Here the
 * messages that can be big (model, graphs, tensors) are encoded field by field into a list of
 * parts, large bytes fields are referenced rather than copied, and lengths are known before their
 * contents are written. Small messages (nodes, value infos, ...) still go through protobufjs whole.
 * Field order and presence rules are protobufjs's own (each field is encoded by protobufjs from a
 * one-field object), so the output is the same bytes protobufjs would produce.
 */
import protobuf from 'protobufjs';
import { lazyRange, readRange, type LazyRange } from './lazy.js';
import type { TensorProto } from './types.js';

/** Message types encoded part by part; everything else is encoded by protobufjs in one call. */
const SPLIT = new Set(['ModelProto', 'GraphProto', 'TrainingInfoProto', 'SparseTensorProto', 'TensorProto']);
/** bytes fields at least this long are referenced, not copied, until the final write. */
const BIG_BYTES = 4096;

/** Bytes still in the model file (a lazily loaded tensor's raw_data payload). */
export interface FilePart {
  tensor: TensorProto;
  range: LazyRange;
}

export type Part = Uint8Array | FilePart;

export interface EncodedParts {
  parts: Part[];
  size: number;
}

type Msg = Record<string, unknown> & { $unknowns?: Uint8Array[] };

function push(out: EncodedParts, part: Part): void {
  const length = part instanceof Uint8Array ? part.length : part.range.length;
  if (length === 0) return;
  out.parts.push(part);
  out.size += length;
}

function header(tag: number, length: number): Uint8Array {
  return protobuf.Writer.create().uint32(tag).uint32(length).finish();
}

const sortedFields = new WeakMap<protobuf.Type, protobuf.Field[]>();
function fieldsById(type: protobuf.Type): protobuf.Field[] {
  let fields = sortedFields.get(type);
  if (!fields) {
    fields = [...type.fieldsArray].sort((a, b) => a.id - b.id);
    fields.forEach((f) => f.resolve());
    sortedFields.set(type, fields);
  }
  return fields;
}

function isSplit(field: protobuf.Field): field is protobuf.Field & { resolvedType: protobuf.Type } {
  return field.resolvedType instanceof protobuf.Type && SPLIT.has(field.resolvedType.name);
}

/** Appends the encoding of `msg` (without its own tag/length) to `out`. */
export function encodeParts(type: protobuf.Type, msg: Msg, out: EncodedParts = { parts: [], size: 0 }): EncodedParts {
  for (const field of fieldsById(type)) {
    const lazy = field.name === 'rawData' && type.name === 'TensorProto' ? lazyRange(msg as TensorProto) : undefined;
    if (lazy) {
      // referenced, not read: writeModelFile streams it from the model file
      push(out, header((field.id << 3) | 2, lazy.length));
      push(out, { tensor: msg as TensorProto, range: lazy });
      continue;
    }
    const value = msg[field.name];
    if (value === undefined || value === null) continue;
    if (field.repeated ? (value as unknown[]).length === 0 : !Object.prototype.hasOwnProperty.call(msg, field.name)) continue;
    if (isSplit(field)) {
      const tag = (field.id << 3) | 2;
      for (const item of field.repeated ? (value as Msg[]) : [value as Msg]) {
        const inner = encodeParts(field.resolvedType, item);
        push(out, header(tag, inner.size));
        for (const part of inner.parts) push(out, part);
      }
    } else if (field.type === 'bytes' && !field.repeated && (value as Uint8Array).length >= BIG_BYTES) {
      push(out, header((field.id << 3) | 2, (value as Uint8Array).length));
      push(out, value as Uint8Array);
    } else {
      push(out, type.encode({ [field.name]: value }).finish());
    }
  }
  for (const unknown of msg.$unknowns ?? []) push(out, unknown);
  return out;
}

/** Joins parts into one buffer (the single copy of the data). */
export function joinParts(encoded: EncodedParts): Uint8Array {
  const out = Buffer.allocUnsafeSlow(encoded.size);
  let pos = 0;
  for (const part of encoded.parts) {
    if (part instanceof Uint8Array) {
      out.set(part, pos);
      pos += part.length;
    } else {
      readRange(part.range, out, pos);
      pos += part.range.length;
    }
  }
  return out;
}
