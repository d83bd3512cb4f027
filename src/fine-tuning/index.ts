/** Fine-tuning and evaluation of ONNX classifiers through the tfjs executor. */
export { finetune, type FinetuneCheckpoint, type FinetuneOptions, type FinetuneProgress, type FinetuneResult, type FinetuneStep } from './finetune.js';
export { evaluateWithExecutor, evaluateWithOrt, type Accuracy, type EvaluateOptions, type ExecutorEvaluateOptions } from './evaluate.js';
export { createOptimizer, learningRate, type LrSchedule, type Optimizer, type OptimizerConfig, type OptimizerKind } from './optimizers.js';
export { crossEntropy, correctCount, countCorrect } from './loss.js';
export { untieSharedInitializers, type UntieMap } from './untie.js';
