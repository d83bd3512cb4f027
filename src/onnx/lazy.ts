/**
 * Lazy loading of big tensors. First-touch page faults dominate reading a large file into memory
 * (about 3 µs per 4 KiB page here: 1 s for a 330 MB model), yet most callers never look at most
 * weights. So readModelFile reads everything except large raw_data payloads into a buffer the
 * size of the file (the skipped regions are never touched, so they cost no memory), decodes that
 * with protobufjs as usual, and gives each large tensor a `rawData` getter that reads its bytes
 * from the file when asked. The file's identity is checked on every such read: a model whose
 * file changed since loading fails with a clear error rather than returning other bytes.
 * Encoding copies lazy tensors from the file in slices (see encode.ts / write.ts).
 */
import fs from 'node:fs';
import protobuf from 'protobufjs';
import { GhnError } from '../errors.js';
import { ModelProtoType } from './schema.js';
import type { TensorProto } from './types.js';

/** raw_data payloads at least this big are left on disk. */
export const LAZY_MIN_BYTES = 64 * 1024;
/** Read-ahead while scanning; bounds what is read needlessly from the start of a skipped payload. */
const READ_AHEAD = 64 * 1024;

/** What identifies one version of a file. */
interface FileIdentity {
  path: string;
  size: number;
  mtimeMs: number;
  ino: number;
}

/** Where a lazy tensor's bytes are. */
export interface LazyRange {
  file: FileIdentity;
  offset: number;
  length: number;
}

const lazyRanges = new WeakMap<TensorProto, LazyRange>();
/** Recently read bytes, kept only while someone else holds them. */
const recent = new WeakMap<TensorProto, WeakRef<Uint8Array>>();

/** True while the tensor's raw_data is still only on disk. */
export function isLazy(t: TensorProto): boolean {
  return lazyRanges.has(t);
}

export function lazyRange(t: TensorProto): LazyRange | undefined {
  return lazyRanges.get(t);
}

function identityOf(path: string, stat: fs.Stats): FileIdentity {
  return { path, size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino };
}

function sameFile(a: FileIdentity, stat: fs.Stats): boolean {
  return a.size === stat.size && a.mtimeMs === stat.mtimeMs && a.ino === stat.ino;
}

