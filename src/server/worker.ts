/** Worker-thread entry: runs one job at a time for the pool and answers with transferable bytes. */
import { parentPort } from 'node:worker_threads';
import { initBackend } from '../engine/backend.js';
import { GhnError } from '../errors.js';
import { ownBytes, type WorkerReply, type WorkerRequest } from './jobs.js';
import { runJob } from './compute.js';

const port = parentPort;
if (!port) throw new Error('src/server/worker.ts runs as a worker thread of the server');

function reply(message: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

port.on('message', async ({ id, job }: WorkerRequest) => {
  try {
    const output = await runJob(job);
    if (output.kind !== 'predict') return reply({ type: 'done', id, output });
    // Transfer rather than copy the written model; a view into a shared buffer is copied out first.
    const own = ownBytes(output.onnx);
    reply({ type: 'done', id, output: { ...output, onnx: own } }, [own.buffer as ArrayBuffer]);
  } catch (err) {
    const error = err instanceof GhnError ? { kind: err.kind, message: err.message } : { message: err instanceof Error ? err.message : String(err) };
    reply({ type: 'failed', id, error });
  }
});

// Loading tfjs and its wasm binary takes a second; do it before the first job arrives.
await initBackend();
reply({ type: 'ready' });
