/**
 * `createServer`: the ghn HTTP service on fastify. Stateless apart from the short-lived result store;
 * CPU-bound work goes through a bounded worker pool so health checks and metrics stay responsive.
 */
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance } from 'fastify';
import type { ServerContext } from './context.js';
import { resolveError, HttpError } from './http-errors.js';
import { GhnRegistry } from './models.js';
import { DEFAULT_SERVER_OPTIONS, type ServerOptions } from './options.js';
import { SAMPLES_DIR } from './paths.js';
import { ResultStore } from './results.js';
import { registerCatalogRoutes } from './routes/catalog.js';
import { registerInspectRoute } from './routes/inspect.js';
import { registerOperationsRoutes } from './routes/operations.js';
import { registerPredictRoute } from './routes/predict.js';
import { SampleSet } from './samples.js';
import { ServerMetrics } from './server-metrics.js';
import { registerStaticFiles } from './static-files.js';
import { WorkerPool } from './worker-pool.js';

export type CreateServerOptions = Partial<Omit<ServerOptions, 'ghnFiles'>> & Pick<ServerOptions, 'ghnFiles'>;

export interface GhnServer {
  app: FastifyInstance;
  context: ServerContext;
  /** Starts listening; resolves to the base URL, e.g. http://127.0.0.1:8080. */
  listen(port: number, host?: string): Promise<string>;
  close(): Promise<void>;
}

export async function createServer(options: CreateServerOptions): Promise<GhnServer> {
  const opts: ServerOptions = { ...DEFAULT_SERVER_OPTIONS, ...options, results: { ...DEFAULT_SERVER_OPTIONS.results, ...options.results } };
  const ghns = new GhnRegistry(opts.ghnFiles);
  const results = new ResultStore(opts.results);
  const pool = new WorkerPool({ size: opts.concurrency, queueLimit: opts.queueLimit, timeoutMs: opts.timeoutMs });
  const context: ServerContext = {
    options: opts, pool, ghns, results, samples: new SampleSet(SAMPLES_DIR), metrics: new ServerMetrics(pool, results), started: Date.now(),
  };

  const app = Fastify({ logger: opts.logger, bodyLimit: opts.maxBodyBytes, return503OnClosing: true });
  // Only the two upload encodings are accepted; anything else (JSON, text, forms) is a 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: opts.maxBodyBytes }, (_req, body, done) => done(null, body));
  await app.register(multipart, { limits: { fileSize: opts.maxBodyBytes } });

  app.addHook('onResponse', async (req, reply) => {
    // The route pattern, not the URL, keeps label cardinality bounded (result ids, 404 probes).
    const route = req.routeOptions.url ?? 'unmatched';
    context.metrics.requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    context.metrics.latency.observe(reply.elapsedTime / 1000, { route });
  });
  app.setErrorHandler(async (err, req, reply) => {
    const resolved = resolveError(err);
    if (resolved.internal) req.log.error({ err }, 'internal error');
    return reply.code(resolved.status).headers(resolved.headers).type('application/json').send(resolved.body);
  });
  app.setNotFoundHandler(async (req) => {
    throw new HttpError(404, 'not-found', `no route ${req.method} ${req.url.split('?')[0]}`);
  });

  registerStaticFiles(app);
  registerPredictRoute(app, context);
  registerInspectRoute(app, context);
  registerCatalogRoutes(app, context);
  registerOperationsRoutes(app, context);

  let closed = false;
  return {
    app,
    context,
    async listen(port, host = '127.0.0.1') {
      await app.listen({ port, host });
      const address = app.server.address();
      const actual = typeof address === 'object' && address ? address.port : port;
      return `http://${host.includes(':') ? `[${host}]` : host}:${actual}`;
    },
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
      await pool.close();
    },
  };
}
