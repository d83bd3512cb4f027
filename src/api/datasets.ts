/** Datasets by name, as commands and the server name them. */
import { loadCifar10, loadFashionMnist, type Dataset, type Split } from '../data/index.js';
import { GhnError } from '../errors.js';

export const DATASET_NAMES = ['fashion-mnist', 'cifar10'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

const LOADERS: Record<DatasetName, (split: Split, dir?: string, limit?: number) => Dataset> = {
  'fashion-mnist': (split, dir, limit) => loadFashionMnist({ split, dir, limit }),
  cifar10: (split, dir, limit) => {
    if (!dir) throw new GhnError('usage', 'cifar10 needs --data-dir (a folder with data_batch_*.bin and test_batch.bin)');
    return loadCifar10({ split, dir, limit });
  },
};

export function isDatasetName(name: string): name is DatasetName {
  return (DATASET_NAMES as readonly string[]).includes(name);
}

export function loadDataset(name: string, split: Split, options: { dir?: string; limit?: number } = {}): Dataset {
  if (!isDatasetName(name)) throw new GhnError('usage', `unknown dataset "${name}" (choose ${DATASET_NAMES.join(' or ')})`);
  return LOADERS[name](split, options.dir, options.limit);
}
