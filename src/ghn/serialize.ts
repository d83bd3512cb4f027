/**
 * The .ghn file format (version 1), one file, little-endian:
 *
 *   bytes 0–3   magic "GHN1"
 *   bytes 4–7   uint32 N: byte length of the JSON header
 *   bytes 8…    N bytes of UTF-8 JSON: { format: 'ghn', version: 1, config: GhnConfig,
 *               recipe?: object, metrics?: object, dataset?: DatasetRecord,
 *               tensors: [{ name, shape, offset, length }] }
 *               (offset and length in float32 elements, relative to the blob)
 *   then        padding with spaces inside the header so the blob starts at a multiple of 4
 *   then        the blob: every tensor's float32 values, in header order
 *
 * The model id is the sha256 of the whole file, hex.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, writeFileSync, renameSync } from 'node:fs';
import type { DatasetRecord } from '../data/dataset.js';
import { GhnError } from '../errors.js';
import { GhnModel, variableShapes, type GhnConfig } from './model.js';

const MAGIC = 'GHN1';
export const GHN_FORMAT_VERSION = 1;

export interface TensorEntry {
  name: string;
  shape: number[];
  offset: number;
  length: number;
}

export interface GhnHeader {
  format: 'ghn';
  version: number;
  config: GhnConfig;
  /** How the model was trained (free-form, JSON). */
  recipe?: Record<string, unknown>;
  /** Measured results (free-form, JSON). */
  metrics?: Record<string, unknown>;
  /**
   * The dataset it was trained on: the input shape and classes its predictions serve and the
   * normalization they carry. Absent in GHNs trained before it was recorded (the shipped one: Fashion-MNIST).
   */
  dataset?: DatasetRecord;
  tensors: TensorEntry[];
}

/** What a header holds besides the config and the tensors. */
export type GhnExtra = Pick<GhnHeader, 'recipe' | 'metrics' | 'dataset'>;

export interface GhnFileContents {
  header: GhnHeader;
  values: Map<string, Float32Array>;
  /** sha256 of the file bytes, hex. */
  hash: string;
}

const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Encodes named float32 tensors with a header (the GHN's variables, or optimizer state). */
export function encodeTensors(
  config: GhnConfig, entries: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>,
  extra: GhnExtra = {},
): Uint8Array {
  const tensors: TensorEntry[] = [];
  let offset = 0;
  for (const [name, { shape, data }] of entries) {
    tensors.push({ name, shape: [...shape], offset, length: data.length });
    offset += data.length;
  }
  const header: GhnHeader = { format: 'ghn', version: GHN_FORMAT_VERSION, config, ...extra, tensors };
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (4 - ((8 + json.length) % 4)) % 4;
  if (pad) json = Buffer.concat([json, Buffer.from(' '.repeat(pad))]);
  const out = new Uint8Array(8 + json.length + offset * 4);
  const view = new DataView(out.buffer);
  out.set(Buffer.from(MAGIC, 'ascii'), 0);
  view.setUint32(4, json.length, true);
  out.set(json, 8);
  let byte = 8 + json.length;
  for (const { data } of entries.values()) {
    // Little-endian hosts copy the floats' bytes as they are: no per-element DataView write.
    if (LITTLE_ENDIAN) out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), byte);
    else for (let i = 0; i < data.length; i++) view.setFloat32(byte + 4 * i, data[i]!, true);
    byte += 4 * data.length;
  }
  return out;
}

export function encodeGhn(ghn: GhnModel, extra: GhnExtra = {}): Uint8Array {
  const entries = new Map([...ghn.variables].map(([name, v]) => [name, { shape: v.shape, data: v.dataSync() as Float32Array }]));
  return encodeTensors(ghn.config, entries, extra);
}

