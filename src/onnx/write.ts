/**
 * Writing ONNX models. encodeModel gives the protobuf bytes (a decoded, unchanged model re-encodes
 * to the bytes it came from); writeModelFile also writes external data files and replaces files
 * atomically (temp file + rename), so a failed write never leaves a half-written file behind.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { GhnError } from '../errors.js';
import { externalPath, externalRef, isExternal, pendingExternal, readExternalBytes, setExternalEntry, type ExternalRef } from './external.js';
import { encodeParts, joinParts, type EncodedParts, type FilePart } from './encode.js';
import { copyRange, readRange, repoint } from './lazy.js';
import { ModelProtoType } from './schema.js';
import type { OnnxModel, TensorProto } from './types.js';
import { allTensors } from './walk.js';

/**
 * Encodes the model proto. External tensors stay references: if any has replaced data still held
 * in memory, this throws (only writeModelFile can put that data in its file).
 */
export function encodeModel(model: OnnxModel): Uint8Array {
  for (const t of allTensors(model.proto)) {
    if (isExternal(t) && pendingExternal(t)) {
      throw new GhnError('unsupported', `tensor ${t.name}: replaced external data can only be saved with writeModelFile`);
    }
  }
  return encodeProto(model);
}

function encodeProto(model: OnnxModel): Uint8Array {
  return joinParts(encodeModelParts(model));
}

/**
 * The model proto's encoding as parts (see encode.ts) for writePartsFile, without the joined copy.
 * The parts refer to the tensors' arrays and the model file: both must stay as they are until the
 * parts are written or joined. External tensors stay references, as in encodeModel.
 */
export function encodeModelParts(model: OnnxModel): EncodedParts {
  return encodeParts(ModelProtoType, model.proto as unknown as Record<string, unknown>);
}

/**
 * Writes encoded parts to a new file (created or truncated) through libuv's threads, in the order
 * and bytes joinParts would give, without joining them: big parts are written from where they lie,
 * small ones gathered into one buffer. Not atomic: callers write a temp file and rename it.
 */
export async function writePartsFile(file: string, encoded: EncodedParts): Promise<void> {
  const handle = await fs.promises.open(file, 'w');
  try {
    let position = 0;
    const write = async (bytes: Uint8Array) => {
      for (let done = 0; done < bytes.length;) done += (await handle.write(bytes, done, bytes.length - done, position + done)).bytesWritten;
      position += bytes.length;
    };
    let staging = Buffer.allocUnsafe(STAGING_BYTES);
    let staged = 0;
    const flush = async () => {
      if (!staged) return;
      const full = staging.subarray(0, staged);
      staging = Buffer.allocUnsafe(STAGING_BYTES); // the previous one may still be in a write
      staged = 0;
      await write(full);
    };
    for (const part of encoded.parts) {
      const bytes = part instanceof Uint8Array ? part : undefined;
      if (bytes && bytes.length <= STAGING_BYTES / 4) {
        if (bytes.length > STAGING_BYTES - staged) await flush();
        staging.set(bytes, staged);
        staged += bytes.length;
        continue;
      }
      await flush();
      if (bytes) await write(bytes);
      else {
        const range = (part as FilePart).range;
        const chunk = Buffer.allocUnsafe(range.length);
        readRange(range, chunk);
        await write(chunk);
      }
    }
    await flush();
  } finally {
    await handle.close();
  }
}

export interface WriteOptions {
  /** fsync files before renaming them into place (default true). */
  fsync?: boolean;
}

/** Writes the model (and its external data files, beside it) atomically. */
export function writeModelFile(model: OnnxModel, file: string, opts: WriteOptions = {}): void {
  const fsync = opts.fsync ?? true;
  const target = path.resolve(file);
  if (!fs.existsSync(path.dirname(target))) {
    throw new GhnError('not-found', `cannot write ${file}: directory ${path.dirname(target)} does not exist`);
  }
  const restore = writeExternalData(model, target, fsync);
  try {
    const placed = writePartsAtomic(target, encodeModelParts(model), fsync);
    // Written over the file that lazy tensors read from: they now live at new offsets in it.
    const moved = placed.filter(({ part }) => part.range.file.path === target);
    if (moved.length) repoint(moved.map(({ part, offset }) => ({ range: part.range, offset })), target);
  } finally {
    restore();
  }
}

interface ExternalGroup {
  location: string;
  tensors: { tensor: TensorProto; ref: ExternalRef }[];
}

/**
 * Writes one data file per external location used by the model, beside the output. Unchanged
 * tensors keep their offsets (the source file is copied, then replaced ranges are overwritten).
 * A file that would stay the same is not rewritten. If the output model sits in the input's
 * directory under another name and its data changed, the data goes to a new file named after the
 * output, so the input model's data file is never modified. Returns a function that undoes the
 * in-memory location renames once the model proto has been encoded.
 */
function writeExternalData(model: OnnxModel, target: string, fsync: boolean): () => void {
  const groups = new Map<string, ExternalGroup>();
  for (const tensor of allTensors(model.proto)) {
    if (!isExternal(tensor)) continue;
    const ref = externalRef(tensor);
    const group = groups.get(ref.location) ?? { location: ref.location, tensors: [] };
    group.tensors.push({ tensor, ref });
    groups.set(ref.location, group);
  }
  const outDir = path.dirname(target);
  const undo: (() => void)[] = [];
  for (const group of groups.values()) {
    const source = model.baseDir !== undefined ? externalPath(model.baseDir, group.location) : undefined;
    const changed = group.tensors.filter(({ tensor }) => pendingExternal(tensor) !== undefined);
    let location = group.location;
    if (source !== undefined && source === externalPath(outDir, group.location)) {
      if (changed.length === 0) continue; // same file, same bytes: leave it alone
      if (target !== model.sourcePath) {
        location = `${path.basename(target)}.${group.location.replace(/[\\/]/g, '_')}`;
        for (const { tensor } of group.tensors) {
          setExternalEntry(tensor, 'location', location);
          undo.push(() => setExternalEntry(tensor, 'location', group.location));
        }
      }
    }
    writeDataFile(group, source, path.resolve(outDir, location), fsync);
  }
  return () => undo.forEach((f) => f());
}

