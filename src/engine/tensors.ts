/**
 * ONNX TensorProto → tfjs tensor, in the dtypes the executor computes with: floating types become
 * float32, integer types int32 (int64 shape values clamped to the int32 range, which keeps Slice's
 * "to the end" sentinels meaning the same), bool stays bool.
 */
import * as tf from './tfjs-core.js';
import { GhnError } from '../errors.js';
import { isExternal } from '../onnx/external.js';
import { readTensorData } from '../onnx/tensor.js';
import { DataType, type Int64, type OnnxModel, type TensorProto } from '../onnx/types.js';

/** The model the executor runs (external tensor data resolves against its baseDir). */
export type ModelSource = OnnxModel;

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

function int64ToClampedNumber(v: Int64): number {
  const n = typeof v === 'number' ? v : v.toNumber();
  return Math.min(INT32_MAX, Math.max(INT32_MIN, n));
}

export function tensorDims(t: TensorProto): number[] {
  return (t.dims ?? []).map((d) => (typeof d === 'number' ? d : d.toNumber()));
}

type TfDtype = 'float32' | 'int32' | 'bool';

const FLOATS = new Set<number>([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16]);
const INTS = new Set<number>([DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64,
  DataType.UINT8, DataType.UINT16, DataType.UINT32, DataType.UINT64]);

export function tfDtypeOf(dataType: number | undefined): TfDtype {
  const d = dataType ?? DataType.FLOAT;
  if (FLOATS.has(d)) return 'float32';
  if (INTS.has(d)) return 'int32';
  if (d === DataType.BOOL) return 'bool';
  throw new GhnError('unsupported', `tensor data type ${DataType[d] ?? d} is not supported by the executor`);
}

/** Decodes IEEE half floats (rare in exports, but cheap to support). */
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

function decodeRaw(raw: Uint8Array, dataType: number, count: number): Float32Array | Int32Array | Uint8Array {
  // Copy into an aligned buffer: raw_data is a view into the file at arbitrary offsets (and a
  // Buffer's slice() would be another view).
  const bytes = new Uint8Array(raw.byteLength);
  bytes.set(raw);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fill = <T extends Float32Array | Int32Array | Uint8Array>(out: T, read: (i: number) => number): T => {
    for (let i = 0; i < count; i++) out[i] = read(i);
    return out;
  };
  switch (dataType) {
    case DataType.FLOAT: return new Float32Array(bytes.buffer, bytes.byteOffset, count);
    case DataType.DOUBLE: return fill(new Float32Array(count), (i) => view.getFloat64(i * 8, true));
    case DataType.FLOAT16: return fill(new Float32Array(count), (i) => halfToFloat(view.getUint16(i * 2, true)));
    case DataType.INT64: return fill(new Int32Array(count), (i) => {
      const n = Number(view.getBigInt64(i * 8, true));
      return Math.min(INT32_MAX, Math.max(INT32_MIN, n));
    });
    case DataType.UINT64: return fill(new Int32Array(count), (i) => Math.min(INT32_MAX, Number(view.getBigUint64(i * 8, true))));
    case DataType.INT32: return new Int32Array(bytes.buffer, bytes.byteOffset, count);
    case DataType.UINT32: return fill(new Int32Array(count), (i) => Math.min(INT32_MAX, view.getUint32(i * 4, true)));
    case DataType.INT16: return fill(new Int32Array(count), (i) => view.getInt16(i * 2, true));
    case DataType.UINT16: return fill(new Int32Array(count), (i) => view.getUint16(i * 2, true));
    case DataType.INT8: return fill(new Int32Array(count), (i) => view.getInt8(i));
    case DataType.UINT8: return fill(new Int32Array(count), (i) => view.getUint8(i));
    case DataType.BOOL: return bytes.subarray(0, count);
    default: throw new GhnError('unsupported', `tensor data type ${DataType[dataType] ?? dataType} is not supported by the executor`);
  }
}

function decodeFields(t: TensorProto, dataType: number): number[] {
  if (dataType === DataType.FLOAT || dataType === DataType.FLOAT16 || dataType === DataType.BFLOAT16) return [...(t.floatData ?? [])];
  if (dataType === DataType.DOUBLE) return [...(t.doubleData ?? [])];
  if (dataType === DataType.INT64) return (t.int64Data ?? []).map(int64ToClampedNumber);
  if (dataType === DataType.UINT64 || dataType === DataType.UINT32) return (t.uint64Data ?? []).map(int64ToClampedNumber);
  // INT32, INT16, INT8, UINT16, UINT8, BOOL live in int32_data.
  return [...(t.int32Data ?? [])];
}

/** The tensor's values as a tf.Tensor (caller owns it). */
export function protoToTensor(t: TensorProto, model?: OnnxModel): tf.Tensor {
  const dataType = t.dataType ?? DataType.FLOAT;
  const dtype = tfDtypeOf(dataType);
  const shape = tensorDims(t);
  const count = shape.reduce((a, b) => a * b, 1);
  let values: Float32Array | Int32Array | Uint8Array | number[];
  if (isExternal(t)) {
    // src/onnx resolves the file (and bytes replaced in memory but not yet written).
    const typed = readTensorData(t, model);
    values = decodeRaw(new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength), dataType, count);
  }
  else if (t.rawData && t.rawData.length > 0) values = decodeRaw(t.rawData, dataType, count);
  else values = decodeFields(t, dataType);
  if (values.length !== count) {
    throw new GhnError('bad-input', `tensor ${t.name ?? '(unnamed)'}: ${values.length} values for shape [${shape}]`);
  }
  return tf.tensor(dtype === 'bool' ? Array.from(values, (v) => (v ? 1 : 0)) : values, shape, dtype);
}
