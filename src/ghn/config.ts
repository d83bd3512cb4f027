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
  /**
   * Channel codes follow channels through Concat/Split/Slice and channel-wise layers
   * (graph/channel-maps.ts) instead of being 0..n-1 per tensor. A GHN trained without it (the
   * shipped one) must be decoded without it: densenet_small 66.0% → 23.7% with it, googlenet_mini
   * 14.6% → 43.0% (benchmark, no training): its concat consumers learned the other convention.
   */
  channelProvenance?: boolean;
  /**
   * Width of the latent input (latent.ts): a per-node draw z projected into the node embeddings,
   * so one architecture maps to many parameter sets. 0 or absent: no latent.
   */
  latentDim?: number;
}

export const DEFAULT_GHN_CONFIG: GhnConfig = { hidden: 64, layers: 3, heads: 4, rank: 32, seed: 1 };
