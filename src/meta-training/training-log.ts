/**
 * The meta-training log: one JSON line per step (TrainProgress), stored gzip-compressed so that a
 * long run's log stays small enough to commit (the shipped 53,000-step log: 12.5 MB plain, ~3.6 MB
 * compressed).
 *
 * Format of `<out>.log.jsonl.gz`: a sequence of gzip members, one per flush, each holding whole
 * lines. Concatenated members are an ordinary gzip file (zcat, Node's gunzip read it). Each member
 * carries its own byte length in a gzip extra subfield ('GL', 4 bytes), so a reader can walk the
 * members without inflating across a boundary: a member cut short by an interrupted append is
 * recognized as such and ignored, and the members before it stay readable. A log without the
 * subfield (recompressed by another tool) is still read, as one stream.
 *
 * A plain `<out>.log.jsonl` (the format before this one) is read where no compressed log exists,
 * and converted to the compressed form, losslessly, the first time a run appends to it.
 *
 * On open, a run keeps only the records up to the step it starts from: steps logged after the last
 * checkpoint of an interrupted run are trained again on resume, and the log keeps one line per step.
 */
import { appendFileSync, existsSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { constants, gunzipSync, gzipSync } from 'node:zlib';

const GZIP_MAGIC = [0x1f, 0x8b, 0x08];
const FEXTRA = 0x04;
/** Subfield id of the member length: 'G', 'L'. */
const SI1 = 0x47, SI2 = 0x4c;
/** XLEN (2) + SI1 SI2 (2) + LEN (2) + member length (4). */
const EXTRA_BYTES = 10;

/** The compressed log of an output prefix (what `ghn train --out <prefix>` writes). */
export function trainingLogPath(prefix: string): string {
  return `${prefix}.log.jsonl.gz`;
}

/** `x.log.jsonl.gz` and `x.log.jsonl` name the same log, compressed and legacy plain. */
function logPaths(path: string): { compressed: string; plain: string } {
  const plain = path.endsWith('.gz') ? path.slice(0, -3) : path;
  return { compressed: `${plain}.gz`, plain };
}

/** The file that holds the log `path` names: the compressed one if present, else a legacy plain one. */
export function resolveTrainingLog(path: string): string | undefined {
  const { compressed, plain } = logPaths(path);
  if (path.endsWith('.gz') || !existsSync(path)) {
    if (existsSync(compressed)) return compressed;
    if (existsSync(plain)) return plain;
    return undefined;
  }
  return path;
}

/** One gzip member holding `text`, with its own length recorded in the header's extra field. */
export function gzipMember(text: string): Buffer {
  const gz = gzipSync(text, { level: 9 });
  // zlib writes a bare 10-byte header (no name, no extra): the extra field goes right after it.
  if (gz[3] !== 0) throw new Error('unexpected gzip header flags from zlib');
  const extra = Buffer.alloc(EXTRA_BYTES);
  extra.writeUInt16LE(EXTRA_BYTES - 2, 0);
  extra[2] = SI1;
  extra[3] = SI2;
  extra.writeUInt16LE(4, 4);
  extra.writeUInt32LE(gz.length + EXTRA_BYTES, 6);
  const head = Buffer.from(gz.subarray(0, 10));
  head[3] = FEXTRA;
  return Buffer.concat([head, extra, gz.subarray(10)]);
}

/** The member length recorded at `o`, or undefined when the member has none (or no header fits). */
function recordedLength(buf: Buffer, o: number): number | undefined {
  if (buf.length - o < 12 || !(buf[o + 3]! & FEXTRA)) return undefined;
  const xlen = buf.readUInt16LE(o + 10);
  const end = Math.min(buf.length, o + 12 + xlen);
  for (let p = o + 12; p + 4 <= end;) {
    const len = buf.readUInt16LE(p + 2);
    if (buf[p] === SI1 && buf[p + 1] === SI2 && len === 4 && p + 8 <= end) return buf.readUInt32LE(p + 4);
    p += 4 + len;
  }
  return undefined;
}

interface Member {
  start: number;
  end: number;
  /** Whole lines only. */
  text: string;
}

export interface DecodedLog {
  members: Member[];
  /** Bytes after the last whole member: an interrupted append (or damage), ignored. */
  droppedBytes: number;
}

/** The members of a compressed log, up to the first one that is cut short or damaged. */
export function decodeLog(buf: Buffer): DecodedLog {
  const members: Member[] = [];
  let o = 0;
  while (o < buf.length) {
    if (buf.length - o < 18 || GZIP_MAGIC.some((b, i) => buf[o + i] !== b)) break;
    const length = recordedLength(buf, o);
    if (length === undefined) {
      // Not written by this module (e.g. `gzip` of a plain log): let zlib read the rest as one
      // stream; a cut-short end yields what was decompressed before it.
      let text: string;
      try {
        text = gunzipSync(buf.subarray(o), { finishFlush: constants.Z_SYNC_FLUSH }).toString('utf8');
      } catch {
        break;
      }
      members.push({ start: o, end: buf.length, text: text.slice(0, text.lastIndexOf('\n') + 1) });
      o = buf.length;
      break;
    }
    if (length < 18 || o + length > buf.length) break;
    let text: string;
    try {
      text = gunzipSync(buf.subarray(o, o + length)).toString('utf8');
    } catch {
      break; // CRC or length mismatch: damaged, and so is anything after it
    }
    members.push({ start: o, end: o + length, text });
    o += length;
  }
  return { members, droppedBytes: buf.length - o };
}

/** The log's text, whole lines only (a legacy plain log's cut-short last line is left out). */
export function readTrainingLogText(path: string): string {
  const file = resolveTrainingLog(path);
  if (!file) throw new Error(`no training log at ${path}`);
  const buf = readFileSync(file);
  if (file.endsWith('.gz')) return decodeLog(buf).members.map((m) => m.text).join('');
  const text = buf.toString('utf8');
  return text.slice(0, text.lastIndexOf('\n') + 1);
}

/** The log's records (TrainProgress objects), in the order written. */
export function readTrainingLog<T = Record<string, unknown>>(path: string): T[] {
  return parseLines(readTrainingLogText(path)) as T[];
}

function parseLines(text: string): unknown[] {
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
}

/** Records per member when converting or rewriting (a flush writes what it has buffered). */
const LINES_PER_MEMBER = 500;

function encodeLines(lines: string[]): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < lines.length; i += LINES_PER_MEMBER) parts.push(gzipMember(lines.slice(i, i + LINES_PER_MEMBER).join('')));
  return Buffer.concat(parts);
}

