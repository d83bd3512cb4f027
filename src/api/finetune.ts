/**
 * `finetune`: trains an ONNX model's parameters in tfjs (starting from the values in the file) and
 * returns the trained model as ONNX bytes, with accuracy measured by the executor and by onnxruntime.
 */
import { readNormalization, withNormalization, type Dataset } from '../data/index.js';
import { describeBackend, initBackend } from '../engine/backend.js';
import { buildGraph } from '../graph/index.js';
import { encodeModel } from '../onnx/index.js';
import { evaluateWithOrt } from '../fine-tuning/evaluate.js';
import { finetune as trainModel, type FinetuneCheckpoint, type FinetuneProgress, type HeadRefitOptions } from '../fine-tuning/finetune.js';
import type { HeadFitReport } from '../predict/fit-head.js';

export { DEFAULT_BN_RECALIBRATION_BATCHES } from '../fine-tuning/finetune.js';
import type { OptimizerKind } from '../fine-tuning/optimizers.js';
import { learningRateFor, optimizerForStart, startKind, type StartKind } from '../fine-tuning/start-recipe.js';
import { loadModel, type ModelSource } from './inspect.js';

export interface FinetuneModelOptions {
  train: Dataset;
  test?: Dataset;
  steps: number;
  batch?: number;
  /** 'auto': start-recipe.ts learningRateFor (3e-3 for LAMB from a ghn prediction, else 1e-3). Default 1e-3. */
  lr?: number | 'auto';
  /** 'auto': chosen from the file (start-recipe.ts: LAMB for a ghn prediction, AdamW otherwise). Default 'adamw'. */
  optimizer?: OptimizerKind | 'auto';
  seed?: number;
  /** Batches that re-estimate BatchNorm running statistics after training (0: off). Default 10. */
  bnRecalibrationBatches?: number;
  /** Steps after which to measure test accuracy as well (needs `test`; see FinetuneOptions.evaluateAt). */
  evaluateAt?: number[];
  onProgress?: (p: FinetuneProgress) => void;
  /** Refit the classifier in closed form on the current features (FinetuneOptions.headRefit). */
  headRefit?: HeadRefitOptions;
}

export interface FinetuneReport {
  backend: string;
  steps: number;
  /** The optimizer used, and (with 'auto') the start it was chosen for. */
  optimizer: OptimizerKind;
  lr: number;
  start?: StartKind;
  msPerStep: number;
  finalLoss: number;
  trainedTensors: number;
  /** Test accuracy with the tfjs executor (BatchNorm on running statistics). */
  testAccuracy?: number;
  /** Test accuracy of the written file in onnxruntime-node. */
  ortAccuracy?: number;
  /** Test accuracy (tfjs executor) after each `evaluateAt` step. */
  checkpoints: FinetuneCheckpoint[];
  /** The written model's closed-form head refit, when asked and the model's head has a fitted form. */
  headRefit?: HeadFitReport;
}

export async function finetuneModel(source: ModelSource, options: FinetuneModelOptions): Promise<{ onnx: Uint8Array; report: FinetuneReport }> {
  const backend = await initBackend();
  const model = loadModel(source);
  // Train exactly the parameters the importer found (never constants such as masks or scales).
  const graph = buildGraph(model);
  const trainable = [...new Set([...graph.slots.values()].map((s) => s.initializer))];
  const auto = options.optimizer === 'auto' || options.lr === 'auto';
  const start = auto ? startKind(model) : undefined;
  const optimizer = options.optimizer === 'auto' ? optimizerForStart(start!) : (options.optimizer ?? 'adamw');
  const lr = options.lr === 'auto' ? learningRateFor(optimizer, start!) : (options.lr ?? 1e-3);
  const result = await trainModel(model, {
    data: options.train, evalData: options.test, steps: options.steps, batch: options.batch, lr,
    optimizer, seed: options.seed, trainable,
    bnRecalibrationBatches: options.bnRecalibrationBatches, evaluateAt: options.evaluateAt, onProgress: options.onProgress,
    ...(options.headRefit ? { headRefit: options.headRefit } : {}),
  });
  const proto = withNormalization(result.model.proto, readNormalization(model.proto) ?? options.train.normalization);
  const onnx = encodeModel({ ...result.model, proto });
  const ortAccuracy = options.test ? (await evaluateWithOrt(onnx, options.test)).accuracy : undefined;
  return {
    onnx,
    report: {
      backend: describeBackend(backend),
      steps: options.steps,
      optimizer, lr, ...(start ? { start } : {}),
      msPerStep: result.msPerStep,
      finalLoss: result.history.at(-1)?.loss ?? NaN,
      trainedTensors: result.trained.length,
      testAccuracy: result.testAccuracy,
      ortAccuracy,
      checkpoints: result.checkpoints,
      ...(result.headRefit ? { headRefit: result.headRefit } : {}),
    },
  };
}
