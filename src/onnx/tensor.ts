/**
 * Typed access to TensorProto values, wherever they are stored: raw_data (little-endian bytes),
 * the typed repeated fields (float_data, int32_data, ...), or an external data file.
 */
import os from 'node:os';
import { GhnError } from '../errors.js';
import { isExternal, pendingExternal, readExternalBytes, setPendingExternal } from './external.js';
import { bfloat16ToFloat, floatToBfloat16, floatToHalf, halfToFloat } from './float16.js';
import { toBigInt, toNumber } from './int64.js';
import { DataType, type Int64, type OnnxModel, type TensorProto } from './types.js';

export type TensorData =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array
  | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

type ArrayCtor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): TensorData;
  new (length: number): TensorData;
  readonly BYTES_PER_ELEMENT: number;
};

/** Which typed field holds a dtype's values when raw_data is not used (per onnx.proto). */
type TypedField = 'floatData' | 'int32Data' | 'int64Data' | 'doubleData' | 'uint64Data';

interface Layout {
  /** Array type returned by readTensorData. */
  array: ArrayCtor;
  /** Bits per tensor element in raw_data. */
  bits: number;
  /** Array items per tensor element (2 for complex numbers). */
  lanes: number;
  field: TypedField;
}

const layout = (array: ArrayCtor, bits: number, field: TypedField, lanes = 1): Layout => ({ array, bits, field, lanes });

/** Storage of every numeric dtype. 4-bit types stay packed, two per byte, as in raw_data. */
const LAYOUTS: Partial<Record<DataType, Layout>> = {
  [DataType.FLOAT]: layout(Float32Array, 32, 'floatData'),
  [DataType.UINT8]: layout(Uint8Array, 8, 'int32Data'),
  [DataType.INT8]: layout(Int8Array, 8, 'int32Data'),
  [DataType.UINT16]: layout(Uint16Array, 16, 'int32Data'),
  [DataType.INT16]: layout(Int16Array, 16, 'int32Data'),
  [DataType.INT32]: layout(Int32Array, 32, 'int32Data'),
  [DataType.INT64]: layout(BigInt64Array, 64, 'int64Data'),
  [DataType.BOOL]: layout(Uint8Array, 8, 'int32Data'),
  [DataType.FLOAT16]: layout(Uint16Array, 16, 'int32Data'),
  [DataType.DOUBLE]: layout(Float64Array, 64, 'doubleData'),
  [DataType.UINT32]: layout(Uint32Array, 32, 'uint64Data'),
  [DataType.UINT64]: layout(BigUint64Array, 64, 'uint64Data'),
  [DataType.COMPLEX64]: layout(Float32Array, 64, 'floatData', 2),
  [DataType.COMPLEX128]: layout(Float64Array, 128, 'doubleData', 2),
  [DataType.BFLOAT16]: layout(Uint16Array, 16, 'int32Data'),
  [DataType.FLOAT8E4M3FN]: layout(Uint8Array, 8, 'int32Data'),
  [DataType.FLOAT8E4M3FNUZ]: layout(Uint8Array, 8, 'int32Data'),
  [DataType.FLOAT8E5M2]: layout(Uint8Array, 8, 'int32Data'),
  [DataType.FLOAT8E5M2FNUZ]: layout(Uint8Array, 8, 'int32Data'),
  [DataType.UINT4]: layout(Uint8Array, 4, 'int32Data'),
  [DataType.INT4]: layout(Uint8Array, 4, 'int32Data'),
  [DataType.FLOAT4E2M1]: layout(Uint8Array, 4, 'int32Data'),
  [DataType.FLOAT8E8M0]: layout(Uint8Array, 8, 'int32Data'),
};

export function dataTypeName(dt: number | undefined): string {
  return DataType[dt ?? 0] ?? `dtype ${dt}`;
}

export function tensorShape(t: TensorProto): number[] {
  return (t.dims ?? []).map((d: Int64) => toNumber(d, `dimension of tensor ${t.name}`));
}

/** Number of elements (1 for a scalar). */
export function numElements(t: TensorProto): number {
  return tensorShape(t).reduce((a, b) => a * b, 1);
}

function layoutOf(t: TensorProto): Layout {
  const found = LAYOUTS[(t.dataType ?? 0) as DataType];
  if (!found) throw new GhnError('unsupported', `tensor ${t.name || '(unnamed)'}: cannot read ${dataTypeName(t.dataType)} data`);
  return found;
}

/** Bytes of the tensor's data in raw_data / external form. */
export function tensorByteLength(t: TensorProto): number {
  const l = layoutOf(t);
  return Math.ceil((numElements(t) * l.bits) / 8);
}

let endiannessChecked = false;
function assertLittleEndian(): void {
  if (endiannessChecked) return;
  if (os.endianness() !== 'LE') throw new GhnError('unsupported', 'ONNX raw data is little-endian; this machine is big-endian');
  endiannessChecked = true;
}

/** A typed view of `bytes`, copying only when the bytes are not aligned for the element type. */
function viewAs(bytes: Uint8Array, ctor: ArrayCtor): TensorData {
  assertLittleEndian();
  const count = bytes.byteLength / ctor.BYTES_PER_ELEMENT;
  if (bytes.byteOffset % ctor.BYTES_PER_ELEMENT === 0) return new ctor(bytes.buffer, bytes.byteOffset, count);
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new ctor(copy.buffer, 0, count);
}

