/**
 * The idx format of (Fashion-)MNIST: bytes 0–1 zero, byte 2 element type, byte 3 rank, then one
 * big-endian uint32 per dimension, then the data. Only unsigned-byte data (type 0x08) occurs in
 * the datasets we read. Files may be gzipped (recognized by the gzip magic, not the name).
 */
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { constants as zlibConstants, gunzipSync } from 'node:zlib';
import { GhnError } from '../errors.js';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const UNSIGNED_BYTE = 0x08;
const ELEMENT_TYPES: Record<number, string> = {
  0x08: 'unsigned byte', 0x09: 'signed byte', 0x0b: 'int16', 0x0c: 'int32', 0x0d: 'float32', 0x0e: 'float64',
};

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * The header of (decompressed) idx bytes. With `complete` false, `raw` may be a prefix of the file:
 * undefined while it is too short to hold the header; otherwise too short is a truncated file.
 */
function parseHeader(raw: Uint8Array, source: string, complete: boolean): { dims: number[]; headerLength: number } | undefined {
  if (raw.length < 4 && !complete) return undefined;
  if (raw.length < 4 || raw[0] !== 0 || raw[1] !== 0) {
    throw new GhnError('bad-input', `${source}: not an idx file (bad magic number)`);
  }
  const type = raw[2]!;
  if (!(type in ELEMENT_TYPES)) throw new GhnError('bad-input', `${source}: unknown idx element type 0x${type.toString(16)}`);
  if (type !== UNSIGNED_BYTE) {
    throw new GhnError('unsupported', `${source}: idx element type ${ELEMENT_TYPES[type]} is not supported (only unsigned byte)`);
  }
  const rank = raw[3]!;
  const headerLength = 4 + 4 * rank;
  if (rank > 0 && raw.length < headerLength && !complete) return undefined;
  if (rank === 0 || raw.length < headerLength) throw new GhnError('bad-input', `${source}: truncated idx header`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return { dims: Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false)), headerLength };
}

/** Parses idx bytes (gzipped or plain). `source` names the file in error messages. */
export function parseIdx(bytes: Uint8Array, source = 'idx data'): IdxArray {
  let raw = bytes;
  if (isGzip(bytes)) {
    try {
      raw = gunzipSync(bytes);
    } catch (e) {
      throw new GhnError('bad-input', `${source}: corrupt gzip data (${(e as Error).message})`, { cause: e });
    }
  }
  const { dims, headerLength } = parseHeader(raw, source, true)!;
  const expected = dims.reduce((a, b) => a * b, 1);
  const actual = raw.length - headerLength;
  if (actual !== expected) {
    throw new GhnError('bad-input', `${source}: idx header promises ${dims.join('×')} = ${expected} bytes of data, file has ${actual}`);
  }
  // A plain Uint8Array view (not a Buffer) over the data, without copying.
  return { dims, data: new Uint8Array(raw.buffer, raw.byteOffset + headerLength, expected) };
}

/** Reads and parses an idx file; GhnError('not-found') if it does not exist. */
export function readIdxFile(path: string): IdxArray {
  if (!existsSync(path)) throw new GhnError('not-found', `idx file not found: ${path}`);
  return parseIdx(readFileSync(path), path);
}

/**
 * The first `count` examples of an unsigned-byte idx file (fewer if it has fewer), without reading
 * or decompressing the rest: 256 Fashion-MNIST images are 0.2 MB of a 47 MB file whose whole
 * gunzip takes ~0.3 s. A gzipped file is inflated from a growing prefix of its compressed bytes
 * (a sync flush accepts the cut). Checks the header, not the length of the unread rest.
 */
export function readIdxFilePrefix(path: string, count: number): IdxArray {
  if (!existsSync(path)) throw new GhnError('not-found', `idx file not found: ${path}`);
  const fd = openSync(path, 'r');
  try {
    for (let chunk = 1 << 18; ; chunk *= 4) {
      const head = new Uint8Array(chunk);
      const read = readSync(fd, head, 0, chunk, 0);
      const whole = read < chunk;
      let raw = head.subarray(0, read);
      if (isGzip(raw)) {
        try {
          raw = gunzipSync(raw, whole ? {} : { finishFlush: zlibConstants.Z_SYNC_FLUSH });
        } catch (e) {
          throw new GhnError('bad-input', `${path}: corrupt gzip data (${(e as Error).message})`, { cause: e });
        }
      }
      const prefix = idxPrefix(raw, count, path);
      if (prefix) return prefix;
      if (whole) throw new GhnError('bad-input', `${path}: truncated idx data`);
    }
  } finally {
    closeSync(fd);
  }
}

/** The first `count` examples at the start of idx bytes; undefined while `raw` does not hold them all. */
function idxPrefix(raw: Uint8Array, count: number, source: string): IdxArray | undefined {
  const header = parseHeader(raw, source, false);
  if (!header) return undefined;
  const { dims, headerLength } = header;
  const examples = Math.min(count, dims[0]!);
  const size = examples * dims.slice(1).reduce((a, b) => a * b, 1);
  if (raw.length < headerLength + size) return undefined;
  return { dims: [examples, ...dims.slice(1)], data: new Uint8Array(raw.buffer, raw.byteOffset + headerLength, size) };
}

/** Encodes an unsigned-byte idx array (plain, not gzipped): used to write fixtures and tests. */
export function encodeIdx(array: IdxArray): Uint8Array {
  const out = new Uint8Array(4 + 4 * array.dims.length + array.data.length);
  const view = new DataView(out.buffer);
  out[2] = UNSIGNED_BYTE;
  out[3] = array.dims.length;
  array.dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(array.data, 4 + 4 * array.dims.length);
  return out;
}
