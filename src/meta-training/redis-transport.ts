/**
 * What meta-training over Redis keeps there, and how it gets there: the connection (checked once,
 * failing fast with one line), the keys of a run, the run's recorded settings, and the binary form
 * of the GHN's weights and of one architecture's gradient (the .ghn tensor layout, serialize.ts).
 *
 * A run named NAME keeps, under `ghn:NAME:`: `settings` (JSON, written by the coordinator of the
 * current session), `state` (`running` or `done`), `weights:<session>:<step>` (the GHN's weights a
 * step's gradients are taken at) and `share:<session>:<step>:<index>:<divisor>` (one
 * architecture's gradient, or the reason it cannot be used; written once: the first result wins).
 * Its BullMQ queue is `ghn-NAME` under prefix `ghn`.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Dataset, DatasetSource } from '../data/dataset.js';
import { GhnError } from '../errors.js';
import type { GhnConfig, GhnModel } from '../ghn/model.js';
import { decodeTensors, encodeTensors, type GhnExtra } from '../ghn/serialize.js';
import type { TaskShape } from '../space/family.js';
import { VERSION } from '../version.js';

/** Run names become Redis keys and a BullMQ queue name (which may not contain ':'). */
const RUN_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** Weights and shares outlive any step by far; the TTL only cleans up after an abandoned run. */
export const BLOB_TTL_SECONDS = 24 * 3600;

export function checkRunName(run: string): string {
  if (!RUN_NAME.test(run)) throw new GhnError('usage', `--run ${JSON.stringify(run)}: use 1–64 letters, digits, '.', '_' or '-'`);
  return run;
}

export const runKeys = (run: string) => ({
  queue: `ghn-${run}`,
  settings: `ghn:${run}:settings`,
  state: `ghn:${run}:state`,
  weights: (session: string, step: number) => `ghn:${run}:weights:${session}:${step}`,
  share: (session: string, step: number, index: number, divisor: number) => `ghn:${run}:share:${session}:${step}:${index}:${divisor}`,
});

/** The BullMQ key prefix of every run's queue. */
export const QUEUE_PREFIX = 'ghn';

/** What a worker needs to compute any gradient of the run, and what it must agree on. */
export interface RunSettings {
  /** ghn's package version: a worker of another version could compute other numbers. */
  version: string;
  run: string;
  /** Changes with every coordinator start: job ids and blobs of an earlier session never mix in. */
  session: string;
  config: GhnConfig;
  poolSize: number;
  spaceSeed: number;
  seed: number;
  task: TaskShape;
  /** Where the coordinator loaded the training images from, and which of them it trains on. */
  data: { source: DatasetSource; name: string; count: number; sha256: string };
  /** BullMQ lock of a job: a worker silent this long (killed, cut off) loses its job to another. */
  lockMs: number;
}

/** The URL with any password replaced, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

/** Connection errors by what the user should do about them. */
const CONNECT_FAILURES: [RegExp, (where: string, detail: string) => GhnError][] = [
  [/WRONGPASS|invalid password|invalid username-password/i, (w) => new GhnError('usage', `Redis at ${w} refused the password (WRONGPASS)`)],
  [/NOAUTH|Authentication required/i, (w) => new GhnError('usage', `Redis at ${w} needs a password: redis://:PASSWORD@HOST:PORT`)],
];

/**
 * A connected client, or a one-line GhnError within `timeoutMs`. Until the first connection it does
 * not retry; afterwards it reconnects for ever (a restarted Redis is waited for, not fatal).
 * `maxRetriesPerRequest: null` as BullMQ's workers require: commands wait for the reconnection.
 */
