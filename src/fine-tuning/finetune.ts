/**
 * Fine-tunes the parameters of an ONNX classifier on a dataset with the tfjs executor, and returns
 * a copy of the model with the trained weights and updated BatchNorm running statistics written in.
 *
 * Training runs BatchNorm on batch statistics and updates running statistics the way PyTorch does
 * (momentum from the node, 0.9 in ONNX terms = 0.1 in PyTorch's; unbiased batch variance);
 * after the last step the running statistics are re-estimated for the final weights (a few
 * forward passes, bn-recalibration.ts); evaluation and the written model use them. Checkpoints
 * (`evaluateAt`) are evaluated the same way without changing the run. With `headRefit` the
 * classifier is re-solved in closed form on the features of those weights before each evaluation
 * and the write (head-refit.ts).
 */
import * as tf from '../engine/tfjs-core.js';
import { endlessBatches } from '../data/batches.js';
import type { Dataset } from '../data/dataset.js';
import { GraphExecutor, type BatchNormSlots } from '../engine/executor.js';
import { GhnError } from '../errors.js';
import { decodeModel } from '../onnx/read.js';
import { replaceTensorData } from '../onnx/tensor.js';
import type { OnnxModel } from '../onnx/types.js';
import { encodeModel } from '../onnx/write.js';
import { evaluateWithExecutor } from './evaluate.js';
import { correctCount, crossEntropy, softCrossEntropy } from './loss.js';
import { createOptimizer, learningRate, type LrSchedule, type OptimizerConfig, type OptimizerKind } from './optimizers.js';
import { untieSharedInitializers } from './untie.js';
import { recalibrateBatchNorm, unbiasedVarianceFactor, type RecalibratedStats } from './bn-recalibration.js';
import { DEFAULT_BN_RECALIBRATION_BATCHES } from './defaults.js';
import { labeledImages, refitHead } from './head-refit.js';
import type { HeadFitReport } from '../predict/fit-head.js';

export { DEFAULT_BN_RECALIBRATION_BATCHES };
const RECALIBRATION_SEED_OFFSET = 0x5eed;

export interface FinetuneProgress {
  /** Steps done (1-based). */
  step: number;
  steps: number;
  /** Training loss and accuracy of this step's batch. */
  loss: number;
  acc: number;
  lr: number;
  /** Steps per second averaged since the start. */
  stepsPerSec: number;
}

export interface FinetuneOptions {
  data: Dataset;
  steps: number;
  /** Default 64. */
  batch?: number;
  /** Default 1e-3. */
  lr?: number;
  /** Default 'adamw'. */
  optimizer?: OptimizerKind;
  /** Default 'constant'. */
  schedule?: LrSchedule;
  /** Default 1e-2 for AdamW, 0 for SGD. */
  weightDecay?: number;
  /** SGD momentum, default 0.9. */
  momentum?: number;
  /** Batch order. Default 0. */
  seed?: number;
  /**
   * Names of the float initializers to train (names in the given model). Default: every float
   * initializer except BatchNorm running statistics.
   */
  trainable?: string[];
  /**
   * Training batches run forward after the last step to re-estimate BatchNorm running statistics
   * for the final weights (bn-recalibration.ts); 0 keeps the running average of the steps.
   * Default 10.
   */
  bnRecalibrationBatches?: number;
  /** Test set: if given, accuracy after training (executor, running-statistics BN). */
  evalData?: Dataset;
  /**
   * Steps after which to measure test accuracy on evalData too (required then), exactly as the
   * final evaluation does: running statistics re-estimated for that step's weights from the same
   * batches. The run itself is unchanged (weights, optimizer state, running averages and batch
   * order), so the accuracy at step k equals the final accuracy of a k-step run; the time spent is
   * left out of msPerStep. Steps beyond `steps` are ignored.
   */
  evaluateAt?: number[];
  /** Called after every step. */
  onProgress?: (p: FinetuneProgress) => void;
  /**
   * Soft targets instead of the labels (distillation): class probabilities [count, classes] for a
   * batch of `count` images (normalized as the data is), e.g. a teacher ensemble's mean softmax.
   * The loss is then the cross-entropy against them (loss.ts softCrossEntropy); the reported
   * accuracy still counts the labels.
   */
  softTargets?: (images: Float32Array, count: number) => Float32Array | Promise<Float32Array>;
  /**
   * Refit the classifier in closed form on the current features (head-refit.ts: predict's ridge
   * fit, on the first `images` images of `data`) before every evaluation and before the model is
   * written; with `every`, also after every `every` training steps, training going on from the
   * refitted head. Absent: the head is only trained.
   */
  headRefit?: HeadRefitOptions;
}

