/**
 * Data-parallel meta-training: the architectures of a step are shared between this process and
 * forked children (one core each), each computing Σ loss / meta-batch over its share; the parts add
 * up to the step's gradient. Per step, each child gets the GHN's weights (~1 MB) and its share's
 * pool indices and returns its gradients. The sum is taken in a fixed order, so a run is
 * deterministic for a seed and a worker count; runs with different worker counts differ by float
 * rounding only.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import type { Dataset } from '../data/dataset.js';
import { GhnError } from '../errors.js';
import { forkEntry } from '../util/fork-entry.js';
import type { GhnConfig, GhnModel } from './model.js';
import type { MetaGradients } from './meta-batch.js';

export type WorkerMessage =
  | { type: 'init'; config: GhnConfig; poolSize: number; spaceSeed: number; seed: number; data: Dataset }
  | { type: 'step'; step: number; images: number; divisor: number; archIndices: number[]; weights: Record<string, Float32Array> };

export type WorkerReply =
  | { type: 'started' }
  | { type: 'ready' }
  | { type: 'gradients'; step: number; loss: number; correct: number; grads: Record<string, Float32Array> }
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

export class GradientWorkers {
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
        child.send({ type: 'init', ...init } satisfies WorkerMessage);
        await ready;
      }));
    } catch (err) {
      workers.stop();
      throw err;
    }
    return workers;
  }

  get count(): number {
    return this.children.length;
  }

  /**
   * Sends each child its share (shares[k] for child k), runs `local` meanwhile, and returns the
   * step's loss, correct count and gradients: local first, then the children in order.
   */
  async step(ghn: GhnModel, step: number, images: number, divisor: number, shares: number[][], local: () => MetaGradients): Promise<MetaGradients> {
    const weights: Record<string, Float32Array> = {};
    for (const [name, v] of ghn.variables) weights[name] = v.dataSync() as Float32Array;
    // A child with no share this step (meta-batch smaller than the processes) sits it out.
    const replies = this.children.filter((_, k) => shares[k]?.length).map((child) => {
      const k = this.children.indexOf(child);
      const answer = nextReply(child);
      child.send({ type: 'step', step, images, divisor, archIndices: shares[k]!, weights } satisfies WorkerMessage);
      return answer;
    });
    const mine = local();
    const theirs = await Promise.all(replies);
    let { loss, correct } = mine;
    const grads = mine.grads;
    for (const r of theirs) {
      if (r.type !== 'gradients' || r.step !== step) throw new GhnError('unsupported', `gradient worker answered out of turn (${r.type})`);
      loss += r.loss;
      correct += r.correct;
      for (const [name, values] of Object.entries(r.grads)) {
        const before = grads.get(name);
        const part = tf.tensor(values, ghn.variables.get(name)!.shape);
        grads.set(name, before ? tf.add(before, part) : part);
        if (before) { before.dispose(); part.dispose(); }
      }
    }
    return { loss, correct, grads };
  }

  stop(): void {
    for (const child of this.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
