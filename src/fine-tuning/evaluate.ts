/**
 * Classification accuracy of an ONNX model on a dataset, computed two independent ways: with the
 * tfjs executor (BatchNorm on running statistics, or on each batch's statistics) and with
 * onnxruntime-node (inference).
 */
import * as tf from '../engine/tfjs-core.js';
import * as ort from 'onnxruntime-node';
import { imageSize, type Dataset } from '../data/dataset.js';
import { GraphExecutor } from '../engine/executor.js';
import { GhnError } from '../errors.js';
import { encodeModel } from '../onnx/write.js';
import type { OnnxModel } from '../onnx/types.js';
import { countCorrect } from './loss.js';

export interface EvaluateOptions {
  /** Images per forward pass (default 256). */
  batch?: number;
  /** Evaluate only the first `limit` examples. */
  limit?: number;
}

export interface Accuracy {
  accuracy: number;
  correct: number;
  count: number;
}

/** Fraction correct over the first `limit` examples, running `forward` on slices of `batch`. */
async function accuracyOver(data: Dataset, options: EvaluateOptions, forward: (x: Float32Array, n: number) => Promise<Float32Array>): Promise<Accuracy> {
  const count = Math.min(data.count, options.limit ?? data.count);
  const batch = options.batch ?? 256;
  const size = imageSize(data);
  let correct = 0;
  for (let start = 0; start < count; start += batch) {
    const n = Math.min(batch, count - start);
    const scores = await forward(data.images.subarray(start * size, (start + n) * size), n);
    correct += countCorrect(scores, scores.length / n, data.labels, start);
  }
  return { accuracy: count ? correct / count : 0, correct, count };
}

export interface ExecutorEvaluateOptions extends EvaluateOptions {
  /** Initializer overrides (e.g. trained weights or re-estimated running statistics). */
  params?: ReadonlyMap<string, tf.Tensor>;
  /**
   * BatchNorm on the file's running statistics ('running', default: what a deployed model does) or
   * on the statistics of each evaluated batch of `batch` images ('batch': how the GHN literature
   * evaluates predicted parameters, and how a GHN is trained).
   */
  batchNorm?: 'running' | 'batch';
}

/** Accuracy with the tfjs executor; `params` override initializers (e.g. trained weights). */
export async function evaluateWithExecutor(
  model: OnnxModel | GraphExecutor, data: Dataset, options: ExecutorEvaluateOptions = {},
): Promise<Accuracy> {
  const executor = model instanceof GraphExecutor ? model : new GraphExecutor(model);
  const training = options.batchNorm === 'batch';
  try {
    return await accuracyOver(data, options, async (x, n) => {
      const input = tf.tensor(x, [n, ...data.shape]);
      const { outputs, bnStats } = executor.run(input, { params: options.params, training });
      const scores = outputs[0].dataSync() as Float32Array;
      tf.dispose([input, ...outputs, ...[...bnStats.values()].flatMap((s) => [s.mean, s.variance])]);
      return scores;
    });
  } finally {
    if (!(model instanceof GraphExecutor)) executor.dispose();
  }
}

/** Accuracy with onnxruntime-node on an ONNX file path, encoded bytes, or an in-memory model. */
export async function evaluateWithOrt(model: string | Uint8Array | OnnxModel, data: Dataset, options: EvaluateOptions = {}): Promise<Accuracy> {
  const source = typeof model === 'string' || model instanceof Uint8Array ? model : encodeModel(model);
  let session: ort.InferenceSession;
  try {
    session = typeof source === 'string' ? await ort.InferenceSession.create(source) : await ort.InferenceSession.create(source);
  } catch (err) {
    throw new GhnError('bad-input', `onnxruntime cannot load the model: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  try {
    const input = session.inputNames[0];
    const output = session.outputNames[0];
    return await accuracyOver(data, options, async (x, n) => {
      try {
        const result = await session.run({ [input]: new ort.Tensor('float32', x, [n, ...data.shape]) });
        return result[output].data as Float32Array;
      } catch (err) {
        throw new GhnError('bad-input', `onnxruntime cannot run the model on ${data.name} batches of [${n}, ${data.shape.join(', ')}]: ${(err as Error).message.split('\n')[0]}`, { cause: err });
      }
    });
  } finally {
    await session.release();
  }
}
