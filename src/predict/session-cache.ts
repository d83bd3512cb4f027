/**
 * onnxruntime sessions on model bytes, kept for the next call with the same bytes and options.
 * Calibration builds the same model for every prediction of one architecture (the weights are its
 * inputs, not its initializers), so a process that predicts again — the Node API, a server,
 * `ghn predict --samples` — creates that session once instead of per call (swin_t: ~0.7 s of CPU
 * per call for its 7,351-node graph; ResNet-50 ~20 ms).
 *
 * Kept sessions run without onnxruntime's memory arena: between calls one holds its graph and
 * kernels, not the activations of its last run. At most MAX_KEPT are kept, the most recently used;
 * one pushed out while a call still uses it is released when that call is done.
 */
import * as ort from 'onnxruntime-node';

/** A calibration's first-pass model and its accumulating one (BN statistics over several passes). */
const MAX_KEPT = 2;

interface Entry {
  key: string;
  bytes: Uint8Array;
  session: Promise<ort.InferenceSession>;
  users: number;
  evicted: boolean;
}

/** Least recently used first. */
const kept: Entry[] = [];

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a === b || Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

async function release(entry: Entry): Promise<void> {
  try {
    await (await entry.session).release();
  } catch {
    // A session that failed to create has nothing to release.
  }
}

function acquire(bytes: Uint8Array, options: ort.InferenceSession.SessionOptions): Entry {
  const key = JSON.stringify(options);
  const found = kept.findIndex((e) => e.key === key && sameBytes(e.bytes, bytes));
  if (found >= 0) {
    const [entry] = kept.splice(found, 1);
    kept.push(entry!);
    return entry!;
  }
  const entry: Entry = { key, bytes, session: ort.InferenceSession.create(bytes, { ...options, enableCpuMemArena: false }), users: 0, evicted: false };
  // A model onnxruntime rejects is not kept: the next call tries again (and reports the error again).
  entry.session.catch(() => {
    const at = kept.indexOf(entry);
    if (at >= 0) kept.splice(at, 1);
  });
  kept.push(entry);
  while (kept.length > MAX_KEPT) {
    const old = kept.shift()!;
    old.evicted = true;
    if (old.users === 0) void release(old);
  }
  return entry;
}

/** Runs `use` with a session on `bytes` (created, or kept from an earlier call with the same bytes and options). */
export async function withSession<T>(
  bytes: Uint8Array, options: ort.InferenceSession.SessionOptions, use: (session: ort.InferenceSession) => Promise<T>,
): Promise<T> {
  const entry = acquire(bytes, options);
  entry.users++;
  try {
    return await use(await entry.session);
  } finally {
    entry.users--;
    if (entry.evicted && entry.users === 0) await release(entry);
  }
}
