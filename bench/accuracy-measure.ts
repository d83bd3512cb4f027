/**
 * What a user gets from `ghn predict` on one real PyTorch export, measured on Fashion-MNIST:
 * - the written file, no training, in onnxruntime as written (BatchNorm on the file's running statistics);
 * - the same weights with BatchNorm on batch statistics (tfjs executor, test batches of 256), as the
 *   GHN literature reports and as the GHN was trained;
 * - fine-tuning from the prediction and from the original export (PyTorch's default init) with one
 *   recipe, test accuracy after each requested step count, from one run per start.
 * Every input is normalized as the file's metadata says (`ghn.input_normalization`).
 */
import { finetuneModel, type FinetuneReport } from '../src/api/finetune.js';
import { predict, type PredictOptions, type PredictReport } from '../src/api/predict.js';
import { FASHION_MNIST_NORMALIZATION, loadFashionMnist, readNormalization, type Dataset, type Normalization, type Split } from '../src/data/index.js';
import { GraphExecutor } from '../src/engine/executor.js';
import { decodeModel, readModelFile } from '../src/onnx/index.js';
import { evaluateWithExecutor, evaluateWithOrt } from '../src/fine-tuning/evaluate.js';
import type { FinetuneProgress, HeadRefitOptions } from '../src/fine-tuning/finetune.js';
import type { OptimizerKind } from '../src/fine-tuning/optimizers.js';

/** The fine-tuning recipe, the same for both starts (AdamW, constant lr; finetune's BN re-estimation). */
export const FINETUNE_RECIPE = { batch: 64, lr: 1e-3, optimizer: 'adamw', seed: 0 } as const;
/** optimizer 'auto': each start gets what `ghn finetune` picks for it (src/fine-tuning/start-recipe.ts). */
export type FinetuneRecipe = { batch: number; lr: number | 'auto'; optimizer: OptimizerKind | 'auto'; seed: number; headRefit?: HeadRefitOptions };
/** Images per batch when BatchNorm runs on batch statistics. */
export const BATCH_STAT_BATCH = 256;

/** Fashion-MNIST splits, loaded once per normalization. */
export class FashionMnistSets {
  private readonly cache = new Map<string, Dataset>();

  constructor(private readonly dir: string | undefined, private readonly testLimit: number | undefined) {}

  get(split: Split, normalization: Normalization): Dataset {
    const key = `${split} ${JSON.stringify(normalization)}`;
    let data = this.cache.get(key);
    if (!data) {
      data = loadFashionMnist({ dir: this.dir, split, normalization, limit: split === 'test' ? this.testLimit : undefined });
      this.cache.set(key, data);
    }
    return data;
  }
}

/** The normalization a file records, or the one its absence means (Fashion-MNIST's training statistics). */
function normalizationOf(onnx: string | Uint8Array): Normalization {
  const model = typeof onnx === 'string' ? readModelFile(onnx) : decodeModel(onnx);
  return readNormalization(model.proto) ?? FASHION_MNIST_NORMALIZATION;
}

export interface NoTrainingResult {
  /** onnxruntime on the written file: BatchNorm on its running statistics. */
  ortAsWritten: number;
  /** BatchNorm on the statistics of each test batch; equals ortAsWritten for a model without BatchNorm. */
  batchStatBn: number;
  hasBatchNorm: boolean;
  /** The original export (PyTorch's default init) in onnxruntime, for reference. */
  defaultInitOrt: number;
  normalization: Normalization;
  testImages: number;
  ms: { predict: number; ort: number; batchStat: number; defaultInit: number; total: number };
}

export interface Prediction {
  onnx: Uint8Array;
  report: PredictReport;
}

/** `predict()` with its default options, whatever they are: the benchmark measures what users get. */
/** `predict()` with its default options (`fitHead: false` only for the GHN-alone comparison). */
export async function predictDefault(file: string, options: Pick<PredictOptions, 'fitHead' | 'mix'> = {}): Promise<{ prediction: Prediction; ms: number }> {
  const t0 = performance.now();
  const prediction = await predict(file, options);
  return { prediction, ms: performance.now() - t0 };
}

export async function measureNoTraining(file: string, prediction: Prediction, predictMs: number, sets: FashionMnistSets): Promise<NoTrainingResult> {
  const normalization = normalizationOf(prediction.onnx);
  const test = sets.get('test', normalization);
  let t0 = performance.now();
  const ortAsWritten = (await evaluateWithOrt(prediction.onnx, test)).accuracy;
  const ortMs = performance.now() - t0;

  t0 = performance.now();
  const executor = new GraphExecutor(decodeModel(prediction.onnx));
  const hasBatchNorm = executor.batchNorms.length > 0;
  let batchStatBn = ortAsWritten;
  try {
    if (hasBatchNorm) batchStatBn = (await evaluateWithExecutor(executor, test, { batch: BATCH_STAT_BATCH, batchNorm: 'batch' })).accuracy;
  } finally {
    executor.dispose();
  }
  const batchStatMs = performance.now() - t0;

  t0 = performance.now();
  const defaultInitOrt = (await evaluateWithOrt(file, sets.get('test', normalizationOf(file)))).accuracy;
  const defaultInitMs = performance.now() - t0;
  return {
    ortAsWritten, batchStatBn, hasBatchNorm, defaultInitOrt, normalization, testImages: test.count,
    ms: { predict: predictMs, ort: ortMs, batchStat: batchStatMs, defaultInit: defaultInitMs, total: predictMs + ortMs + batchStatMs + defaultInitMs },
  };
}

export interface FinetuneRun {
  /** Test accuracy (tfjs executor, BatchNorm statistics re-estimated) after each requested step count. */
  atSteps: Record<number, number>;
  /** With a head refit: the same checkpoints with the head as trained (the run without the refit). */
  trainedHeadAtSteps?: Record<number, number>;
  /** onnxruntime on the file written after the last step. */
  finalOrt?: number;
  msPerStep: number;
  finalLoss: number;
  wallMs: number;
}

function finetuneRun(report: FinetuneReport, wallMs: number): FinetuneRun {
  return {
    atSteps: Object.fromEntries(report.checkpoints.map((c) => [c.step, c.testAccuracy])),
    ...(report.checkpoints.some((c) => c.trainedHeadAccuracy !== undefined)
      ? { trainedHeadAtSteps: Object.fromEntries(report.checkpoints.map((c) => [c.step, c.trainedHeadAccuracy!])) } : {}),
    finalOrt: report.ortAccuracy, msPerStep: report.msPerStep, finalLoss: report.finalLoss, wallMs,
  };
}

/** One fine-tuning run to the largest of `steps`, evaluated at each of them. */
export async function measureFinetuning(
  source: string | Uint8Array, steps: number[], sets: FashionMnistSets, onProgress?: (p: FinetuneProgress) => void,
  recipe: FinetuneRecipe = FINETUNE_RECIPE,
): Promise<FinetuneRun> {
  const normalization = normalizationOf(source);
  const t0 = performance.now();
  const { report } = await finetuneModel(source, {
    train: sets.get('train', normalization), test: sets.get('test', normalization),
    steps: Math.max(...steps), evaluateAt: steps, ...recipe, onProgress,
  });
  return finetuneRun(report, performance.now() - t0);
}
