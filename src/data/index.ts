export * from './dataset.js';
export * from './normalization.js';
export * from './idx.js';
export * from './fashion-mnist.js';
export * from './cifar10.js';
export * from './batches.js';
export * from './image-folder.js';
export * from './sources.js';