export interface HeadRefitOptions {
  images: number;
  every?: number;
}

export interface FinetuneStep {
  step: number;
  loss: number;
  acc: number;
  lr: number;
}

export interface FinetuneCheckpoint {
  step: number;
  /** Accuracy on evalData with the weights after `step` steps (the head refitted, with `headRefit`). */
  testAccuracy: number;
  /** With `headRefit`: the same weights with the head as trained, not refitted (what the run alone gives). */
  trainedHeadAccuracy?: number;
}

export interface FinetuneResult {
  /** A copy of the model with trained weights and running statistics. */
  model: OnnxModel;
  history: FinetuneStep[];
  /** Accuracy on evalData, when given. */
  testAccuracy?: number;
  /** One per requested `evaluateAt` step (≤ steps), in step order. */
  checkpoints: FinetuneCheckpoint[];
  /** Mean milliseconds per training step (excluding the first, which builds caches). */
  msPerStep: number;
  /** Initializer names that were trained (in the returned model). */
  trained: string[];
  /** The last closed-form refit of the head (the written model's), when `headRefit` was asked and the model has a fitted form of head. */
  headRefit?: HeadFitReport;
}

/** Decoded copy sharing nothing mutable with `model` (external data still read from its files). */
function copyModel(model: OnnxModel): OnnxModel {
  return decodeModel(encodeModel(model), { baseDir: model.baseDir });
}

/** The dataset's image shape must fit the model's declared input (where its dims are fixed). */
function checkInputShape(model: OnnxModel, data: Dataset): void {
  const graph = model.proto.graph!;
  const inits = new Set((graph.initializer ?? []).map((t) => t.name));
  const input = (graph.input ?? []).find((i) => !inits.has(i.name));
  const dims = input?.type?.tensorType?.shape?.dim;
  if (!dims) return;
  const declared = dims.slice(1).map((d) => (d.dimValue === undefined ? undefined : Number(d.dimValue)));
  const mismatch = declared.length !== data.shape.length || declared.some((d, i) => d !== undefined && d > 0 && d !== data.shape[i]);
  if (mismatch) {
    throw new GhnError('bad-input', `model input ${input!.name} expects images [${declared.map((d) => d ?? '?').join(', ')}], dataset ${data.name} has [${data.shape.join(', ')}]`);
  }
}

function checkOptions(o: FinetuneOptions): void {
  if (!Number.isInteger(o.steps) || o.steps <= 0) throw new GhnError('usage', `steps must be a positive integer, got ${o.steps}`);
  const batch = o.batch ?? 64;
  if (!Number.isInteger(batch) || batch <= 0) throw new GhnError('usage', `batch must be a positive integer, got ${batch}`);
  const at = o.evaluateAt ?? [];
  if (at.some((k) => !Number.isInteger(k) || k <= 0)) throw new GhnError('usage', `evaluateAt must list positive integer steps, got ${at.join(', ')}`);
  if (at.length && !o.evalData) throw new GhnError('usage', 'evaluateAt needs evalData');
  const refit = o.headRefit;
  if (refit && (!Number.isInteger(refit.images) || refit.images < 2)) throw new GhnError('usage', `head refit needs at least 2 images, got ${refit.images}`);
  if (refit?.every !== undefined && (!Number.isInteger(refit.every) || refit.every <= 0)) throw new GhnError('usage', `head refit interval must be a positive integer, got ${refit.every}`);
}

