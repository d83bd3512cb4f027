/**
 * Architectures of one split of the space, built on first use and kept: sampled ONNX, its
 * ComputationGraph encoding and a GraphExecutor. Meta-training draws from a fixed pool of these so
 * graph building and executor compilation are paid once per architecture, not once per step.
 */
import * as tf from '../engine/tfjs-core.js';
import { GraphExecutor } from '../engine/executor.js';
import { buildGraph } from '../graph/build.js';
import type { OnnxModel } from '../onnx/types.js';
import { untieSharedInitializers } from '../train/untie.js';
import { architectureSeed, sampleArchitecture, type Split } from '../space/sample.js';
import type { FamilyName } from '../space/family.js';
import { encodeGraph, type GraphEncoding } from './encoding.js';

/** Input of the sampled networks (the space's default task: Fashion-MNIST). */
const SPACE_INPUT = [1, 28, 28];

export interface PooledArchitecture {
  id: string;
  family: FamilyName;
  model: OnnxModel;
  encoding: GraphEncoding;
  executor: GraphExecutor;
}

export class ArchitecturePool {
  private readonly built = new Map<number, PooledArchitecture | null>();

  constructor(readonly split: Split, readonly size: number, readonly baseSeed = 0) {}

  /**
   * The index-th architecture, or undefined if it cannot be used (graph import failed, or an
   * initializer fills several slots). Deterministic: same split, index and base seed → same network.
   */
  get(index: number): PooledArchitecture | undefined {
    let entry = this.built.get(index);
    if (entry === undefined) {
      entry = build(architectureSeed(this.split, index, this.baseSeed));
      this.built.set(index, entry);
    }
    return entry ?? undefined;
  }

  dispose(): void {
    for (const e of this.built.values()) e?.executor.dispose();
    this.built.clear();
  }
}

/**
 * One training-mode forward and backward on two blank images: drops networks the executor cannot
 * run or tfjs cannot differentiate (e.g. strided dilated convolutions) before they are drawn.
 */
function smokeRun(executor: GraphExecutor): void {
  tf.tidy(() => {
    tf.grad((x: tf.Tensor) => tf.sum(executor.run(x, { training: true }).outputs[0]!))(tf.zeros([2, ...SPACE_INPUT]));
  });
}

function build(seed: number): PooledArchitecture | null {
  try {
    const arch = sampleArchitecture(seed);
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
      smokeRun(executor);
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
