/** Datasets as commands and the library name them: by name, or a folder (src/data/sources.ts). */
import { DATASET_NAMES, loadSource, resolveDataset, type Dataset, type Normalization, type Split } from '../data/index.js';

export { DATASET_NAMES };
export type DatasetName = (typeof DATASET_NAMES)[number];

export function isDatasetName(name: string): name is DatasetName {
  return (DATASET_NAMES as readonly string[]).includes(name);
}

/**
 * A split of a dataset: `name` is fashion-mnist, cifar10 (with `dir`), or a folder of IDX files,
 * CIFAR-10 binary batches or images. `normalization` overrides the dataset's own (give the train
 * split's to a test split loaded on its own, or it is computed again).
 */
export function loadDataset(name: string, split: Split, options: { dir?: string; limit?: number; normalization?: Normalization } = {}): Dataset {
  return loadSource(resolveDataset(name, options.dir), split, { limit: options.limit, normalization: options.normalization });
}
