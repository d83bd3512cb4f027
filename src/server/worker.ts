/** Worker-process entry (forked by the pool): runs one job at a time and answers over IPC. */
import { initBackend } from '../engine/backend.js';
import { GhnError } from '../errors.js';
import type { WorkerReply, WorkerRequest } from './jobs.js';
import { runJob } from './compute.js';

if (!process.send) throw new Error('src/server/worker.ts runs as a worker process of the server (forked with IPC)');

function reply(message: WorkerReply): void {
  process.send!(message);
}

// The server going away (its IPC channel closing) ends the worker too.
process.on('disconnect', () => process.exit(0));

process.on('message', async ({ id, job }: WorkerRequest) => {
  try {
    reply({ type: 'done', id, output: await runJob(job) });
  } catch (err) {
    const error = err instanceof GhnError ? { kind: err.kind, message: err.message } : { message: err instanceof Error ? err.message : String(err) };
    reply({ type: 'failed', id, error });
  }
});

// Loading tfjs and its wasm binary takes a second; do it before the first job arrives.
await initBackend();
reply({ type: 'ready' });
