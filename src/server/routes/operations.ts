/** GET /healthz and GET /metrics: answered on the event loop, never queued behind predictions. */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.js';
import { PROMETHEUS_CONTENT_TYPE } from '../metrics.js';
import { VERSION } from '../../version.js';

export function registerOperationsRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/healthz', async (_req, reply) => {
    const stats = ctx.pool.stats;
    // Ready when at least one worker can take a job; until then the process is up but not useful.
    const ok = stats.ready > 0;
    reply.code(ok ? 200 : 503);
    return { status: ok ? 'ok' : 'starting', version: VERSION, uptimeSeconds: Math.round((Date.now() - ctx.started) / 1000), pool: stats };
  });

  app.get('/metrics', async (_req, reply) => reply.type(PROMETHEUS_CONTENT_TYPE).send(ctx.metrics.registry.render()));
}
