/**
 * Child-process entry of data-parallel meta-training (forked by gradient-workers.ts): holds its own
 * GHN copy, architecture pool and images, and answers each step's share with one gradient per
 * architecture.
 */
import * as tf from '../engine/tfjs-core.js';
import { initBackend } from '../engine/backend.js';
import { ArchitecturePool, TRAINING_POOL_CACHE } from './arch-pool.js';
import { archGradients, imageBatch } from './meta-batch.js';
import { GhnModel } from '../ghn/model.js';
import type { SentShare, WorkerMessage, WorkerReply } from './gradient-workers.js';

if (!process.send) throw new Error('src/meta-training/gradient-worker.ts runs as a child of meta-training (forked with IPC)');

const reply = (message: WorkerReply): void => void process.send!(message);
process.on('disconnect', () => process.exit(0));

let state: { ghn: GhnModel; pool: ArchitecturePool; init: Extract<WorkerMessage, { type: 'init' }> } | undefined;

process.on('message', (message: WorkerMessage) => {
  try {
    if (message.type === 'init') {
      state = { ghn: new GhnModel(message.config), pool: new ArchitecturePool('train', message.poolSize, message.spaceSeed, TRAINING_POOL_CACHE, true, message.task), init: message };
      reply({ type: 'ready' });
      return;
    }
    if (!state) throw new Error('step before init');
    const { ghn, pool, init } = state;
    for (const [name, values] of Object.entries(message.weights)) {
      const v = ghn.variables.get(name)!;
      const t = tf.tensor(values, v.shape);
      v.assign(t);
      t.dispose(); // the variable keeps its own reference; undisposed, every step's weights (~1.1 MB) stayed allocated
    }
    const { x, y } = imageBatch(init.data, message.images, init.seed, message.step);
    const shares: SentShare[] = message.archIndices.map((index) => {
      const t0 = performance.now();
      const arch = pool.get(index);
      if (!arch) throw new Error(`architecture ${index} of the pool is not usable here`);
      const part = archGradients(ghn, arch, x, y, message.divisor);
      const grads: Record<string, Float32Array> = {};
      for (const [name, g] of part.grads) grads[name] = g.dataSync() as Float32Array;
      tf.dispose([...part.grads.values()]);
      return { loss: part.loss, correct: part.correct, seconds: (performance.now() - t0) / 1000, grads };
    });
    tf.dispose([x, y]);
    reply({ type: 'gradients', step: message.step, shares });
  } catch (err) {
    reply({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
  }
});

await initBackend();
reply({ type: 'started' });
