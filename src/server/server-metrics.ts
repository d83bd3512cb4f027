/** The service's metrics: requests by route and status, latency, queue and worker state, memory. */
import { Counter, Gauge, Histogram, Registry } from './metrics.js';
import type { ResultStore } from './results.js';
import type { WorkerPool } from './worker-pool.js';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests = this.registry.register(new Counter('ghn_http_requests_total', 'HTTP requests answered, by method, route and status.'));
  readonly latency = this.registry.register(new Histogram('ghn_http_request_duration_seconds', 'Time from request to response, by route.', LATENCY_BUCKETS));
  readonly jobWait = this.registry.register(new Histogram('ghn_job_queue_wait_seconds', 'Time a job waited for a free worker, by kind.', LATENCY_BUCKETS));
  readonly jobRun = this.registry.register(new Histogram('ghn_job_run_seconds', 'Time a worker spent on a job, by kind.', LATENCY_BUCKETS));

  constructor(pool: WorkerPool, results: ResultStore) {
    const r = this.registry;
    r.register(new Gauge('ghn_jobs_in_flight', 'Jobs running in a worker now.', () => pool.stats.running));
    r.register(new Gauge('ghn_jobs_queued', 'Jobs waiting for a free worker now.', () => pool.stats.queued));
    r.register(new Gauge('ghn_workers', 'Worker threads.', () => pool.stats.workers));
    r.register(new Gauge('ghn_workers_ready', 'Worker threads that have loaded their backend.', () => pool.stats.ready));
    r.register(new Gauge('ghn_jobs_rejected_total', 'Jobs refused with 503 because the queue was full.', () => pool.stats.rejected, 'counter'));
    r.register(new Gauge('ghn_jobs_timed_out_total', 'Jobs that ran out of time, queued or running.', () => pool.stats.timedOut, 'counter'));
    r.register(new Gauge('ghn_worker_restarts_total', 'Workers replaced after a timeout or crash.', () => pool.stats.restarts, 'counter'));
    r.register(new Gauge('ghn_results_held', 'Predicted files held for download.', () => results.count));
    r.register(new Gauge('ghn_results_held_bytes', 'Bytes of predicted files held for download.', () => results.bytes));
    r.register(new Gauge('process_resident_memory_bytes', 'Resident set size of the server process.', () => process.memoryUsage.rss()));
    r.register(new Gauge('process_heap_used_bytes', 'V8 heap in use on the main thread.', () => process.memoryUsage().heapUsed));
  }
}
