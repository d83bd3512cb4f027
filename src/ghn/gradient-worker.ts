/**
 * Child-process entry of data-parallel meta-training (forked by gradient-workers.ts): holds its own
 * GHN copy, architecture pool and images, and answers each step's share with its gradients.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../engine/backend.js';
import { ArchitecturePool } from './arch-pool.js';
import { imageBatch, metaGradients } from './meta-batch.js';
import { GhnModel } from './model.js';
import type { WorkerMessage, WorkerReply } from './gradient-workers.js';

if (!process.send) throw new Error('src/ghn/gradient-worker.ts runs as a child of meta-training (forked with IPC)');

const reply = (message: WorkerReply): void => void process.send!(message);
process.on('disconnect', () => process.exit(0));

let state: { ghn: GhnModel; pool: ArchitecturePool; init: Extract<WorkerMessage, { type: 'init' }> } | undefined;

process.on('message', (message: WorkerMessage) => {
  try {
    if (message.type === 'init') {
      state = { ghn: new GhnModel(message.config), pool: new ArchitecturePool('train', message.poolSize, message.spaceSeed), init: message };
      reply({ type: 'ready' });
      return;
    }
    if (!state) throw new Error('step before init');
    const { ghn, pool, init } = state;
    for (const [name, values] of Object.entries(message.weights)) {
      const v = ghn.variables.get(name)!;
      v.assign(tf.tensor(values, v.shape));
    }
    const archs = message.archIndices.map((i) => pool.get(i)!);
    const { x, y } = imageBatch(init.data, message.images, init.seed, message.step);
    const result = metaGradients(ghn, archs, x, y, message.divisor);
    const grads: Record<string, Float32Array> = {};
    for (const [name, g] of result.grads) grads[name] = g.dataSync() as Float32Array;
    tf.dispose([x, y, ...result.grads.values()]);
    reply({ type: 'gradients', step: message.step, loss: result.loss, correct: result.correct, grads });
  } catch (err) {
    reply({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
  }
});

await initBackend();
reply({ type: 'started' });
