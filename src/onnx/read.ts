/**
 * Reading ONNX models. Tensor bytes (raw_data) stay views into the file buffer: nothing is copied;
 * from big files, large payloads are not even read until asked for (lazy.ts).
 * Fields unknown to our schema (e.g. from a newer IR) are kept by protobufjs as raw bytes on the
 * message that holds them (`$unknowns`) and written back unchanged by encodeModel.
 */
import fs from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import { GhnError } from '../errors.js';
import { checkExternalFiles } from './external.js';
import { decodeFileLazily } from './lazy.js';
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

export interface ReadOptions {
  /**
   * Leave large raw_data payloads on disk and read them when asked (see lazy.ts). 'auto' (the
   * default) does so for files of 8 MiB or more.
   */
  lazy?: boolean | 'auto';
  /** Smallest payload left on disk when lazy (default 64 KiB). */
  lazyMinBytes?: number;
}

const LAZY_AUTO_FILE_BYTES = 8 * 2 ** 20;

/** Reads and decodes an ONNX file; checks its external data files exist. */
export function readModelFile(file: string, opts: ReadOptions = {}): OnnxModel {
  const label = path.basename(file);
  const absolute = path.resolve(file);
  const fail = (err: unknown): never => {
    if (err instanceof GhnError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new GhnError('not-found', `${file}: no such file`);
    throw new GhnError('bad-input', `${file}: cannot read (${code ?? String(err)})`);
  };
  let fd = -1;
  try {
    // Checked before opening: opening a pipe could block, devices could never end.
    const preStat = fs.statSync(file);
    if (preStat.isDirectory()) throw new GhnError('bad-input', `${file}: is a directory, not an ONNX model`);
    if (!preStat.isFile()) throw new GhnError('bad-input', `${file}: not a regular file`);
    fd = fs.openSync(file, 'r');
  } catch (err) {
    fail(err);
  }
  try {
    const stat = fs.fstatSync(fd);
    if (stat.size > MAX_PROTOBUF_BYTES) {
      throw new GhnError('bad-input', `${file}: ${stat.size} bytes is over the 2 GiB protobuf limit, so not an ONNX model (large models keep tensors in external data files)`);
    }
    const lazy = opts.lazy ?? 'auto';
    const baseDir = path.dirname(absolute);
    let model: OnnxModel;
    if (lazy === true || (lazy === 'auto' && stat.size >= LAZY_AUTO_FILE_BYTES)) {
      const proto = decodeOrThrow(label, stat.size, () => decodeFileLazily(absolute, fd, stat, opts.lazyMinBytes));
      model = finish(proto, stat.size, baseDir, label);
    } else {
      const bytes = Buffer.allocUnsafeSlow(stat.size);
      readAll(fd, bytes, file);
      model = decodeModel(bytes, { baseDir, label });
    }
    model.sourcePath = absolute;
    return model;
  } catch (err) {
    return fail(err);
  } finally {
    fs.closeSync(fd);
  }
}

function readAll(fd: number, into: Uint8Array, file: string): void {
  let done = 0;
  while (done < into.length) {
    const n = fs.readSync(fd, into, done, into.length - done, done);
    if (n === 0) throw new GhnError('bad-input', `${file}: file shrank while being read`);
    done += n;
  }
}

function decodeOrThrow(label: string, size: number, decode: () => unknown): ModelProto {
  let proto: ModelProto;
  try {
    proto = decode() as ModelProto;
  } catch (err) {
    if (err instanceof GhnError) throw err;
    const why = err instanceof Error ? err.message : String(err);
    throw new GhnError('bad-input', `${label}: not an ONNX model (protobuf decode failed: ${why})`);
  }
  if (!proto.graph) {
    const why = size === 0 ? 'the file is empty' : 'it has no graph';
    throw new GhnError('bad-input', `${label}: not an ONNX model (${why})`);
  }
  return proto;
}

function finish(proto: ModelProto, size: number, baseDir: string | undefined, label: string): OnnxModel {
  if (baseDir !== undefined) checkExternalFiles(allTensors(proto), baseDir, label);
  return { proto, baseDir, sourceBytes: size };
}

export type { OnnxModel } from './types.js';

/** Decodes ONNX bytes. The returned tensors' rawData are views into `bytes`: keep it unmodified. */
export function decodeModel(bytes: Uint8Array, opts: DecodeOptions = {}): OnnxModel {
  const label = opts.label ?? 'model';
  const proto = decodeOrThrow(label, bytes.length, () => {
    const reader = protobuf.Reader.create(bytes);
    reader.discardUnknown = false;
    return ModelProtoType.decode(reader);
  });
  return finish(proto, bytes.length, opts.baseDir, label);
}
