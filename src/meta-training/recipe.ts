/**
 * The meta-training recipe and its defaults, apart from the trainer so that the CLI can show the
 * defaults without loading the training code.
 */
import { DEFAULT_GHN_CONFIG, type GhnConfig } from '../ghn/config.js';

export interface TrainRecipe {
  steps: number;
  /** Architectures per meta-step. */
  metaBatch: number;
  /** Images per architecture per step (the same images for every architecture of a step). */
  images: number;
  lr: number;
  weightDecay: number;
  warmupSteps: number;
  clipNorm: number;
  /**
   * Train-split architectures the steps draw from. Large, so the GHN cannot memorize them: with 300
   * the shipped model's validation loss rose while its training loss fell.
   */
  poolSize: number;
  seed: number;
  /** Base seed of the architecture space. */
  spaceSeed: number;
  ghn: GhnConfig;
  /**
   * Schedule extensions of resumed runs, oldest first. A tail starting at step `from` replaces the
   * schedule from there on: linear warm-up over `warmupSteps` from 0 to `lr`, then cosine to 0 at
   * `steps` (the recipe's current, extended, step count). `metaBatch`/`images` record what the run
   * used from that step on.
   */
  tails?: ScheduleTail[];
  /**
   * The base schedule's meta-batch and images, recorded when the first tail replaces them, and its
   * pool size, recorded when the first tail changes it.
   */
  base?: { metaBatch: number; images: number; poolSize?: number };
  /**
   * Weight of the diversity term (meta-training/diversity.ts; needs a GHN with a latent input):
   * each architecture is predicted for two latent draws and the loss is their mean cross-entropy
   * minus this × their Jensen–Shannon divergence. Absent or 0: the plain objective.
   */
  diversity?: number;
  /** Only the GHN variables whose names start with one of these are trained (absent: all). */
  trainVariables?: string[];
}

export interface ScheduleTail {
  from: number;
  lr: number;
  warmupSteps: number;
  metaBatch: number;
  images: number;
  /** Pool size from this step on (absent: unchanged from the previous segment). */
  poolSize?: number;
  /** Diversity weight and trained variables from this step on (absent: the plain objective, every variable). */
  diversity?: number;
  trainVariables?: string[];
}

export const DEFAULT_RECIPE: TrainRecipe = {
  steps: 1000,
  metaBatch: 2,
  images: 24,
  lr: 2e-3,
  weightDecay: 1e-2,
  warmupSteps: 50,
  clipNorm: 5,
  poolSize: 1_000_000,
  seed: 1,
  spaceSeed: 0,
  ghn: DEFAULT_GHN_CONFIG,
};

/**
 * The meta-batch, images and pool size of a recipe's base schedule (before any tail). Recipes
 * extended before the base was recorded used DEFAULT_RECIPE's meta-batch and images; a base without
 * a pool size means no tail has changed it, so the recipe's own is the base's.
 */
export function recipeBase(recipe: TrainRecipe): Required<NonNullable<TrainRecipe['base']>> {
  const base = recipe.base ?? (recipe.tails?.length
    ? { metaBatch: DEFAULT_RECIPE.metaBatch, images: DEFAULT_RECIPE.images }
    : { metaBatch: recipe.metaBatch, images: recipe.images });
  return { ...base, poolSize: base.poolSize ?? recipe.poolSize };
}
