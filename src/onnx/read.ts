/**
 * Reading ONNX models. Tensor bytes (raw_data) stay views into the file buffer: nothing is copied.
 * Fields unknown to our schema (e.g. from a newer IR) are kept by protobufjs as raw bytes on the
 * message that holds them (`$unknowns`) and written back unchanged by encodeModel.
 */
import fs from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import { GhnError } from '../errors.js';
import { checkExternalFiles } from './external.js';
import { ModelProtoType } from './schema.js';
import type { ModelProto, OnnxModel } from './types.js';
import { allTensors } from './walk.js';

export interface DecodeOptions {
  /** Directory that external data locations are relative to; enables the external-data check. */
  baseDir?: string;
  /** Name used in error messages (default "model"). */
  label?: string;
}

/** protobuf messages cannot exceed 2 GiB. */
const MAX_PROTOBUF_BYTES = 2 ** 31;

/** Reads and decodes an ONNX file; checks its external data files exist. */
export function readModelFile(file: string): OnnxModel {
  const label = path.basename(file);
  let bytes: Buffer;
  try {
    const stat = fs.statSync(file);
    // Devices and pipes could block or never end; only regular files are models.
    if (stat.isDirectory()) throw new GhnError('bad-input', `${file}: is a directory, not an ONNX model`);
    if (!stat.isFile()) throw new GhnError('bad-input', `${file}: not a regular file`);
    if (stat.size > MAX_PROTOBUF_BYTES) {
      throw new GhnError('bad-input', `${file}: ${stat.size} bytes is over the 2 GiB protobuf limit, so not an ONNX model (large models keep tensors in external data files)`);
    }
    bytes = fs.readFileSync(file);
  } catch (err) {
    if (err instanceof GhnError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new GhnError('not-found', `${file}: no such file`);
    throw new GhnError('bad-input', `${file}: cannot read (${code ?? String(err)})`);
  }
  const absolute = path.resolve(file);
  const model = decodeModel(bytes, { baseDir: path.dirname(absolute), label });
  model.sourcePath = absolute;
  return model;
}

export type { OnnxModel } from './types.js';

/** Decodes ONNX bytes. The returned tensors' rawData are views into `bytes`: keep it unmodified. */
export function decodeModel(bytes: Uint8Array, opts: DecodeOptions = {}): OnnxModel {
  const label = opts.label ?? 'model';
  let proto: ModelProto;
  try {
    const reader = protobuf.Reader.create(bytes);
    reader.discardUnknown = false;
    proto = ModelProtoType.decode(reader) as unknown as ModelProto;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new GhnError('bad-input', `${label}: not an ONNX model (protobuf decode failed: ${why})`);
  }
  if (!proto.graph) {
    const why = bytes.length === 0 ? 'the file is empty' : 'it has no graph';
    throw new GhnError('bad-input', `${label}: not an ONNX model (${why})`);
  }
  if (opts.baseDir !== undefined) checkExternalFiles(allTensors(proto), opts.baseDir, label);
  return { proto, baseDir: opts.baseDir, sourceBytes: bytes.length };
}