/** Trainable names in the untied model: each requested name maps to all of its copies. */
function resolveTrainable(requested: string[] | undefined, executor: GraphExecutor, copies: Map<string, string[]>): string[] {
  const stats = new Set(executor.batchNorms.flatMap((b) => [b.mean, b.variance]));
  const available = new Set(executor.parameterNames);
  if (!requested) return executor.parameterNames.filter((n) => !stats.has(n));
  const out = new Set<string>();
  for (const name of requested) {
    const names = copies.get(name) ?? [name];
    if (!names.some((n) => available.has(n)) && !copies.has(name)) {
      throw new GhnError('usage', `'${name}' is not a float initializer of the model`);
    }
    for (const n of names) if (available.has(n)) out.add(n);
  }
  return [...out];
}

interface RunningStats {
  slot: BatchNormSlots;
  momentum: number;
  mean: tf.Tensor;
  variance: tf.Tensor;
}

function bnMomentum(model: OnnxModel, nodeLabel: string): number {
  const node = model.proto.graph!.node!.find((n) => (n.name || n.output?.[0]) === nodeLabel);
  const attr = node?.attribute?.find((a) => a.name === 'momentum');
  return attr?.f ?? 0.9;
}

export async function finetune(model: OnnxModel, options: FinetuneOptions): Promise<FinetuneResult> {
  checkOptions(options);
  const { data, steps } = options;
  checkInputShape(model, data);
  if (options.evalData) checkInputShape(model, options.evalData);
  const batch = options.batch ?? 64;
  const config: OptimizerConfig = {
    kind: options.optimizer ?? 'adamw',
    lr: options.lr ?? 1e-3,
    schedule: options.schedule ?? 'constant',
    totalSteps: steps,
    ...(options.weightDecay !== undefined ? { weightDecay: options.weightDecay } : {}),
    ...(options.momentum !== undefined ? { momentum: options.momentum } : {}),
  };
  const optimizer = createOptimizer(config);

  const out = copyModel(model);
  const copies = untieSharedInitializers(out);
  const executor = new GraphExecutor(out);
  const trained = resolveTrainable(options.trainable, executor, copies);
  const variables = new Map(trained.map((name) => [name, tf.variable(executor.initializer(name)!.clone(), true)]));
  const running: RunningStats[] = executor.batchNorms.map((slot) => ({
    slot,
    momentum: bnMomentum(out, slot.node),
    mean: executor.initializer(slot.mean)!.clone(),
    variance: executor.initializer(slot.variance)!.clone(),
  }));
  const inputShape = [batch, ...data.shape];
  const history: FinetuneStep[] = [];
  const batches = endlessBatches(data, { batchSize: batch, seed: options.seed ?? 0 });
  const varList = [...variables.values()];
  const names = [...variables.keys()];
  const recalibration = options.bnRecalibrationBatches ?? DEFAULT_BN_RECALIBRATION_BATCHES;
  /**
   * Running statistics re-estimated for the current weights (new tensors, the caller's), or
   * undefined when there is nothing to re-estimate and the running average stands. Each call
   * starts the same batch stream of its own, so a checkpoint and the end see the same batches and
   * the training batches do not depend on this.
   */
  const reestimatedStats = (): Map<string, RecalibratedStats> | undefined => {
    if (recalibration <= 0 || running.length === 0) return undefined;
    const stream = endlessBatches(data, { batchSize: batch, seed: (options.seed ?? 0) + RECALIBRATION_SEED_OFFSET });
    return recalibrateBatchNorm(executor, variables, stream, recalibration, data.shape);
  };
  /** Current weights, with BatchNorm on `stats` where given (else the running average), written into `out`. */
  const writeCurrent = (stats?: ReadonlyMap<string, RecalibratedStats>) => {
    const inits = new Map((out.proto.graph!.initializer ?? []).map((t) => [t.name ?? '', t]));
    for (const [name, v] of variables) replaceTensorData(inits.get(name)!, v.dataSync() as Float32Array);
    for (const r of running) {
      const s = stats?.get(r.slot.node) ?? r;
      replaceTensorData(inits.get(r.slot.mean)!, s.mean.dataSync() as Float32Array);
      replaceTensorData(inits.get(r.slot.variance)!, s.variance.dataSync() as Float32Array);
    }
  };
  const refitImages = options.headRefit ? labeledImages(data, options.headRefit.images) : undefined;
  let lastRefit: HeadFitReport | undefined;
  /**
   * The head refitted on the current weights and `stats`: its new values as tensors (the
   * caller's), keyed by initializer name; empty without a refit or when the fit was kept out.
   */
  const refittedHead = async (stats?: ReadonlyMap<string, RecalibratedStats>): Promise<Map<string, tf.Tensor>> => {
    if (!refitImages) return new Map();
    writeCurrent(stats);
    const refit = await refitHead(out, refitImages);
    lastRefit = refit?.report;
    return new Map([...(refit?.values ?? [])].map(([name, v]) => [name, tf.tensor(v, executor.initializer(name)!.shape)]));
  };
  /** Test accuracy of the current weights (`head` overriding), BatchNorm on `stats` where given, else the running average. */
  const testAccuracyWith = async (stats?: ReadonlyMap<string, RecalibratedStats>, head?: ReadonlyMap<string, tf.Tensor>): Promise<number> => {
    // Reads the variables, never writes them: the run goes on from exactly these values.
    const params = new Map<string, tf.Tensor>(variables);
    for (const [name, v] of head ?? []) params.set(name, v);
    for (const r of running) {
      const s = stats?.get(r.slot.node) ?? r;
      params.set(r.slot.mean, s.mean);
      params.set(r.slot.variance, s.variance);
    }
    return (await evaluateWithExecutor(executor, options.evalData!, { params })).accuracy;
  };
  const refitEvery = options.headRefit?.every;
  const checkpointSteps = new Set((options.evaluateAt ?? []).filter((k) => k < steps));
  const checkpoints: FinetuneCheckpoint[] = [];
  let started = 0;
  let firstDone = 0;
  let checkpointMs = 0;

  try {
    for (let step = 1; step <= steps; step++) {
      if (step === 1) started = performance.now();
      const b = batches.next().value!;
      const x = tf.tensor(b.x, inputShape);
      const y = tf.tensor1d(b.y, 'int32');
      const soft = options.softTargets ? await softTargetTensor(options.softTargets, b.x, b.count, data.classes) : undefined;
      let stats = new Map<string, { mean: tf.Tensor; variance: tf.Tensor; count: number }>();
      let correct = 0;
      const { value, grads } = tf.variableGrads(() => {
        const r = executor.run(x, { params: variables, training: true });
        stats = r.bnStats;
        for (const s of stats.values()) { tf.keep(s.mean); tf.keep(s.variance); }
        correct = correctCount(r.outputs[0], y);
        return soft ? softCrossEntropy(r.outputs[0], soft) : crossEntropy(r.outputs[0], y);
      }, varList);
      optimizer.step(variables, new Map(names.map((n, i) => [n, grads[varList[i].name]])));
      updateRunningStats(running, stats);
      const loss = value.dataSync()[0];
      tf.dispose([x, y, value, ...Object.values(grads), ...(soft ? [soft] : [])]);
      for (const s of stats.values()) tf.dispose([s.mean, s.variance]);
      if (!Number.isFinite(loss)) throw new GhnError('bad-input', `training diverged at step ${step} (loss ${loss}); try a lower learning rate`);
      if (step === 1) firstDone = performance.now();
      const entry = { step, loss, acc: correct / batch, lr: learningRate(config, step - 1) };
      history.push(entry);
      const elapsed = (performance.now() - started - checkpointMs) / 1000;
      options.onProgress?.({ ...entry, steps, stepsPerSec: step / elapsed });
      if (refitEvery && step % refitEvery === 0 && step < steps) {
        // Part of the run: training goes on from the refitted head (its optimizer state kept).
        const stepStats = reestimatedStats();
        try {
          const head = await refittedHead(stepStats);
          for (const [name, v] of head) { variables.get(name)?.assign(v); v.dispose(); }
        } finally {
          for (const s of stepStats?.values() ?? []) tf.dispose([s.mean, s.variance]);
        }
      }
      if (checkpointSteps.has(step)) {
        const t0 = performance.now();
        const checkpointStats = reestimatedStats();
        let head = new Map<string, tf.Tensor>();
        try {
          head = await refittedHead(checkpointStats);
          checkpoints.push({
            step, testAccuracy: await testAccuracyWith(checkpointStats, head),
            ...(refitImages ? { trainedHeadAccuracy: await testAccuracyWith(checkpointStats) } : {}),
          });
        } finally {
          for (const s of checkpointStats?.values() ?? []) tf.dispose([s.mean, s.variance]);
          tf.dispose([...head.values()]);
        }
        checkpointMs += performance.now() - t0;
      }
    }
    const msPerStep = steps > 1 ? (performance.now() - firstDone - checkpointMs) / (steps - 1) : firstDone - started;
    const fresh = reestimatedStats();
    for (const r of running) {
      const s = fresh?.get(r.slot.node);
      if (!s) continue;
      tf.dispose([r.mean, r.variance]);
      r.mean = s.mean;
      r.variance = s.variance;
    }

    // Write trained weights and running statistics into the copy (and the refitted head, if asked).
    writeCurrent();
    const head = await refittedHead();
    let testAccuracy: number | undefined, trainedHeadAccuracy: number | undefined;
    try {
      testAccuracy = options.evalData ? await testAccuracyWith(undefined, head) : undefined;
      if (refitImages && options.evalData && options.evaluateAt?.includes(steps)) trainedHeadAccuracy = await testAccuracyWith();
    } finally {
      tf.dispose([...head.values()]);
    }
    if (testAccuracy !== undefined && options.evaluateAt?.includes(steps)) {
      checkpoints.push({ step: steps, testAccuracy, ...(trainedHeadAccuracy === undefined ? {} : { trainedHeadAccuracy }) });
    }
    return { model: out, history, testAccuracy, checkpoints, msPerStep, trained, ...(lastRefit ? { headRefit: lastRefit } : {}) };
  } finally {
    optimizer.dispose();
    for (const v of variables.values()) v.dispose();
    for (const r of running) tf.dispose([r.mean, r.variance]);
    executor.dispose();
  }
}