/** Opens a lazy range's model file, checks it is the version that was loaded, runs `use`. */
function withModelFile(range: LazyRange, use: (fd: number) => void): void {
  let fd: number;
  try {
    fd = fs.openSync(range.file.path, 'r');
  } catch {
    throw new GhnError('missing-data', `${range.file.path}: model file is gone; its tensor data was not loaded yet`);
  }
  try {
    if (!sameFile(range.file, fs.fstatSync(fd))) {
      throw new GhnError('missing-data', `${range.file.path}: model file changed since it was loaded; load it again`);
    }
    use(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads a lazy range from its model file into `into` at `at`. */
export function readRange(range: LazyRange, into: Uint8Array, at = 0): void {
  withModelFile(range, (fd) => readFully(fd, into, at, range.length, range.offset, range.file.path));
}

/** Streams a range through a reusable buffer (no big allocation): `sink(chunk, offsetInRange)`. */
export function copyRange(range: LazyRange, scratch: Uint8Array, sink: (chunk: Uint8Array, at: number) => void): void {
  withModelFile(range, (fd) => {
    for (let at = 0; at < range.length; at += scratch.length) {
      const n = Math.min(scratch.length, range.length - at);
      readFully(fd, scratch, 0, n, range.offset + at, range.file.path);
      sink(scratch.subarray(0, n), at);
    }
  });
}

function readFully(fd: number, into: Uint8Array, at: number, length: number, position: number, path: string): void {
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, into, at + done, length - done, position + done);
    if (n === 0) throw new GhnError('bad-input', `${path}: file ended early`);
    done += n;
  }
}

function makeLazy(t: TensorProto, range: LazyRange): void {
  lazyRanges.set(t, range);
  Object.defineProperty(t, 'rawData', {
    configurable: true,
    enumerable: true,
    get(): Uint8Array {
      const cached = recent.get(t)?.deref();
      if (cached) return cached;
      const bytes = new Uint8Array(range.length);
      readRange(range, bytes);
      recent.set(t, new WeakRef(bytes));
      return bytes;
    },
    set(value: Uint8Array) {
      // Assigning new data ends laziness: the property becomes a plain value again.
      lazyRanges.delete(t);
      recent.delete(t);
      Object.defineProperty(t, 'rawData', { value, writable: true, enumerable: true, configurable: true });
    },
  });
}

/** After the model was written over its own file, its lazy tensors live at new offsets there. */
export function repoint(moves: { range: LazyRange; offset: number }[], path: string): void {
  const file = identityOf(path, fs.statSync(path));
  for (const { range, offset } of moves) {
    range.file = file;
    range.offset = offset;
  }
}

/**
 * Reads a model file leaving large raw_data payloads on disk. Returns the decoded proto (large
 * tensors lazy) or throws what protobufjs throws on malformed input.
 */
export function decodeFileLazily(path: string, fd: number, stat: fs.Stats, minBytes = LAZY_MIN_BYTES): unknown {
  const size = stat.size;
  const sparse = Buffer.allocUnsafeSlow(size); // untouched pages are never faulted in
  let frontier = 0; // bytes [0, frontier) have been read, except skipped payloads
  const skipped = new Map<number, number>(); // payload offset -> length

  const load = (end: number): void => {
    if (end <= frontier) return;
    const to = Math.min(size, Math.max(end, frontier + READ_AHEAD));
    readFully(fd, sparse, frontier, to - frontier, frontier, path);
    frontier = to;
  };
  const varint = (pos: number, limit: number): [value: number, next: number] => {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= limit) throw new Error('truncated varint');
      load(pos + 1);
      const b = sparse[pos++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return [value, pos];
      scale *= 128;
    }
    throw new Error('invalid varint');
  };
  /** Walks one message's fields, descending into the message types that can hold big tensors. */
  const scan = (type: protobuf.Type, start: number, end: number): void => {
    let pos = start;
    while (pos < end) {
      const [tag, afterTag] = varint(pos, end);
      const wire = tag % 8;
      const id = Math.floor(tag / 8);
      pos = afterTag;
      if (wire === 0) {
        pos = varint(pos, end)[1];
      } else if (wire === 1 || wire === 5) {
        pos += wire === 1 ? 8 : 4;
        load(pos);
      } else if (wire === 2) {
        const [len, payload] = varint(pos, end);
        pos = payload + len;
        if (pos > end) throw new Error('index out of range');
        const field = type.fieldsById[id];
        const sub = field?.resolvedType;
        if (sub instanceof protobuf.Type && SCANNED.has(sub.name)) {
          scan(sub, payload, pos);
        } else if (type.name === 'TensorProto' && id === RAW_DATA && len >= minBytes) {
          skipped.set(payload, len);
          load(payload); // everything before the payload, then jump over it (read-ahead may cover its start)
          frontier = Math.max(frontier, pos);
        } else {
          load(pos);
        }
      } else {
        load(end); // groups (wire types 3/4) are long obsolete: just read the rest, protobufjs decides
        pos = end;
      }
    }
    if (pos > end) throw new Error('index out of range');
  };
  scan(ModelProtoType, 0, size);
  load(size);

  const reader = protobuf.Reader.create(sparse);
  reader.discardUnknown = false;
  const proto = ModelProtoType.decode(reader);
  const file = identityOf(path, stat);
  const visit = (t: TensorProto): void => {
    const raw = t.rawData;
    if (!raw || raw.buffer !== sparse.buffer) return;
    const length = skipped.get(raw.byteOffset - sparse.byteOffset);
    if (length !== undefined && length === raw.length) makeLazy(t, { file, offset: raw.byteOffset - sparse.byteOffset, length });
  };
  forEachTensorIn(proto as Record<string, unknown>, visit);
  return proto;
}

const RAW_DATA = 9;
const SCANNED = new Set(['ModelProto', 'GraphProto', 'TrainingInfoProto', 'TensorProto', 'SparseTensorProto']);

/** Visits tensors where the scanner may have skipped payloads: in graphs reachable via SCANNED types. */
function forEachTensorIn(model: Record<string, unknown>, visit: (t: TensorProto) => void): void {
  type G = { initializer?: TensorProto[]; sparseInitializer?: { values?: TensorProto; indices?: TensorProto }[] };
  const graph = (g: G | undefined): void => {
    g?.initializer?.forEach(visit);
    g?.sparseInitializer?.forEach((s) => {
      if (s.values) visit(s.values);
      if (s.indices) visit(s.indices);
    });
  };
  graph(model.graph as G | undefined);
  for (const info of (model.trainingInfo ?? []) as { initialization?: G; algorithm?: G }[]) {
    graph(info.initialization);
    graph(info.algorithm);
  }
}
