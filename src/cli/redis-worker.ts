/** `ghn worker`: joins a meta-training run over Redis from any machine (src/meta-training/redis-worker.ts). */
import type { Command } from 'commander';
import { parseNumber } from './options.js';

export function registerRedisWorker(program: Command): void {
  program
    .command('worker')
    .description('compute gradients for a meta-training run coordinated over Redis (ghn train --redis URL --run NAME); leaves when the run is done')
    .requiredOption('--redis <url>', 'the run\'s Redis: redis://[:PASSWORD@]HOST:PORT, or rediss:// for TLS')
    .option('--run <name>', 'the run to join', 'ghn')
    .option('--data-dir <dir>', 'where this machine keeps the run\'s dataset (default: the coordinator\'s path)')
    .option('--concurrency <n>', 'jobs computed at once on this machine, as that many worker processes (one core each)', '1')
    .action(async (o: { redis: string; run: string; dataDir?: string; concurrency: string }) => {
      const concurrency = parseNumber(o.concurrency, '--concurrency', { integer: true, min: 1 });
      const onLog = (line: string) => process.stderr.write(`${line}\n`);
      if (concurrency > 1) {
        const { runWorkerPool } = await import('../meta-training/redis-worker-pool.js');
        await runWorkerPool({ url: o.redis, run: o.run, dataDir: o.dataDir, concurrency, onLog });
        return;
      }
      const { runRedisWorker } = await import('../meta-training/redis-worker.js');
      await runRedisWorker({ url: o.redis, run: o.run, dataDir: o.dataDir, onLog });
    });
}
