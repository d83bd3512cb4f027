/** POST /v1/inspect: the `ghn inspect --json` summary, the model's inputs/outputs, and with ?graph=1 its op graph. */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.js';
import { parseInspectQuery } from '../query.js';
import { readUpload } from '../upload.js';

export function registerInspectRoute(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/inspect', async (req) => {
    const { graph } = parseInspectQuery(req.query as Record<string, string>);
    const upload = await readUpload(req, ctx.options.maxBodyBytes);
    const { output, timing } = await ctx.pool.run({ kind: 'inspect', bytes: upload.bytes, graph });
    if (output.kind !== 'inspect') throw new Error(`worker answered an inspect job with ${output.kind}`);
    ctx.metrics.jobWait.observe(timing.waitMs / 1000, { kind: 'inspect' });
    ctx.metrics.jobRun.observe(timing.runMs / 1000, { kind: 'inspect' });
    const { kind: _kind, summary, ...rest } = output;
    return { ...summary, ...rest };
  });
}
