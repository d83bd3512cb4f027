/**
 * The GHN's hyperparameters, apart from the model so that the recipe and the command line can name
 * them without loading tfjs.
 */
export interface GhnConfig {
  /** Embedding width. */
  hidden: number;
  layers: number;
  heads: number;
  /** Rank of the low-rank decoder. */
  rank: number;
  seed: number;
  /**
   * The classifier's weight and bias get decoder maps of their own, added to the shared ones
   * (`decoder.<map>.classifier`, zero at start, so growing a trained GHN this way keeps its
   * function): the shared maps serve every other slot, and the predicted classifier is where
   * accuracy is lost (scripts/probe-ghn-features.ts).
   */
  classifierMaps?: boolean;
}

export const DEFAULT_GHN_CONFIG: GhnConfig = { hidden: 64, layers: 3, heads: 4, rank: 32, seed: 1 };
