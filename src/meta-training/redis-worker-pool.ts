/**
 * `ghn worker --concurrency N`: N worker processes on this machine, each a plain `ghn worker`.
 *
 * Not BullMQ's in-process concurrency: that would be safe (a gradient is computed synchronously,
 * from the weights' assignment to the share's bytes, so two jobs never share a tape or see each
 * other's weights), but the backend computes on the one JavaScript thread, so N jobs in one process
 * run one after another. N processes compute N gradients at once, one core each, as `--workers N`
 * does on the coordinator's machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { GhnError } from '../errors.js';
import { checkRunName, checkVersion, connectRedis, readSettings, redactUrl } from './redis-transport.js';

export interface WorkerPoolOptions {
  url: string;
  run: string;
  dataDir?: string;
  concurrency: number;
  /** Each line a process writes to stderr, prefixed with its number. */
  onLog?: (line: string) => void;
}

/** Starts the processes and resolves once all have left (the run is done); rejects with the first failure's line. */
export async function runWorkerPool(options: WorkerPoolOptions): Promise<void> {
  const log = options.onLog ?? (() => {});
  // Bad input ends here in one line, not once per process.
  const run = checkRunName(options.run);
  const client = await connectRedis(options.url);
  try {
    checkVersion(await readSettings(client, run, redactUrl(options.url)));
  } finally {
    client.disconnect();
  }
  const args = ['--redis', options.url, '--run', run, ...(options.dataDir ? ['--data-dir', options.dataDir] : [])];
  const children: ChildProcess[] = [];
  // A signal to this process reaches each worker, which gives its job back as a killed one would.
  const forward = (signal: NodeJS.Signals) => () => { for (const c of children) if (c.exitCode === null) c.kill(signal); };
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((signal) => [signal, forward(signal)] as const);
  for (const [signal, handler] of handlers) process.on(signal, handler);
  try {
    const results = await Promise.all(Array.from({ length: options.concurrency }, (_, k) => {
      // The same CLI under the same loader (tsx in development, dist in a package).
      const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'worker', ...args], { stdio: ['ignore', 'inherit', 'pipe'] });
      children.push(child);
      let last = '';
      let partial = '';
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop()!;
        for (const line of lines) {
          if (line) last = line;
          log(`[${k + 1}/${options.concurrency}] ${line}`);
        }
      });
      return new Promise<{ code: number | null; signal: NodeJS.Signals | null; last: string }>((resolve) => {
        child.on('exit', (code, signal) => {
          if (partial) { last = partial; log(`[${k + 1}/${options.concurrency}] ${partial}`); }
          resolve({ code, signal, last });
        });
      });
    }));
    const failed = results.find((r) => r.code !== 0);
    if (failed) throw new GhnError('unsupported', failed.last.replace(/^ghn: /, '') || `a worker process ended with ${failed.signal ?? `exit code ${failed.code}`}`);
  } finally {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  }
}
