/** Public API of the ONNX I/O layer. */
import { toNumber } from './int64.js';
import type { OnnxModel } from './types.js';

export * from './types.js';
export { readModelFile, decodeModel, type DecodeOptions, type ReadOptions } from './read.js';
export { isLazy, LAZY_MIN_BYTES } from './lazy.js';
export { encodeModel, encodeModelParts, writePartsFile, writeModelFile, writeModelWithDataFile, writeFileAtomic, type WriteOptions } from './write.js';
export { joinParts, type EncodedParts } from './encode.js';
export {
  readTensorData, readFloat32, replaceTensorData, tensorShape, numElements, tensorByteLength,
  dataTypeName, type TensorData, type ReplaceOptions,
} from './tensor.js';
export { isExternal, externalRef, inlinedCopy, type ExternalRef } from './external.js';
export {
  findAttr, attrInt, attrInts, attrFloat, attrFloats, attrString, attrStrings, attrTensor, attrGraph,
} from './attributes.js';
export { toNumber, toBigInt, toInt64, isNonZero } from './int64.js';
export { halfToFloat, floatToHalf, bfloat16ToFloat, floatToBfloat16 } from './float16.js';
export { forEachTensor, allTensors, type TensorVisitor } from './walk.js';
export { unknownFieldCount } from './unknown.js';
export { onnxRoot } from './schema.js';

/** The opset version the model imports for `domain` ('' and 'ai.onnx' are the same domain). */
export function opsetVersion(model: OnnxModel, domain = ''): number | undefined {
  const wanted = domain === 'ai.onnx' ? '' : domain;
  const entry = model.proto.opsetImport?.find((o) => {
    const d = o.domain ?? '';
    return (d === 'ai.onnx' ? '' : d) === wanted;
  });
  return entry ? toNumber(entry.version) : undefined;
}
