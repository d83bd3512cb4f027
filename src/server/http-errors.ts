/**
 * Every error the service answers with has one JSON shape, `{ error: { status, code, message } }`.
 * GhnErrors from the library map to statuses by kind; fastify's own errors keep their status.
 */
import { GhnError, type GhnErrorKind } from '../errors.js';

export interface ErrorBody {
  error: { status: number; code: string; message: string };
}

/** An error with its HTTP status decided where it is thrown. */
export class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
    this.name = 'HttpError';
  }
}

const STATUS_BY_KIND: Record<GhnErrorKind, { status: number; code: string }> = {
  'bad-input': { status: 400, code: 'bad-onnx' },
  'unsupported': { status: 422, code: 'unsupported-operator' },
  'missing-data': { status: 422, code: 'missing-data' },
  'not-found': { status: 404, code: 'not-found' },
  'usage': { status: 400, code: 'bad-option' },
};

/** fastify/multipart error codes whose wording we replace with one a client can act on. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'too-large',
  FST_REQ_FILE_TOO_LARGE: 'too-large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported-media-type',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'bad-request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'bad-request',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'unsupported-media-type',
  FST_PARTS_LIMIT: 'too-many-parts',
  FST_FILES_LIMIT: 'too-many-parts',
};

export const UPLOAD_TYPES = 'send the ONNX file as application/octet-stream or as the model field of multipart/form-data';

export interface ResolvedError {
  status: number;
  body: ErrorBody;
  headers: Record<string, string>;
  /** True for anything we did not anticipate: logged as a bug. */
  internal: boolean;
}

export function resolveError(err: unknown): ResolvedError {
  const make = (status: number, code: string, message: string, headers: Record<string, string> = {}, internal = false): ResolvedError =>
    ({ status, body: { error: { status, code, message } }, headers, internal });
  if (err instanceof HttpError) return make(err.status, err.code, err.message, err.headers);
  if (err instanceof GhnError) {
    const { status, code } = STATUS_BY_KIND[err.kind];
    return make(status, code, err.message);
  }
  const e = err as { statusCode?: number; code?: string; message?: string } | null;
  if (e && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const code = (e.code && FASTIFY_CODES[e.code]) ?? 'bad-request';
    // multipart reports "not multipart" as 406; to a client it is the wrong content type.
    if (code === 'unsupported-media-type') return make(415, code, UPLOAD_TYPES);
    return make(e.statusCode, code, e.message ?? 'bad request');
  }
  const message = err instanceof Error ? err.message : String(err);
  return make(500, 'internal', `internal error: ${message}`, {}, true);
}
