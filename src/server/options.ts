/** What `createServer` is configured with, its defaults, and parsing of human-sized limits. */
import { GhnError } from '../errors.js';

export interface ServerOptions {
  /** GHN files the service offers; requests choose among them by id, never by path. The first is the default. */
  ghnFiles: string[];
  /** Largest accepted request body, bytes (413 above). */
  maxBodyBytes: number;
  /** Predictions/inspections computed at once (one worker thread each). */
  concurrency: number;
  /** Jobs allowed to wait for a worker; more get 503 with Retry-After. */
  queueLimit: number;
  /** Per-request time limit including the wait in the queue, ms. */
  timeoutMs: number;
  /** Predicted files held in memory for the JSON variant of /v1/predict. */
  results: { maxCount: number; maxBytes: number; ttlMs: number };
  /** Run the predicted model in onnxruntime-node before answering (the CLI default; slower). */
  validate: boolean;
  /** Log requests (fastify's pino logger) — off in tests. */
  logger: boolean;
}

export const DEFAULT_SERVER_OPTIONS: Readonly<Omit<ServerOptions, 'ghnFiles'>> = Object.freeze({
  maxBodyBytes: 200 * 1024 * 1024,
  concurrency: 1,
  queueLimit: 16,
  timeoutMs: 120_000,
  results: Object.freeze({ maxCount: 32, maxBytes: 256 * 1024 * 1024, ttlMs: 10 * 60_000 }),
  validate: true,
  logger: false,
});

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1024, k: 1024, mb: 1024 ** 2, m: 1024 ** 2, gb: 1024 ** 3, g: 1024 ** 3 };
const TIME_UNITS: Record<string, number> = { ms: 1, '': 1000, s: 1000, m: 60_000, min: 60_000 };

/** "200mb", "512k", "1048576" → bytes (binary units). */
export function parseSize(text: string, option = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined || Number(m[1]) <= 0) throw new GhnError('usage', `${option} must be a size like 200mb, 512kb or 1048576, got "${text}"`);
  return Math.floor(Number(m[1]) * unit);
}

/** "120s", "2m", "500ms", "30" (seconds) → milliseconds. */
export function parseDuration(text: string, option = 'duration'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? TIME_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined || Number(m[1]) <= 0) throw new GhnError('usage', `${option} must be a duration like 120s, 2m or 500ms, got "${text}"`);
  return Math.round(Number(m[1]) * unit);
}