function hasRawData(t: TensorProto): boolean {
  return t.rawData !== undefined && t.rawData !== null && t.rawData.length > 0;
}

/** The tensor's bytes when stored as raw_data or externally; undefined when typed fields are used. */
function storedBytes(t: TensorProto, model: OnnxModel | undefined): Uint8Array | undefined {
  if (isExternal(t)) return pendingExternal(t) ?? readExternalBytes(t, model?.baseDir);
  return hasRawData(t) ? t.rawData : undefined;
}

/**
 * The tensor's values as a typed array of its dtype (FLOAT16/BFLOAT16 as raw Uint16 bits, 4-bit and
 * 8-bit float types as packed bytes, complex as interleaved pairs). The result may share memory with
 * the decoded model: treat it as read-only.
 */
export function readTensorData(t: TensorProto, model?: OnnxModel): TensorData {
  const l = layoutOf(t);
  const name = t.name || '(unnamed)';
  const expectedBytes = tensorByteLength(t);
  const bytes = storedBytes(t, model);
  if (bytes !== undefined) {
    if (bytes.length !== expectedBytes) {
      throw new GhnError('bad-input', `tensor ${name}: has ${bytes.length} data bytes, expected ${expectedBytes} for ${dataTypeName(t.dataType)} [${tensorShape(t).join(', ')}]`);
    }
    return viewAs(bytes, l.array);
  }
  const values = (t[l.field] ?? []) as (number | Int64)[];
  const packedElements = l.bits === 4 ? Math.ceil(numElements(t) / 2) : numElements(t) * l.lanes;
  if (values.length !== packedElements) {
    throw new GhnError('bad-input', `tensor ${name}: has ${values.length} values in ${l.field}, expected ${packedElements} for [${tensorShape(t).join(', ')}]`);
  }
  const out = new l.array(values.length);
  if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
    values.forEach((v, i) => (out[i] = toBigInt(v as Int64)));
  } else {
    values.forEach((v, i) => (out[i] = typeof v === 'number' ? v : toNumber(v)));
  }
  return out;
}

/** Float tensors (FLOAT, FLOAT16, BFLOAT16, DOUBLE) as float32. May share memory with the model: read-only. */
export function readFloat32(t: TensorProto, model?: OnnxModel): Float32Array {
  const data = readTensorData(t, model);
  switch (t.dataType) {
    case DataType.FLOAT:
      return data as Float32Array;
    case DataType.DOUBLE:
      return Float32Array.from(data as Float64Array);
    case DataType.FLOAT16:
      return Float32Array.from(data as Uint16Array, halfToFloat);
    case DataType.BFLOAT16:
      return Float32Array.from(data as Uint16Array, bfloat16ToFloat);
    default:
      throw new GhnError('unsupported', `tensor ${t.name}: ${dataTypeName(t.dataType)} is not a floating-point type`);
  }
}

/** Encoders from float32 values to the little-endian bytes of each writable float dtype. */
const FLOAT_ENCODERS: Partial<Record<DataType, (data: Float32Array) => Uint8Array>> = {
  [DataType.FLOAT]: (d) => new Uint8Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength)),
  [DataType.DOUBLE]: (d) => new Uint8Array(Float64Array.from(d).buffer),
  [DataType.FLOAT16]: (d) => new Uint8Array(Uint16Array.from(d, floatToHalf).buffer),
  [DataType.BFLOAT16]: (d) => new Uint8Array(Uint16Array.from(d, floatToBfloat16).buffer),
};

/** The typed fields a float tensor may have used before; cleared when raw_data takes over. */
const FLOAT_FIELDS: TypedField[] = ['floatData', 'int32Data', 'doubleData'];

/**
 * Sets new values, stored in the tensor's own dtype (float32 data is rounded for FLOAT16/BFLOAT16).
 * Name, dims, doc string and metadata are untouched. External tensors stay external: their new bytes
 * are held in memory and written to the data file by writeModelFile.
 */
export interface ReplaceOptions {
  /**
   * For FLOAT tensors, store `data`'s own bytes instead of a copy (saves a copy of every predicted
   * tensor); the caller must not modify `data` afterwards.
   */
  adopt?: boolean;
}

export function replaceTensorData(t: TensorProto, data: Float32Array, opts: ReplaceOptions = {}): void {
  const name = t.name || '(unnamed)';
  const n = numElements(t);
  if (data.length !== n) {
    throw new GhnError('bad-input', `tensor ${name}: new data has ${data.length} values, shape [${tensorShape(t).join(', ')}] needs ${n}`);
  }
  const encode = FLOAT_ENCODERS[(t.dataType ?? 0) as DataType];
  if (!encode) throw new GhnError('unsupported', `tensor ${name}: cannot store float data as ${dataTypeName(t.dataType)}`);
  assertLittleEndian();
  const bytes = opts.adopt && t.dataType === DataType.FLOAT
    ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    : encode(data);
  if (isExternal(t)) {
    setPendingExternal(t, bytes);
    return;
  }
  t.rawData = bytes;
  for (const field of FLOAT_FIELDS) if (t[field]?.length) t[field] = [];
}
