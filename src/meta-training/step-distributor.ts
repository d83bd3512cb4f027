/**
 * Where a meta-step's per-architecture gradients are computed when not all in the training
 * process: forked children (gradient-workers.ts) or workers on other machines through Redis
 * (redis-coordinator.ts). Either way the step's gradient is the sum of the shares in drawing
 * order, so the run is the same bit for bit.
 */
import type { Dataset } from '../data/dataset.js';
import type { GhnConfig, GhnModel } from '../ghn/model.js';
import type { TaskShape } from '../space/family.js';
import type { MetaGradients } from './meta-batch.js';
import type { TrainRecipe } from './recipe.js';

export interface DistributedSteps {
  /**
   * The gradient of step `step` over the architectures `indices` (pool indices, in drawing order);
   * `local` computes one in this process, for a distributor that shares the work with it.
   */
  step(ghn: GhnModel, step: number, images: number, indices: readonly number[], local: (index: number) => MetaGradients): Promise<MetaGradients>;
  /** `finished`: the run reached its last step (not stopped by an error). */
  stop(finished?: boolean): void | Promise<void>;
}

/** What a distributor learns of the run once the trainer has settled it (recipe after any resume). */
export interface DistributedRun {
  config: GhnConfig;
  recipe: TrainRecipe;
  task: TaskShape;
  data: Dataset;
  startStep: number;
}

export type StepDistributor = (run: DistributedRun) => Promise<DistributedSteps>;