/** Whole lines of `text`, each with its newline. */
function splitLines(text: string): string[] {
  return text.match(/[^\n]*\n/g) ?? [];
}

function writeWhole(path: string, bytes: Buffer | string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}

/**
 * Converts a plain JSON-lines log into the compressed form at `to`, checks that it decompresses to
 * the same bytes, and only then (with `removePlain`) deletes the plain file.
 */
export function compressLegacyLog(plain: string, to = `${plain}.gz`, removePlain = true): { plainBytes: number; compressedBytes: number } {
  const original = readFileSync(plain);
  const text = original.toString('utf8');
  const whole = text.slice(0, text.lastIndexOf('\n') + 1);
  const bytes = encodeLines(splitLines(whole));
  if (!Buffer.from(decodeLog(bytes).members.map((m) => m.text).join(''), 'utf8').equals(original.subarray(0, Buffer.byteLength(whole)))) {
    throw new Error(`${plain}: compressed log does not decompress to the original`);
  }
  writeWhole(to, bytes);
  if (removePlain) unlinkSync(plain);
  return { plainBytes: original.length, compressedBytes: bytes.length };
}

export interface TrainingLogOptions {
  /** Keep the records up to this step (the step the run starts from); later ones are dropped. */
  keepThroughStep: number;
  /** Flush after this many buffered records (default 100). */
  flushEvery?: number;
  /** Flush when this much wall-clock has passed since the last flush (default 60 s), so the log can be followed. */
  flushSeconds?: number;
}

/** Appends records to a training log, compressed when its path ends in `.gz`, plain otherwise. */
export class TrainingLog {
  private buffer: string[] = [];
  private lastFlush = performance.now();
  private readonly compressed: boolean;

  private constructor(readonly path: string, private readonly options: TrainingLogOptions) {
    this.compressed = path.endsWith('.gz');
  }

  /**
   * Opens `path` for a run starting at `keepThroughStep`: converts a legacy plain log beside it,
   * drops an interrupted append's remains and records of steps after the start, by writing the
   * kept part whole (temp file, then rename).
   */
  static open(path: string, options: TrainingLogOptions): TrainingLog {
    const log = new TrainingLog(path, options);
    const { plain } = logPaths(path);
    if (log.compressed && !existsSync(path) && existsSync(plain)) compressLegacyLog(plain, path);
    if (existsSync(path)) log.keepThrough(options.keepThroughStep);
    return log;
  }

  private keepThrough(step: number): void {
    const buf = readFileSync(this.path);
    if (!this.compressed) {
      const text = buf.toString('utf8');
      const lines = splitLines(text);
      const cut = lines.findIndex((l) => beyond(l, step));
      const kept = cut < 0 ? lines : lines.slice(0, cut);
      if (cut >= 0 || kept.join('').length !== text.length) writeWhole(this.path, kept.join(''));
      return;
    }
    const { members, droppedBytes } = decodeLog(buf);
    // Members before the first one holding a later step are kept byte for byte; that one is re-encoded.
    const at = members.findIndex((m) => splitLines(m.text).some((l) => beyond(l, step)));
    if (at < 0 && droppedBytes === 0) return;
    if (droppedBytes > 0) console.warn(`${this.path}: dropped ${droppedBytes} bytes of an interrupted append`);
    const keptMembers = at < 0 ? members : members.slice(0, at);
    const head = buf.subarray(0, keptMembers.at(-1)?.end ?? 0);
    const partial = at < 0 ? [] : splitLines(members[at]!.text);
    const tail = partial.slice(0, partial.findIndex((l) => beyond(l, step)));
    writeWhole(this.path, Buffer.concat([head, tail.length ? gzipMember(tail.join('')) : Buffer.alloc(0)]));
  }

  append(record: object): void {
    this.buffer.push(JSON.stringify(record) + '\n');
    const due = (performance.now() - this.lastFlush) / 1000 >= (this.options.flushSeconds ?? 60);
    if (this.buffer.length >= (this.options.flushEvery ?? 100) || due) this.flush();
  }

  /** Writes the buffered records: one gzip member, appended (an interrupted append loses only this member). */
  flush(): void {
    this.lastFlush = performance.now();
    if (!this.buffer.length) return;
    const text = this.buffer.join('');
    appendFileSync(this.path, this.compressed ? gzipMember(text) : text);
    this.buffer = [];
  }

  close(): void {
    this.flush();
  }
}

/** Whether a log line records a step after `step` (a line that does not parse counts as after: it is dropped). */
function beyond(line: string, step: number): boolean {
  try {
    const r = JSON.parse(line) as { step?: unknown };
    return typeof r.step === 'number' && r.step > step;
  } catch {
    return true;
  }
}