export async function connectRedis(url: string, timeoutMs = 5000): Promise<Redis> {
  const where = redactUrl(url);
  if (!/^rediss?:\/\//.test(url)) throw new GhnError('usage', `--redis ${where}: expected redis://[:PASSWORD@]HOST:PORT or rediss:// (TLS)`);
  let connected = false;
  let lastError = '';
  const client = new Redis(url, {
    lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: null,
    retryStrategy: (times) => (connected ? Math.min(200 * times, 2000) : null),
  });
  client.on('error', (e: Error) => { lastError = e.message; });
  const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(lastError || `no answer in ${timeoutMs / 1000} s`)), timeoutMs).unref());
  try {
    await Promise.race([client.connect().then(() => client.ping()), timer]);
    connected = true;
    return client;
  } catch (e) {
    client.disconnect();
    const detail = lastError || (e as Error).message;
    const known = CONNECT_FAILURES.find(([pattern]) => pattern.test(detail));
    throw known ? known[1](where, detail) : new GhnError('not-found', `cannot reach Redis at ${where}: ${detail}`);
  }
}

/** sha256 of the images and labels a run trains on: a worker with other data refuses to compute. */
export function datasetDigest(data: Dataset): string {
  const h = createHash('sha256');
  h.update(new Uint8Array(data.images.buffer, data.images.byteOffset, data.images.byteLength));
  h.update(new Uint8Array(data.labels.buffer, data.labels.byteOffset, data.labels.byteLength));
  return h.digest('hex');
}

export async function readSettings(client: Redis, run: string, where: string): Promise<RunSettings> {
  const json = await client.get(runKeys(run).settings);
  if (json === null) throw new GhnError('not-found', `no run ${JSON.stringify(run)} on Redis at ${where} (start it with ghn train --redis URL --run ${run})`);
  return JSON.parse(json) as RunSettings;
}

export function checkVersion(settings: RunSettings): void {
  if (settings.version !== VERSION) {
    throw new GhnError('unsupported', `the run's coordinator is ghn ${settings.version}; this worker is ghn ${VERSION}`);
  }
}

/**
 * Blobs cross Redis once per step and architecture, on the coordinator's serial path: the .ghn
 * layout (serialize.ts, one copy per tensor on little-endian hosts), read without the sha256 a file
 * gets. Decoded tensors are copies, not views of the client's read buffer.
 */
function packTensors(config: GhnConfig, entries: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>, extra: GhnExtra = {}): Buffer {
  const bytes = encodeTensors(config, entries, extra);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The GHN's weights as one blob (every variable, in the GHN's order). */
export function encodeWeights(ghn: GhnModel): Buffer {
  const entries = new Map([...ghn.variables].map(([name, v]) => [name, { shape: v.shape, data: v.dataSync() as Float32Array }]));
  return packTensors(ghn.config, entries);
}

export function decodeWeights(bytes: Buffer, source: string): Map<string, Float32Array> {
  return decodeTensors(bytes, source).values;
}

/** One architecture's share of a step, as it crosses Redis: only the variables it has a gradient for. */
export interface Share {
  loss: number;
  correct: number;
  /** Wall seconds the worker took for it. */
  seconds: number;
  /** Its process's CPU seconds for it: the compute a machine of its own would take, however busy the worker's was. */
  cpuSeconds: number;
  grads: Map<string, { shape: readonly number[]; data: Float32Array }>;
}

export function encodeShare(config: GhnConfig, share: Share): Buffer {
  return packTensors(config, share.grads, { metrics: { loss: share.loss, correct: share.correct, seconds: share.seconds, cpuSeconds: share.cpuSeconds } });
}

/** What a worker stores for an architecture it cannot build or differentiate. */
const UNUSABLE = 'UNUSABLE ';

export function encodeUnusable(reason: string): Buffer {
  return Buffer.from(UNUSABLE + reason, 'utf8');
}

export function decodeShare(bytes: Buffer, source: string): Share | { unusable: string } {
  if (bytes.subarray(0, UNUSABLE.length).toString('utf8') === UNUSABLE) return { unusable: bytes.subarray(UNUSABLE.length).toString('utf8') };
  const { header, values } = decodeTensors(bytes, source);
  const m = header.metrics as { loss: number; correct: number; seconds: number; cpuSeconds: number };
  const shapes = new Map(header.tensors.map((t) => [t.name, t.shape]));
  const grads = new Map([...values].map(([name, data]) => [name, { shape: shapes.get(name)!, data }]));
  return { loss: m.loss, correct: m.correct, seconds: m.seconds, cpuSeconds: m.cpuSeconds, grads };
}
