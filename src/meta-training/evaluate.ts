/**
 * Evaluation of a GHN on the test split of architectures (never seen in training):
 * - no training: accuracy of predicted parameters on the test images, BatchNorm on batch
 *   statistics, against the PyTorch-style default init the sampler writes into each ONNX;
 * - fine-tuning (AdamW lr 1e-3, batch 64, src/fine-tuning/finetune.ts): k steps from predicted parameters
 *   against k and K steps from the default init (accuracy with running-statistics BN, as exported).
 * The result is plain JSON, ready for a table.
 */
import * as tf from '../engine/tfjs-core.js';
import { imageSize, type Dataset } from '../data/dataset.js';
import { GraphExecutor } from '../engine/executor.js';
import { buildGraph } from '../graph/build.js';
import { decodeModel } from '../onnx/read.js';
import { replaceTensorData } from '../onnx/tensor.js';
import type { OnnxModel } from '../onnx/types.js';
import { encodeModel } from '../onnx/write.js';
import { architectureSeed, sampleArchitecture } from '../space/sample.js';
import { finetune } from '../fine-tuning/finetune.js';
import { countCorrect } from '../fine-tuning/loss.js';
import { untieSharedInitializers } from '../fine-tuning/untie.js';
import { encodeGraph } from '../ghn/encoding.js';
import type { GhnModel } from '../ghn/model.js';
import { predictParameters } from '../ghn/predict-params.js';

export interface EvaluateGhnOptions {
  /** Test images. */
  data: Dataset;
  /** Images fine-tuning trains on (required when finetuneArchs > 0). */
  trainData?: Dataset;
  /** Test-split architectures evaluated without training. Default 50. */
  archs?: number;
  /** Test images per architecture (no-training accuracy). Default 2000. */
  images?: number;
  /** BatchNorm batch size for no-training accuracy. Default 500. */
  batch?: number;
  /** The first N of those architectures are also fine-tuned. Default 10. */
  finetuneArchs?: number;
  /** Steps from predicted parameters. Default 25. */
  predictedSteps?: number;
  /** Steps from the default init. Default 100. */
  defaultSteps?: number;
  /** Test images for post-fine-tuning accuracy. Default 2000. */
  finetuneEvalImages?: number;
  spaceSeed?: number;
  onProgress?: (message: string) => void;
}

export interface ArchitectureResult {
  id: string;
  family: string;
  params: number;
  predicted: number;
  defaultInit: number;
  finetune?: { predicted: number; defaultSameSteps: number; defaultMoreSteps: number };
}

export interface FamilySummary {
  archs: number;
  predicted: number;
  defaultInit: number;
}

export interface GhnEvaluation {
  split: 'test';
  archs: number;
  images: number;
  meanPredicted: number;
  meanDefault: number;
  perFamily: Record<string, FamilySummary>;
  finetune?: { archs: number; predictedSteps: number; defaultSteps: number; predicted: number; defaultSameSteps: number; defaultMoreSteps: number };
  results: ArchitectureResult[];
  /** Test architectures the importer or executor could not run, with the reason. */
  skipped: Array<{ id: string; reason: string }>;
  msPerPrediction: number;
}

const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

function subset(data: Dataset, count: number): Dataset {
  const n = Math.min(count, data.count);
  return { ...data, count: n, images: data.images.subarray(0, n * imageSize(data)), labels: data.labels.subarray(0, n) };
}

/** Accuracy with BatchNorm on the statistics of each `batch`-image chunk. */
function batchStatsAccuracy(executor: GraphExecutor, data: Dataset, batch: number, params?: ReadonlyMap<string, tf.Tensor>): number {
  let correct = 0;
  const size = imageSize(data);
  for (let start = 0; start < data.count; start += batch) {
    const n = Math.min(batch, data.count - start);
    const scores = tf.tidy(() => {
      const x = tf.tensor(data.images.subarray(start * size, (start + n) * size), [n, ...data.shape]);
      return executor.run(x, { params, training: true }).outputs[0]!.dataSync() as Float32Array;
    });
    correct += countCorrect(scores, scores.length / n, data.labels, start);
  }
  return correct / Math.max(1, data.count);
}

/** A copy of `model` with the predicted values written into its initializers. */
function withParameters(model: OnnxModel, byInitializer: Map<string, Float32Array>): OnnxModel {
  const copy = decodeModel(encodeModel(model));
  for (const init of copy.proto.graph?.initializer ?? []) {
    const value = byInitializer.get(init.name ?? '');
    if (value) replaceTensorData(init, value);
  }
  return copy;
}

