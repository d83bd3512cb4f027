/** Read-only resources: the GHNs on offer, sample images, held prediction results. */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.js';
import { HttpError } from '../http-errors.js';
import { parseSamplesQuery } from '../query.js';

export const DEFAULT_SAMPLE_COUNT = 64;

export function registerCatalogRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/v1/models', async () => ({ models: ctx.ghns.list() }));

  app.get('/v1/samples', async (req, reply) => {
    const { count } = parseSamplesQuery(req.query as Record<string, string>, DEFAULT_SAMPLE_COUNT);
    reply.header('cache-control', 'public, max-age=3600');
    return ctx.samples.payload(count);
  });

  app.get<{ Params: { id: string } }>('/v1/results/:id', async (req, reply) => {
    const result = /^[0-9a-f]{32}$/.test(req.params.id) ? ctx.results.get(req.params.id) : undefined;
    if (!result) throw new HttpError(404, 'result-expired', 'no such result: results are held for a limited time and count on the server that made them');
    return reply
      .type('application/octet-stream')
      .header('content-disposition', `attachment; filename="${result.filename}"`)
      .send(Buffer.from(result.bytes.buffer, result.bytes.byteOffset, result.bytes.byteLength));
  });
}
