/** What `--data` takes, apart from the loaders so that the command line can show it without loading them. */
export const DATASET_NAMES = ['fashion-mnist', 'cifar10'] as const;
export const DATA_HELP = 'fashion-mnist, cifar10 (with --data-dir), or a folder: MNIST-style IDX files, CIFAR-10 binary batches, or images in one subfolder per class';
