/**
 * Default-init mixes computed on a worker thread, for `predict --samples`: onnxruntime-node runs a
 * session's forward pass and creation on the main thread (its run() is a setImmediate around a
 * synchronous call), so the next sample's mix (JS, ~0.14 s for ResNet-50's 25.5 M values) can only
 * overlap this sample's calibration and check from another thread. The worker gets a copy of the
 * prediction once and the slots' draw rules; each mix comes back as transferred arrays (no copy).
 * The values are mixSlot's, the function the main thread uses, of the same seeds: the same bytes.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { ComputationGraph } from '../graph/computation-graph.js';
import { mixSlot, slotDraw, slotSeed, type SlotDraw } from './default-init.js';

interface Plan {
  slots: { id: string; draw: SlotDraw; k: number; values: Float32Array }[];
  t: number;
}

interface Reply {
  seed: number;
  mixed?: [string, Float32Array][];
  error?: string;
}

/** A worker that mixes `predicted` with share t of default draws, one seed per call. */
export class MixWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (m: Map<string, Float32Array>) => void; reject: (e: Error) => void }>();
  private failed?: Error;

  constructor(graph: ComputationGraph, predicted: ReadonlyMap<string, Float32Array>, t: number) {
    const slots: Plan['slots'] = [];
    let k = 0;
    for (const slot of graph.slots.values()) {
      const values = predicted.get(slot.id);
      if (values) slots.push({ id: slot.id, draw: slotDraw(graph, slot), k: ++k, values });
    }
    // Under tsx (tests) this module is the .ts source; built, the .js.
    const url = new URL(import.meta.url);
    // Under tsx a worker does not get its hooks: the entry imports this module through tsx's API.
    const href = JSON.stringify(url.href);
    const entry = url.pathname.endsWith('.ts') ? `import('tsx/esm/api').then((m) => m.tsImport(${href}, ${href}))` : `import(${href})`;
    this.worker = new Worker(entry, { eval: true, workerData: { plan: { slots, t } satisfies Plan } });
    this.worker.on('message', (reply: Reply) => {
      const waiter = this.pending.get(reply.seed);
      this.pending.delete(reply.seed);
      if (!waiter) return;
      if (reply.error !== undefined) waiter.reject(new Error(reply.error));
      else waiter.resolve(new Map(reply.mixed));
    });
    const fail = (err: Error) => {
      this.failed = err;
      for (const w of this.pending.values()) w.reject(err);
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the mix worker exited (code ${code})`)));
  }

  /** The mix of `seed` (the seed mixWithDefaultInit takes). */
  mix(seed: number): Promise<Map<string, Float32Array>> {
    if (this.failed) return Promise.reject(this.failed);
    const result = new Promise<Map<string, Float32Array>>((resolve, reject) => this.pending.set(seed, { resolve, reject }));
    this.worker.postMessage(seed);
    return result;
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

if (!isMainThread && parentPort && (workerData as { plan?: Plan } | null)?.plan) {
  const { slots, t } = (workerData as { plan: Plan }).plan;
  const port = parentPort;
  port.on('message', (seed: number) => {
    try {
      const mixed = slots.map(({ id, draw, k, values }) => [id, mixSlot(values, t, draw, slotSeed(seed, k))] as [string, Float32Array]);
      port.postMessage({ seed, mixed } satisfies Reply, mixed.map(([, v]) => v.buffer as ArrayBuffer));
    } catch (err) {
      port.postMessage({ seed, error: (err as Error).message } satisfies Reply);
    }
  });
}
