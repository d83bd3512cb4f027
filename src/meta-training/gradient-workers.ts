/**
 * Data-parallel meta-training: the architectures of a step are shared between this process and
 * forked children (one core each). Each architecture's gradient is computed whole in one process
 * and the step's gradient is their sum in drawing order, so a run gives the same numbers with any
 * number of workers and any assignment. That leaves the assignment free to balance the load: the
 * architectures differ several-fold in cost, so they are placed longest first on the least loaded
 * process, by the time each took when last run. Per step, each busy child gets the GHN's weights
 * (~1 MB) and its architectures' pool indices, and returns one gradient per architecture.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '../engine/tfjs-core.js';
import type { Dataset } from '../data/dataset.js';
import { GhnError } from '../errors.js';
import { forkEntry } from '../util/fork-entry.js';
import { sumInOrder, type MetaGradients } from './meta-batch.js';
import type { GhnConfig, GhnModel } from '../ghn/model.js';
import type { TaskShape } from '../space/family.js';

export type WorkerMessage =
  | { type: 'init'; config: GhnConfig; poolSize: number; spaceSeed: number; seed: number; data: Dataset; task: TaskShape }
  | { type: 'step'; step: number; images: number; divisor: number; archIndices: number[]; weights: Record<string, Float32Array> };

/** One architecture's gradient as it crosses the channel, with the seconds it took. */
export interface SentShare {
  loss: number;
  correct: number;
  seconds: number;
  grads: Record<string, Float32Array>;
}

export type WorkerReply =
  | { type: 'started' }
  | { type: 'ready' }
  | { type: 'gradients'; step: number; shares: SentShare[] }
  | { type: 'failed'; message: string };

const SELF = fileURLToPath(import.meta.url);

/** The next reply of a child, or a GhnError if it fails or exits first. */
function nextReply(child: ChildProcess): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: WorkerReply) => { cleanup(); m.type === 'failed' ? reject(new GhnError('unsupported', `gradient worker: ${m.message}`)) : resolve(m); };
    const onExit = (code: number | null) => { cleanup(); reject(new GhnError('unsupported', `gradient worker exited (code ${code})`)); };
    const cleanup = () => { child.off('message', onMessage); child.off('exit', onExit); };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

function sendAll(child: ChildProcess, message: WorkerMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    child.send(message, (err) => (err ? reject(new GhnError('unsupported', `gradient worker: ${err.message}`)) : resolve()));
  });
}

export class GradientWorkers {
  /** Seconds each pool architecture took when last run (in any process). */
  private readonly cost = new Map<number, number>();

  private constructor(private readonly children: ChildProcess[]) {}

  /** Forks `count` children and gives each the pool, seed and images the trainer uses. */
  static async start(count: number, init: Omit<Extract<WorkerMessage, { type: 'init' }>, 'type'>): Promise<GradientWorkers> {
    const entry = path.join(path.dirname(SELF), `gradient-worker${path.extname(SELF)}`);
    const children = Array.from({ length: count }, () => forkEntry(entry));
    const workers = new GradientWorkers(children);
    try {
      await Promise.all(children.map(async (child) => {
        await nextReply(child); // started: backend loaded
        const ready = nextReply(child);
        await sendAll(child, { type: 'init', ...init });
        await ready;
      }));
    } catch (err) {
      workers.stop();
      throw err;
    }
    return workers;
  }

  /**
   * The gradient of one step over the architectures `indices` (pool indices, in drawing order):
   * each architecture computed here by `local` or in a child, then summed in drawing order.
   */
  async step(
    ghn: GhnModel, step: number, images: number, indices: readonly number[], local: (index: number) => MetaGradients,
  ): Promise<MetaGradients> {
    const owner = this.assign(indices);
    const weights: Record<string, Float32Array> = {};
    for (const [name, v] of ghn.variables) weights[name] = v.dataSync() as Float32Array;
    const positionsOf = (p: number) => indices.map((_, k) => k).filter((k) => owner[k] === p);
    const busy = this.children.map((child, c) => ({ child, positions: positionsOf(c + 1) })).filter((b) => b.positions.length);
    const replies = busy.map(({ child }) => nextReply(child));
    // The ~1 MB message goes out in pieces on the event loop: wait until it has, or the child would
    // get it only once the synchronous local work below is done.
    await Promise.all(busy.map(({ child, positions }) => sendAll(child, {
      type: 'step', step, images, divisor: indices.length, archIndices: positions.map((k) => indices[k]!), weights,
    })));
    const parts = new Array<MetaGradients | undefined>(indices.length);
    for (const k of positionsOf(0)) {
      const t0 = performance.now();
      parts[k] = local(indices[k]!);
      this.cost.set(indices[k]!, (performance.now() - t0) / 1000);
    }
    const answers = await Promise.all(replies);
    answers.forEach((r, b) => {
      if (r.type !== 'gradients' || r.step !== step) throw new GhnError('unsupported', `gradient worker answered out of turn (${r.type})`);
      busy[b]!.positions.forEach((k, j) => {
        const share = r.shares[j]!;
        this.cost.set(indices[k]!, share.seconds);
        const grads = new Map(Object.entries(share.grads).map(([name, values]) => [name, tf.tensor(values, ghn.variables.get(name)!.shape)]));
        parts[k] = { loss: share.loss, correct: share.correct, grads };
      });
    });
    return sumInOrder(parts as MetaGradients[]);
  }

  /** Process (0: this one, c + 1: child c) of each position: longest first onto the least loaded. */
  private assign(indices: readonly number[]): number[] {
    const known = [...this.cost.values()];
    const typical = known.length ? known.reduce((a, b) => a + b, 0) / known.length : 1;
    const load = new Array<number>(this.children.length + 1).fill(0);
    const owner = new Array<number>(indices.length);
    const order = indices.map((_, k) => k).sort((a, b) => (this.cost.get(indices[b]!) ?? typical) - (this.cost.get(indices[a]!) ?? typical));
    for (const k of order) {
      const p = load.indexOf(Math.min(...load));
      owner[k] = p;
      load[p]! += this.cost.get(indices[k]!) ?? typical;
    }
    return owner;
  }

  stop(): void {
    for (const child of this.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
