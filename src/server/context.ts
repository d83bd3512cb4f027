/** What every route handler shares: options, the worker pool, the GHN registry, held results, metrics. */
import type { GhnRegistry } from './models.js';
import type { ServerOptions } from './options.js';
import type { ResultStore } from './results.js';
import type { SampleSet } from './samples.js';
import type { ServerMetrics } from './server-metrics.js';
import type { WorkerPool } from './worker-pool.js';

export interface ServerContext {
  options: ServerOptions;
  pool: WorkerPool;
  ghns: GhnRegistry;
  results: ResultStore;
  samples: SampleSet;
  metrics: ServerMetrics;
  started: number;
}
