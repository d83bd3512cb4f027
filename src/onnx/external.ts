/**
 * External tensor data (TensorProto.data_location = EXTERNAL): where a tensor's bytes live, reading
 * them from disk, and holding replaced bytes in memory until the model is written.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GhnError } from '../errors.js';
import { toNumber } from './int64.js';
import { DataLocation, type TensorProto } from './types.js';

export interface ExternalRef {
  /** Path of the data file relative to the model's directory. */
  location: string;
  offset: number;
  /** Byte length; undefined means "to the end of the file". */
  length?: number;
}

export function isExternal(t: TensorProto): boolean {
  return t.dataLocation === DataLocation.EXTERNAL;
}

/** Parses a tensor's external_data entries; GhnError('bad-input') if malformed. */
export function externalRef(t: TensorProto): ExternalRef {
  const entries = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = entries.get('location');
  const name = t.name || '(unnamed)';
  if (!location) throw new GhnError('bad-input', `tensor ${name}: external data has no location`);
  if (path.isAbsolute(location) || path.normalize(location).split(/[\\/]/).includes('..')) {
    throw new GhnError('bad-input', `tensor ${name}: external data location '${location}' leaves the model directory`);
  }
  const offset = parseCount(entries.get('offset'), name, 'offset') ?? 0;
  const length = parseCount(entries.get('length'), name, 'length');
  return { location, offset, length };
}

function parseCount(text: string | undefined, name: string, what: string): number | undefined {
  if (text === undefined || text === '') return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new GhnError('bad-input', `tensor ${name}: external data ${what} '${text}' is not a byte count`);
  }
  return n;
}

/** Sets (or adds) one external_data entry, keeping the others and their order. */
export function setExternalEntry(t: TensorProto, key: string, value: string): void {
  const entries = (t.externalData ??= []);
  const entry = entries.find((e) => e.key === key);
  if (entry) entry.value = value;
  else entries.push({ key, value });
}

export function externalPath(baseDir: string, location: string): string {
  return path.resolve(baseDir, location);
}

/** Reads an external tensor's bytes from `baseDir/location` (a fresh buffer; nothing is cached). */
export function readExternalBytes(t: TensorProto, baseDir: string | undefined): Uint8Array {
  const ref = externalRef(t);
  const name = t.name || '(unnamed)';
  if (baseDir === undefined) {
    throw new GhnError('missing-data', `tensor ${name}: data is in external file '${ref.location}' but the model was not loaded from a file`);
  }
  const file = externalPath(baseDir, ref.location);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new GhnError('missing-data', `tensor ${name}: external data file '${file}' cannot be opened (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const length = ref.length ?? size - ref.offset;
    if (ref.offset + length > size || length < 0) {
      throw new GhnError('bad-input', `tensor ${name}: external data range ${ref.offset}+${length} runs past the end of '${file}' (${size} bytes)`);
    }
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(fd, out, done, length - done, ref.offset + done);
      if (n === 0) throw new GhnError('bad-input', `tensor ${name}: external data file '${file}' ended early`);
      done += n;
    }
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Checks that every external data file exists and is long enough for the ranges that refer to it.
 * Cheap: one stat per distinct file.
 */
export function checkExternalFiles(tensors: TensorProto[], baseDir: string, label: string): void {
  const sizes = new Map<string, number>();
  for (const t of tensors) {
    if (!isExternal(t)) continue;
    const ref = externalRef(t);
    const file = externalPath(baseDir, ref.location);
    let size = sizes.get(file);
    if (size === undefined) {
      try {
        size = fs.statSync(file).size;
      } catch {
        throw new GhnError('missing-data', `${label}: external data file '${ref.location}' not found (expected at ${file})`);
      }
      sizes.set(file, size);
    }
    const end = ref.offset + (ref.length ?? 0);
    if (end > size) {
      throw new GhnError('bad-input', `${label}: tensor ${t.name || '(unnamed)'} needs bytes ${ref.offset}..${end} of '${ref.location}', which has only ${size}`);
    }
  }
}

/** Replaced bytes of external tensors, kept until writeModelFile puts them in the data file. */
const pending = new WeakMap<TensorProto, Uint8Array>();

export function setPendingExternal(t: TensorProto, bytes: Uint8Array): void {
  pending.set(t, bytes);
}

export function pendingExternal(t: TensorProto): Uint8Array | undefined {
  return pending.get(t);
}

/**
 * A copy of an external tensor with its bytes inline (raw_data): the replaced bytes if any, else
 * those of its data file. For models encoded to one buffer (onnxruntime cannot follow a relative
 * data path from bytes).
 */
export function inlinedCopy(t: TensorProto, baseDir: string | undefined): TensorProto {
  const { externalData: _entries, dataLocation: _location, ...fields } = t;
  return { ...fields, rawData: pendingExternal(t) ?? readExternalBytes(t, baseDir) };
}
