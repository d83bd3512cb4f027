/**
 * Where a meta-step's per-architecture gradients are computed when it is not in the training
 * process: workers on other machines through Redis (redis-coordinator.ts). The trainer's draw
 * runs on the distributor's record of which architectures are usable (the workers build them, and
 * report one that fails, which is then drawn around as a serial run would), and the step's
 * gradient is the sum of the shares in drawing order, so the run is the same bit for bit.
 */
import type { Dataset } from '../data/dataset.js';
import type { GhnConfig, GhnModel } from '../ghn/model.js';
import type { TaskShape } from '../space/family.js';
import type { DrawingPool, MetaGradients } from './meta-batch.js';
import type { TrainRecipe } from './recipe.js';

export interface DistributedSteps {
  /** What the trainer draws from: usable unless a worker found otherwise. */
  readonly pool: DrawingPool;
  /**
   * Step `step`'s architectures (pool indices in drawing order: `draw()`, again after any that
   * turned out unusable) and their summed gradient.
   */
  step(ghn: GhnModel, step: number, images: number, draw: () => number[]): Promise<{ indices: number[]; gradients: MetaGradients }>;
  /** `finished`: the run reached its last step (not stopped by an error or the clock). */
  stop(finished?: boolean): Promise<void>;
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