/** The header alone, read from the start of the file (suggesting a GHN need not read every tensor of each). */
export function readGhnHeader(path: string): GhnHeader {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(8);
    readSync(fd, head, 0, 8, 0);
    if (head.subarray(0, 4).toString('ascii') !== MAGIC) throw new GhnError('bad-input', `${path}: not a GHN file (magic ${MAGIC} missing)`);
    const json = Buffer.alloc(head.readUInt32LE(4));
    if (readSync(fd, json, 0, json.length, 8) !== json.length) throw new GhnError('bad-input', `${path}: truncated header`);
    try {
      return JSON.parse(json.toString('utf8')) as GhnHeader;
    } catch (e) {
      throw new GhnError('bad-input', `${path}: header is not JSON (${(e as Error).message})`);
    }
  } finally {
    closeSync(fd);
  }
}

export function decodeGhn(bytes: Uint8Array, source = 'GHN file'): GhnFileContents {
  return { ...decodeTensors(bytes, source), hash: sha256Hex(bytes) };
}

/** The header and tensors of .ghn-layout bytes, without the file's sha256 (blobs over Redis need none). */
export function decodeTensors(bytes: Uint8Array, source = 'GHN file'): Omit<GhnFileContents, 'hash'> {
  if (bytes.length < 8 || Buffer.from(bytes.subarray(0, 4)).toString('ascii') !== MAGIC) {
    throw new GhnError('bad-input', `${source}: not a GHN file (magic ${MAGIC} missing)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(4, true);
  if (8 + headerLength > bytes.length) throw new GhnError('bad-input', `${source}: truncated header`);
  let header: GhnHeader;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLength)).toString('utf8')) as GhnHeader;
  } catch (e) {
    throw new GhnError('bad-input', `${source}: header is not JSON (${(e as Error).message})`);
  }
  if (header.format !== 'ghn' || header.version !== GHN_FORMAT_VERSION) {
    throw new GhnError('bad-input', `${source}: unsupported format ${header.format} v${header.version}`);
  }
  const blob = 8 + headerLength;
  const values = new Map<string, Float32Array>();
  for (const t of header.tensors) {
    const end = blob + (t.offset + t.length) * 4;
    if (end > bytes.length) throw new GhnError('bad-input', `${source}: tensor ${t.name} runs past the end of the file`);
    values.set(t.name, readFloats(bytes, blob + t.offset * 4, t.length));
  }
  return { header, values };
}

/** `length` little-endian float32s from `bytes[start…]`, copied into an array of their own. */
function readFloats(bytes: Uint8Array, start: number, length: number): Float32Array {
  if (LITTLE_ENDIAN) {
    // One copy of the bytes (aligned whatever the buffer's offset): no per-element DataView read.
    const from = bytes.byteOffset + start;
    return new Float32Array(bytes.buffer.slice(from, from + length * 4));
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + start, length * 4);
  const data = new Float32Array(length);
  for (let i = 0; i < length; i++) data[i] = view.getFloat32(i * 4, true);
  return data;
}

/** A GhnModel from decoded contents; every variable the config needs must be present with its shape. */
export function modelFromContents(contents: GhnFileContents, source = 'GHN file'): GhnModel {
  const shapes = variableShapes(contents.header.config);
  for (const [name, shape] of shapes) {
    const entry = contents.header.tensors.find((t) => t.name === name);
    if (!entry || entry.shape.join(',') !== shape.join(',')) {
      throw new GhnError('bad-input', `${source}: tensor ${name} missing or not of shape [${shape}]`);
    }
  }
  return new GhnModel(contents.header.config, contents.values);
}

/** Writes atomically (temp file + rename); returns the file's sha256. */
export function saveGhn(path: string, ghn: GhnModel, extra: GhnExtra = {}): string {
  const bytes = encodeGhn(ghn, extra);
  writeFileSync(`${path}.tmp`, bytes);
  renameSync(`${path}.tmp`, path);
  return sha256Hex(bytes);
}

export interface LoadedGhn {
  model: GhnModel;
  header: GhnHeader;
  /** sha256 of the file, hex: the model id. */
  hash: string;
}

export function loadGhn(path: string): LoadedGhn {
  const contents = decodeGhn(new Uint8Array(readFileSync(path)), path);
  return { model: modelFromContents(contents, path), header: contents.header, hash: contents.hash };
}