function writeDataFile(group: ExternalGroup, source: string | undefined, dest: string, fsync: boolean): void {
  const hasSource = source !== undefined && fs.existsSync(source);
  for (const { tensor } of group.tensors) {
    if (!hasSource && pendingExternal(tensor) === undefined) {
      throw new GhnError('missing-data', `tensor ${tensor.name}: external data file '${group.location}' not found, cannot copy it`);
    }
  }
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  withTempFile(dest, (tmp) => {
    if (hasSource) fs.copyFileSync(source, tmp);
    const fd = fs.openSync(tmp, hasSource ? 'r+' : 'w');
    try {
      for (const { tensor, ref } of group.tensors) {
        const bytes = pendingExternal(tensor);
        if (bytes === undefined) continue;
        if (ref.length !== undefined && ref.length !== bytes.length) {
          throw new GhnError('bad-input', `tensor ${tensor.name}: new data is ${bytes.length} bytes, external slot holds ${ref.length}`);
        }
        writeAll(fd, bytes, ref.offset);
      }
      if (fsync) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  });
}

/** Data files of writeModelWithDataFile place tensors at multiples of this (the page size: mappable). */
const DATA_ALIGNMENT = 4096;

/**
 * Writes the model with the bytes of every external tensor, replaced or not, gathered into one data
 * file beside it, `<file>.data`, at fresh offsets; inline tensors stay inline. For a model written
 * elsewhere than its source whose tensors cannot all go inline (over the 2 GiB protobuf limit), and
 * whatever layout of data files it came with (PyTorch writes one file per tensor). Each of the two
 * files is written atomically; callers that need them to appear together write into a staging
 * directory (see predict/staged-model.ts). Returns the data file's path.
 */
export function writeModelWithDataFile(model: OnnxModel, file: string, opts: WriteOptions = {}): string {
  const fsync = opts.fsync ?? true;
  const target = path.resolve(file);
  const location = `${path.basename(target)}.data`;
  const dataFile = path.join(path.dirname(target), location);
  const external = allTensors(model.proto).filter(isExternal);
  const entries = external.map((t) => t.externalData);
  try {
    withTempFile(dataFile, (tmp) => {
      const fd = fs.openSync(tmp, 'w');
      try {
        let offset = 0;
        for (const tensor of external) {
          const bytes = pendingExternal(tensor) ?? readExternalBytes(tensor, model.baseDir);
          writeAll(fd, bytes, offset);
          tensor.externalData = [
            { key: 'location', value: location }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(bytes.length) },
          ];
          offset += Math.ceil(bytes.length / DATA_ALIGNMENT) * DATA_ALIGNMENT;
        }
        if (fsync) fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    });
    writePartsAtomic(target, encodeModelParts(model), fsync);
  } finally {
    // The in-memory model keeps pointing at its own data files.
    external.forEach((t, i) => (t.externalData = entries[i]));
  }
  return dataFile;
}

/** Writes `bytes` to `file` via a temp file in the same directory and a rename. */
export function writeFileAtomic(file: string, bytes: Uint8Array, fsync = true): void {
  writePartsAtomic(file, { parts: [bytes], size: bytes.length }, fsync);
}

const STAGING_BYTES = 1 << 20;

/**
 * Writes encoded parts to a temp file (no joined copy), then renames it into place. Small parts are
 * staged and written together; lazy tensors are streamed from the model file through the same
 * buffer. Returns where each lazy part landed.
 */
function writePartsAtomic(file: string, encoded: EncodedParts, fsync: boolean): { part: FilePart; offset: number }[] {
  const placed: { part: FilePart; offset: number }[] = [];
  withTempFile(file, (tmp) => {
    const fd = fs.openSync(tmp, 'w');
    try {
      const staging = Buffer.allocUnsafe(STAGING_BYTES);
      let staged = 0;
      let position = 0;
      const flush = () => {
        writeAll(fd, staging.subarray(0, staged), position);
        position += staged;
        staged = 0;
      };
      for (const part of encoded.parts) {
        if (!(part instanceof Uint8Array)) {
          flush();
          const start = position;
          copyRange(part.range, staging, (chunk, at) => writeAll(fd, chunk, start + at));
          position += part.range.length;
          placed.push({ part, offset: start });
        } else if (part.length <= STAGING_BYTES / 4) {
          if (part.length > STAGING_BYTES - staged) flush();
          staging.set(part, staged);
          staged += part.length;
        } else {
          flush();
          writeAll(fd, part, position);
          position += part.length;
        }
      }
      flush();
      if (fsync) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  });
  return placed;
}

function withTempFile(file: string, fill: (tmp: string) => void): void {
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    fill(tmp);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    if (err instanceof GhnError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const kind = code === 'ENOENT' ? 'not-found' : 'usage';
    throw new GhnError(kind, `cannot write ${file}: ${code ?? (err instanceof Error ? err.message : String(err))}`, { cause: err });
  }
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) {
    done += fs.writeSync(fd, bytes, done, bytes.length - done, position + done);
  }
}
