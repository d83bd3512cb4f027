import type { Command } from 'commander';
import { DEFAULT_GHN_PATH } from '../api/predict-options.js';
import { DEFAULT_SERVER_OPTIONS, parseDuration, parseSize } from '../server/options.js';
import { parseNumber } from './options.js';

interface ServeCliOptions {
  port: string;
  host: string;
  maxBody: string;
  concurrency: string;
  queue: string;
  timeout: string;
  ghn?: string[];
  validate: boolean;
  log?: boolean;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the parameter prediction service (HTTP API and web page)')
    .option('--port <n>', 'TCP port (0: any free port)', '8080')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--max-body <size>', 'largest accepted upload', '200mb')
    .option('--concurrency <n>', 'jobs computed at once, one worker thread each', String(DEFAULT_SERVER_OPTIONS.concurrency))
    .option('--queue <n>', 'jobs allowed to wait for a worker (more get 503)', String(DEFAULT_SERVER_OPTIONS.queueLimit))
    .option('--timeout <duration>', 'time limit per request, queue wait included', '120s')
    .option('--ghn <file...>', 'GHN file(s) to offer; the first is the default (default: the shipped models/ghn-fmnist.ghn)')
    .option('--no-validate', 'skip the onnxruntime check of each predicted model')
    .option('--log', 'log every request (JSON lines on stdout)')
    .action(async (o: ServeCliOptions) => {
      // Every option is checked before any worker process starts (a bad one leaves nothing running).
      const port = parseNumber(o.port, '--port', { integer: true, min: 0, max: 65535 });
      // Loaded here, not at start-up: the web server's modules cost every other command ~0.2 s.
      const { createServer } = await import('../server/app.js');
      const server = await createServer({
        ghnFiles: o.ghn?.length ? o.ghn : [DEFAULT_GHN_PATH],
        maxBodyBytes: parseSize(o.maxBody, '--max-body'),
        concurrency: parseNumber(o.concurrency, '--concurrency', { integer: true, min: 1 }),
        queueLimit: parseNumber(o.queue, '--queue', { integer: true, min: 0 }),
        timeoutMs: parseDuration(o.timeout, '--timeout'),
        validate: o.validate,
        logger: !!o.log,
      });
      const url = await server.listen(port, o.host);
      process.stderr.write(`ghn serve: listening on ${url} (${server.context.ghns.list().map((g) => g.name).join(', ')})\n`);
      const stop = () => {
        process.stderr.write('ghn serve: shutting down\n');
        void server.close();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