export async function evaluateGhn(ghn: GhnModel, options: EvaluateGhnOptions): Promise<GhnEvaluation> {
  const archCount = options.archs ?? 50;
  const data = subset(options.data, options.images ?? 2000);
  const batch = options.batch ?? 500;
  const finetuneArchs = options.finetuneArchs ?? 10;
  const predictedSteps = options.predictedSteps ?? 25;
  const defaultSteps = options.defaultSteps ?? 100;
  const ftEval = subset(options.data, options.finetuneEvalImages ?? 2000);
  const results: ArchitectureResult[] = [];
  const predictionMs: number[] = [];
  const skipped: Array<{ id: string; reason: string }> = [];

  for (let i = 0; results.length < archCount && i < archCount * 3; i++) {
    // Test architectures of the space generated for the data's input shape and class count.
    const arch = sampleArchitecture(architectureSeed('test', i, options.spaceSeed ?? 0), { input: [...options.data.shape], classes: options.data.classes });
    const model: OnnxModel = { proto: arch.model };
    untieSharedInitializers(model);
    let predicted: number, defaultInit: number;
    let byInitializer: Map<string, Float32Array>;
    try {
      const enc = encodeGraph(buildGraph(model));
      const t0 = performance.now();
      const bySlot = predictParameters(ghn, enc);
      predictionMs.push(performance.now() - t0);
      byInitializer = new Map(enc.slots.map((s) => [s.initializer, bySlot.get(s.id)!]));
      const executor = new GraphExecutor(model);
      try {
        const params = new Map([...byInitializer].map(([name, v]) => [name, tf.tensor(v, executor.initializer(name)!.shape)]));
        predicted = batchStatsAccuracy(executor, data, batch, params);
        tf.dispose([...params.values()]);
        defaultInit = batchStatsAccuracy(executor, data, batch);
      } finally {
        executor.dispose();
      }
    } catch (e) {
      // Counted, not hidden: the architecture is reported as skipped with the reason.
      skipped.push({ id: arch.id, reason: (e as Error).message });
      options.onProgress?.(`${arch.id}: skipped (${(e as Error).message})`);
      continue;
    }
    const result: ArchitectureResult = { id: arch.id, family: arch.family, params: arch.params, predicted, defaultInit };
    if (results.length < finetuneArchs && options.trainData) {
      const common = { data: options.trainData, evalData: ftEval, lr: 1e-3, batch: 64, seed: i };
      const fromPredicted = await finetune(withParameters(model, byInitializer), { ...common, steps: predictedSteps });
      const defaultSame = await finetune(model, { ...common, steps: predictedSteps });
      const defaultMore = await finetune(model, { ...common, steps: defaultSteps });
      result.finetune = {
        predicted: fromPredicted.testAccuracy ?? 0,
        defaultSameSteps: defaultSame.testAccuracy ?? 0,
        defaultMoreSteps: defaultMore.testAccuracy ?? 0,
      };
    }
    results.push(result);
    options.onProgress?.(`${arch.id}: predicted ${(predicted * 100).toFixed(1)}%, default ${(defaultInit * 100).toFixed(1)}%` +
      (result.finetune ? `; fine-tuned ${predictedSteps} from predicted ${(result.finetune.predicted * 100).toFixed(1)}%, default ${predictedSteps}/${defaultSteps}: ${(result.finetune.defaultSameSteps * 100).toFixed(1)}%/${(result.finetune.defaultMoreSteps * 100).toFixed(1)}%` : ''));
  }

  const perFamily: Record<string, FamilySummary> = {};
  for (const family of new Set(results.map((r) => r.family))) {
    const rs = results.filter((r) => r.family === family);
    perFamily[family] = { archs: rs.length, predicted: mean(rs.map((r) => r.predicted)), defaultInit: mean(rs.map((r) => r.defaultInit)) };
  }
  const tuned = results.filter((r) => r.finetune);
  return {
    split: 'test',
    archs: results.length,
    images: data.count,
    meanPredicted: mean(results.map((r) => r.predicted)),
    meanDefault: mean(results.map((r) => r.defaultInit)),
    perFamily,
    finetune: tuned.length ? {
      archs: tuned.length, predictedSteps, defaultSteps,
      predicted: mean(tuned.map((r) => r.finetune!.predicted)),
      defaultSameSteps: mean(tuned.map((r) => r.finetune!.defaultSameSteps)),
      defaultMoreSteps: mean(tuned.map((r) => r.finetune!.defaultMoreSteps)),
    } : undefined,
    results,
    skipped,
    msPerPrediction: mean(predictionMs),
  };
}
