/**
 * Architectures of one split of the space, built on first use: sampled ONNX, its ComputationGraph
 * encoding and a GraphExecutor. Building one costs ~20 ms (~50 ms with the smoke test) and ~2.7 MB
 * (measured on train-split architectures), so the most recently used `cacheSize` are kept and older
 * ones rebuilt on demand:
 * a pool of a million architectures (the GHN does not memorize a small set; with 300 it did, val
 * loss rising while train loss fell) costs one build per draw and bounded memory.
 */
import * as tf from '../engine/tfjs-core.js';
import { GraphExecutor } from '../engine/executor.js';
import { buildGraph } from '../graph/build.js';
import type { OnnxModel } from '../onnx/types.js';
import { untieSharedInitializers } from '../fine-tuning/untie.js';
import { architectureSeed, sampleArchitecture, type Split } from '../space/sample.js';
import type { FamilyName, TaskShape } from '../space/family.js';
import { encodeGraph, type GraphEncoding } from '../ghn/encoding.js';

/** The space's default task (Fashion-MNIST); a GHN trained on other data samples for its input shape and classes. */
export const DEFAULT_TASK: TaskShape = Object.freeze({ input: [1, 28, 28] as const, classes: 10 });

/** Built training architectures kept in memory per process (~1.4 GB); the rest are rebuilt when drawn again. */
export const TRAINING_POOL_CACHE = 512;

export interface PooledArchitecture {
  id: string;
  family: FamilyName;
  model: OnnxModel;
  encoding: GraphEncoding;
  executor: GraphExecutor;
}

export class ArchitecturePool {
  /** Built architectures in least- to most-recently-used order (Map keeps insertion order). */
  private readonly built = new Map<number, PooledArchitecture>();
  /** Indices whose architecture cannot be used: remembered, as the answer never changes. */
  private readonly unusable = new Set<number>();

  /**
   * `smokeTest`: run every architecture forward and backward on blank images when it is built, so
   * that one tfjs cannot run is never drawn (~30 ms, most of a build). A caller that runs each
   * architecture it draws anyway can skip it and report a failure with `markUnusable` instead.
   */
  constructor(
    readonly split: Split, readonly size: number, readonly baseSeed = 0, readonly cacheSize = Infinity, readonly smokeTest = true,
    readonly task: TaskShape = DEFAULT_TASK,
  ) {}

  /** Never draw `index` again (it failed where the smoke test would have caught it). */
  markUnusable(index: number): void {
    this.built.get(index)?.executor.dispose();
    this.built.delete(index);
    this.unusable.add(index);
  }

  /**
   * The index-th architecture, or undefined if it cannot be used (graph import failed, or an
   * initializer fills several slots). Deterministic: same split, index and base seed → same network.
   */
  get(index: number): PooledArchitecture | undefined {
    if (this.unusable.has(index)) return undefined;
    let entry = this.built.get(index);
    if (entry) {
      this.built.delete(index); // re-inserted below as the most recently used
    } else {
      entry = build(architectureSeed(this.split, index, this.baseSeed), this.smokeTest, this.task) ?? undefined;
      if (!entry) {
        this.unusable.add(index);
        return undefined;
      }
      for (const [old, e] of this.built) {
        if (this.built.size < this.cacheSize) break;
        e.executor.dispose();
        this.built.delete(old);
      }
    }
    this.built.set(index, entry);
    return entry;
  }

  dispose(): void {
    for (const e of this.built.values()) e.executor.dispose();
    this.built.clear();
  }
}

/**
 * One training-mode forward and backward on two blank images: drops networks the executor cannot
 * run or tfjs cannot differentiate (e.g. strided dilated convolutions) before they are drawn.
 */
function smokeRun(executor: GraphExecutor, task: TaskShape): void {
  tf.tidy(() => {
    tf.grad((x: tf.Tensor) => tf.sum(executor.run(x, { training: true }).outputs[0]!))(tf.zeros([2, ...task.input]));
  });
}

function build(seed: number, smokeTest: boolean, task: TaskShape): PooledArchitecture | null {
  try {
    const arch = sampleArchitecture(seed, { input: [...task.input], classes: task.classes });
    const model: OnnxModel = { proto: arch.model };
    untieSharedInitializers(model); // the exporter merges equal initializers; each slot needs its own
    const graph = buildGraph(model);
    const encoding = encodeGraph(graph);
    const initializers = new Set(encoding.slots.map((s) => s.initializer));
    if (initializers.size !== encoding.slots.length || encoding.slots.length === 0) {
      console.warn(`architecture ${arch.id} skipped: ${encoding.slots.length - initializers.size} shared initializers remain after untying`);
      return null;
    }
    const executor = new GraphExecutor(model);
    try {
      if (smokeTest) smokeRun(executor, task);
    } catch (e) {
      executor.dispose();
      throw e;
    }
    return { id: arch.id, family: arch.family, model, encoding, executor };
  } catch (e) {
    // An architecture the importer cannot place is skipped, not fatal; say so once.
    console.warn(`architecture seed ${seed} skipped: ${(e as Error).message}`);
    return null;
  }
}