/** The soft targets of one batch as a [count, classes] tensor, checked for their shape. */
async function softTargetTensor(
  targets: NonNullable<FinetuneOptions['softTargets']>, images: Float32Array, count: number, classes: number,
): Promise<tf.Tensor> {
  const q = await targets(images, count);
  if (q.length !== count * classes) throw new GhnError('bad-input', `soft targets: expected ${count}×${classes} probabilities, got ${q.length} values`);
  return tf.tensor2d(q, [count, classes]);
}

/** running ← momentum·running + (1 − momentum)·batch, with the unbiased batch variance. */
function updateRunningStats(running: RunningStats[], stats: Map<string, { mean: tf.Tensor; variance: tf.Tensor; count: number }>): void {
  for (const r of running) {
    const s = stats.get(r.slot.node);
    if (!s) continue;
    const unbias = unbiasedVarianceFactor(s.count);
    const [mean, variance] = tf.tidy(() => [
      tf.add(tf.mul(r.mean, r.momentum), tf.mul(s.mean, 1 - r.momentum)),
      tf.add(tf.mul(r.variance, r.momentum), tf.mul(s.variance, (1 - r.momentum) * unbias)),
    ]);
    tf.dispose([r.mean, r.variance]);
    r.mean = mean;
    r.variance = variance;
  }
}
