/**
 * Reading the uploaded ONNX file from a request: the raw body (`application/octet-stream`) or the
 * `model` file field of a `multipart/form-data` form. Size limits are enforced while reading.
 */
import type { FastifyRequest } from 'fastify';
import { HttpError, UPLOAD_TYPES } from './http-errors.js';

export interface Upload {
  bytes: Uint8Array;
  /** Client-side file name without directories (or the `name` query parameter), for the download name. */
  filename: string;
}

export const MODEL_FIELD = 'model';

export async function readUpload(req: FastifyRequest, maxBytes: number): Promise<Upload> {
  const query = req.query as Record<string, string | undefined>;
  if (req.isMultipart()) {
    let upload: Upload | undefined;
    for await (const part of req.parts({ limits: { fileSize: maxBytes, files: 4, fields: 16 } })) {
      if (part.type !== 'file') continue;
      // Every file part must be consumed for the form to finish; only `model` is kept.
      const bytes = await part.toBuffer();
      if (part.fieldname === MODEL_FIELD && !upload) upload = { bytes, filename: part.filename || 'model.onnx' };
    }
    if (!upload) throw new HttpError(400, 'missing-model', `the form has no file field named '${MODEL_FIELD}'`);
    return checkNotEmpty(upload);
  }
  if (!Buffer.isBuffer(req.body)) {
    throw new HttpError(415, 'unsupported-media-type', UPLOAD_TYPES);
  }
  return checkNotEmpty({ bytes: req.body, filename: query.name ?? 'model.onnx' });
}

function checkNotEmpty(upload: Upload): Upload {
  if (upload.bytes.length === 0) throw new HttpError(400, 'empty-body', 'the uploaded file is empty');
  return upload;
}

/** `dir/My Model.onnx` → `My_Model.ghn.onnx`: a safe header value with the conventional suffix. */
export function downloadName(filename: string): string {
  const base = filename.split(/[\\/]/).pop()!.replace(/\.onnx$/i, '');
  const safe = base.replace(/[^\w.-]+/g, '_').replace(/^[._]+/, '').slice(0, 100) || 'model';
  return `${safe}.ghn.onnx`;
}
