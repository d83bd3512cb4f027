/**
 * POST /v1/predict: ONNX in, predicted ONNX out (binary, report in X-Ghn-* headers), or with
 * `Accept: application/json` the report and a short-lived download link.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ServerContext } from '../context.js';
import type { PredictOutput } from '../jobs.js';
import { parsePredictQuery } from '../query.js';
import { downloadName, readUpload } from '../upload.js';

export function wantsJson(accept: string | undefined): boolean {
  return !!accept && /\bapplication\/json\b/i.test(accept) && !/\bapplication\/octet-stream\b/i.test(accept);
}

function reportHeaders(reply: FastifyReply, output: PredictOutput, waitMs: number, totalMs: number): void {
  const r = output.report;
  reply.header('x-ghn-model', output.ghnId)
    .header('x-ghn-parameters', String(r.parameters))
    .header('x-ghn-tensors', String(r.tensors))
    .header('x-ghn-split-tensors', String(r.splitTensors))
    .header('x-ghn-backend', r.backend)
    .header('x-ghn-options', JSON.stringify(r.options))
    .header('x-ghn-queue-ms', waitMs.toFixed(0))
    .header('x-ghn-time-ms', totalMs.toFixed(0));
  if (r.validation) reply.header('x-ghn-output-std', r.validation.outputStd.toPrecision(4));
  if (output.normalization) reply.header('x-ghn-normalization', JSON.stringify(output.normalization));
}

export function registerPredictRoute(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/predict', async (req, reply) => {
    const t0 = performance.now();
    const query = parsePredictQuery(req.query as Record<string, string>);
    const ghn = ctx.ghns.resolve(query.ghn);
    const upload = await readUpload(req, ctx.options.maxBodyBytes);
    const { output, timing } = await ctx.pool.run({
      kind: 'predict',
      bytes: upload.bytes,
      options: {
        ghnPath: ghn.path, seed: query.seed, noise: query.noise, orthogonalize: query.orthogonalize,
        fromLayer: query.fromLayer, fitHead: query.fitHead, mix: query.mix, validate: query.validate ?? ctx.options.validate,
      },
    });
    if (output.kind !== 'predict') throw new Error(`worker answered a predict job with ${output.kind}`);
    ctx.metrics.jobWait.observe(timing.waitMs / 1000, { kind: 'predict' });
    ctx.metrics.jobRun.observe(timing.runMs / 1000, { kind: 'predict' });
    const filename = downloadName(upload.filename);
    const totalMs = performance.now() - t0;
    reportHeaders(reply, output, timing.waitMs, totalMs);
    if (wantsJson(req.headers.accept)) {
      const id = ctx.results.put(output.onnx, filename);
      return reply.type('application/json').send({
        ghn: { id: output.ghnId, name: ghn.entry.name },
        report: output.report,
        signature: output.signature,
        normalization: output.normalization,
        filename,
        bytes: output.onnx.length,
        timeMs: { queue: timing.waitMs, run: timing.runMs, total: totalMs },
        download: id ? `/v1/results/${id}` : null,
        ...(id
          ? { expiresInSeconds: Math.round(ctx.options.results.ttlMs / 1000) }
          : { downloadOmitted: 'the file is larger than the result store; request the binary variant (Accept: application/octet-stream)' }),
      });
    }
    return reply
      .type('application/octet-stream')
      .header('content-disposition', `attachment; filename="${filename}"`)
      .send(Buffer.from(output.onnx.buffer, output.onnx.byteOffset, output.onnx.byteLength));
  });
}
