/**
 * Meta-training: every step draws a meta-batch of architectures from a pool of the train split,
 * predicts all their parameters differentiably, runs each on the same batch of images with
 * batch-statistics BatchNorm, averages the cross-entropy and updates the GHN with AdamW (global
 * gradient-norm clipping, linear warm-up then cosine decay).
 *
 * Deterministic for a seed: the architectures and images of step t depend only on (seed, t), so a
 * resumed run continues exactly where the checkpoint left off. A resume asking for more steps than
 * the saved recipe extends the run with a new schedule tail (recipe.tails; see TrainGhnOptions.extend).
 * Logged per step: wall-clock and process CPU seconds, so throughput stays honest when the process
 * is paused (SIGSTOP) for a while. No weight-norm penalty (GHN-3 uses
 * one): predicted weights are standardized to a fixed He norm, so a norm penalty has nothing to act on.
 */
import * as tf from '../engine/tfjs-core.js';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Dataset, DatasetRecord } from '../data/dataset.js';
import { datasetRecord, describeTask, FASHION_MNIST_RECORD } from '../data/sources.js';
import type { TaskShape } from '../space/family.js';
import { correctCount, crossEntropy } from '../fine-tuning/loss.js';
import { ArchitecturePool, TRAINING_POOL_CACHE } from './arch-pool.js';
import { GradientWorkers } from './gradient-workers.js';
import type { DistributedSteps, StepDistributor } from './step-distributor.js';
import { archGradients, drawArchitectures, imageBatch, sumInOrder, type MetaGradients, type MetaObjective } from './meta-batch.js';
import { GhnModel } from '../ghn/model.js';
import { DEFAULT_RECIPE, recipeBase, type ScheduleTail, type TrainRecipe } from './recipe.js';
import { predictInitializerTensors } from '../ghn/predict-params.js';
import { decodeGhn, encodeTensors, loadGhn, saveGhn } from '../ghn/serialize.js';
import { TrainingLog } from './training-log.js';
import { GhnError } from '../errors.js';

export { DEFAULT_RECIPE, type ScheduleTail, type TrainRecipe };

export interface TrainProgress {
  step: number;
  steps: number;
  loss: number;
  acc: number;
  lr: number;
  gradNorm: number;
  stepsPerMin: number;
  elapsedSec: number;
  /** Process CPU seconds (user + system) since the run started: does not advance while the process is stopped (SIGSTOP). */
  cpuSec?: number;
  /** Wall-clock seconds of this step alone (a paused process shows up as one long step). */
  stepSec?: number;
  /** Set on validation steps. */
  val?: ValidationResult;
  /** With a diversity objective: mean Jensen–Shannon divergence between an architecture's two latent samples. */
  disagreement?: number;
}

export interface ValidationResult {
  acc: number;
  loss: number;
  archs: number;
}

export interface TrainGhnOptions {
  recipe?: Partial<TrainRecipe>;
  /** Training images (labels 0..9). */
  data: Dataset;
  /** Held-out images for validation. */
  valData?: Dataset;
  /** What checkpoints record as the training data (default: `data`'s own record). */
  dataset?: DatasetRecord;
  /** Validate on the val split of architectures every N steps (0: never). Default 100. */
  valEvery?: number;
  valArchs?: number;
  valImages?: number;
  /** Where the model and its optimizer state (`<path>.opt`) are checkpointed. */
  checkpointPath?: string;
  checkpointEvery?: number;
  /** Continue from checkpointPath if it exists. */
  resume?: boolean;
  /**
   * On resume, `recipe.steps` beyond the saved step count extends the run: a new schedule tail
   * starts at the saved step (peak `lr`, default the recipe's lr; `warmupSteps`, default 20) and
   * `recipe.metaBatch` / `recipe.images`, when given, apply from there on.
   */
  extend?: { lr?: number; warmupSteps?: number };
  /** Also checkpoint whenever this much wall-clock has passed since the last checkpoint. */
  checkpointMinutes?: number;
  /**
   * JSON lines, one per step (validation results on their step's line): gzip members appended per
   * flush when the path ends in `.gz` (training-log.ts), plain lines otherwise. The run keeps the
   * records up to the step it starts from (0, or the checkpoint's on resume) and appends after them.
   */
  logPath?: string;
  /** Stop (after checkpointing) once this much wall-clock has passed. */
  maxMinutes?: number;
  /**
   * Processes sharing each step's architectures (default 1): this one plus workers − 1 forked
   * children, one core each. Deterministic for a seed and a worker count (see gradient-workers.ts).
   */
  workers?: number;
  /**
   * Computes each step's per-architecture gradients elsewhere instead of `workers` (e.g. workers
   * over Redis, redis-coordinator.ts); called once the run is settled (after any resume).
   */
  distribute?: StepDistributor;
  /** Stop (after checkpointing) after this step, before the schedule's end (replaying a run cut short). */
  stopAtStep?: number;
  onProgress?: (p: TrainProgress) => void;
}

export interface TrainResult {
  model: GhnModel;
  /** The training data's record. */
  dataset: DatasetRecord;
  /**
   * Whether the checkpoints carry it: not when the run continued a GHN without a record (the
   * shipped one), which thus keeps serving every model as it did (api/ghn-compatibility.ts).
   */
  recordsDataset: boolean;
  recipe: TrainRecipe;
  stepsDone: number;
  stepsPerMin: number;
  lastVal?: ValidationResult;
  history: TrainProgress[];
}

/** Linear warm-up, then cosine to 0 at `steps`; from the last tail that has started, that tail's warm-up and cosine. */
export function scheduledLr(r: TrainRecipe, step: number): number {
  const tail = [...(r.tails ?? [])].reverse().find((t) => step >= t.from);
  const [from, lr, warmup] = tail ? [tail.from, tail.lr, tail.warmupSteps] : [0, r.lr, r.warmupSteps];
  const k = step - from;
  if (k < warmup) return (lr * (k + 1)) / warmup;
  const t = Math.min(1, (k - warmup) / Math.max(1, r.steps - from - warmup));
  return 0.5 * lr * (1 + Math.cos(Math.PI * t));
}

/** AdamW with state as named variables, so it can be checkpointed. */
class AdamW {
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();
  constructor(private readonly params: Map<string, tf.Variable>, private readonly wd: number, state?: Map<string, Float32Array>) {
    for (const [name, p] of params) {
      this.m.set(name, tf.variable(state?.has(`m/${name}`) ? tf.tensor(state.get(`m/${name}`)!, p.shape) : tf.zerosLike(p), false));
      this.v.set(name, tf.variable(state?.has(`v/${name}`) ? tf.tensor(state.get(`v/${name}`)!, p.shape) : tf.zerosLike(p), false));
    }
  }

  /** `grads` by the GHN's variable names. */
  apply(grads: ReadonlyMap<string, tf.Tensor>, lr: number, t: number, scale: number): void {
    const [b1, b2, eps] = [0.9, 0.999, 1e-8];
    tf.tidy(() => {
      for (const [name, p] of this.params) {
        const g0 = grads.get(name);
        if (!g0) continue;
        const g = tf.mul(g0, scale);
        const m = this.m.get(name)!, v = this.v.get(name)!;
        m.assign(tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1)));
        v.assign(tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2)));
        const update = tf.div(tf.div(m, 1 - b1 ** t), tf.add(tf.sqrt(tf.div(v, 1 - b2 ** t)), eps));
        // Decoupled decay on matrices only; LN gains, biases and embeddings are not decayed.
        const decay = p.rank >= 2 && !name.startsWith('embed.') && name !== 'slot.role' ? 1 - lr * this.wd : 1;
        p.assign(tf.sub(tf.mul(p, decay), tf.mul(update, lr)));
      }
    });
  }

  state(): Map<string, { shape: number[]; data: Float32Array }> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, t] of this.m) out.set(`m/${name}`, { shape: t.shape, data: t.dataSync() as Float32Array });
    for (const [name, t] of this.v) out.set(`v/${name}`, { shape: t.shape, data: t.dataSync() as Float32Array });
    return out;
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
}

/** Mean accuracy and loss of predicted parameters (no training) on `count` val-split architectures. */
export function validate(ghn: GhnModel, pool: ArchitecturePool, data: Dataset, count: number, images: number): ValidationResult {
  let acc = 0, loss = 0, archs = 0;
  const { x, y } = imageBatch(data, Math.min(images, data.count), 0x7a1, 0);
  for (let i = 0; archs < count && i < pool.size; i++) {
    const arch = pool.get(i);
    if (!arch) continue;
    tf.tidy(() => {
      const params = predictInitializerTensors(ghn, arch.encoding);
      const logits = arch.executor.run(x, { params, training: true }).outputs[0]!;
      loss += crossEntropy(logits, y).dataSync()[0]!;
      acc += correctCount(logits, y) / y.shape[0]!;
    });
    archs++;
  }
  tf.dispose([x, y]);
  return { acc: acc / Math.max(1, archs), loss: loss / Math.max(1, archs), archs };
}

function saveCheckpoint(path: string, ghn: GhnModel, opt: AdamW, recipe: TrainRecipe, step: number, extra: object, dataset: DatasetRecord | undefined): void {
  saveGhn(path, ghn, { recipe: { ...recipe, stepsDone: step }, metrics: extra as Record<string, unknown>, ...(dataset ? { dataset } : {}) });
  const bytes = encodeTensors(ghn.config, opt.state(), { recipe: { kind: 'adamw-state', step } });
  writeFileSync(`${path}.opt.tmp`, bytes);
  renameSync(`${path}.opt.tmp`, `${path}.opt`);
}

/**
 * A step's architectures and summed gradient, computed in this process. An architecture that fails
 * (tfjs cannot run or differentiate it) is marked unusable and the step drawn again: the draw then
 * skips it, exactly as it would had a smoke test dropped it when it was built.
 */
function serialStep(ghn: GhnModel, pool: ArchitecturePool, recipe: TrainRecipe, step: number, x: tf.Tensor, y: tf.Tensor): { indices: number[]; gradients: MetaGradients } {
  for (;;) {
    const indices = drawArchitectures(pool, recipe.metaBatch, recipe.seed, step);
    const parts: MetaGradients[] = [];
    try {
      indices.forEach((index, position) => parts.push(archGradients(ghn, pool.get(index)!, x, y, indices.length, metaObjective(recipe, step, position))));
      return { indices, gradients: sumInOrder(parts) };
    } catch (e) {
      for (const part of parts) tf.dispose([...part.grads.values()]);
      const failed = indices[parts.length]!;
      console.warn(`architecture ${pool.get(failed)?.id ?? failed} dropped: ${(e as Error).message}`);
      pool.markUnusable(failed);
    }
  }
}

/** The objective of a step's share at `position` beyond plain cross-entropy, from the recipe. */
function metaObjective(recipe: TrainRecipe, step: number, position: number): MetaObjective {
  return {
    ...(recipe.diversity ? { diversity: { weight: recipe.diversity, seed: recipe.seed, step, position } } : {}),
    ...(recipe.trainVariables?.length ? { variables: recipe.trainVariables } : {}),
  };
}

export async function trainGhn(options: TrainGhnOptions): Promise<TrainResult> {
  let recipe: TrainRecipe = { ...DEFAULT_RECIPE, ...options.recipe, ghn: { ...DEFAULT_RECIPE.ghn, ...options.recipe?.ghn } };
  let ghn: GhnModel;
  let startStep = 0;
  let optState: Map<string, Float32Array> | undefined;
  const ckpt = options.checkpointPath;
  // The space is generated for the data's input shape and class count.
  const task: TaskShape = { input: options.data.shape, classes: options.data.classes };
  const dataset = options.dataset ?? datasetRecord(options.data);
  let recordsDataset = true;
  if (options.resume && ckpt && existsSync(ckpt) && existsSync(`${ckpt}.opt`)) {
    const loaded = loadGhn(ckpt);
    recordsDataset = loaded.header.dataset !== undefined;
    // Continuing on other data would make a GHN whose record describes neither.
    const was = loaded.header.dataset ?? FASHION_MNIST_RECORD;
    if (was.shape.join() !== dataset.shape.join() || was.classes !== dataset.classes) {
      loaded.model.dispose();
      throw new GhnError('usage', `${ckpt} was trained on ${describeTask(was.shape, was.classes)} (${was.name}); the data given are ${describeTask(dataset.shape, dataset.classes)} (${dataset.name})`);
    }
    ghn = loaded.model;
    const saved = loaded.header.recipe as (TrainRecipe & { stepsDone: number }) | undefined;
    if (saved) {
      startStep = saved.stepsDone;
      const { stepsDone: _done, ...savedRecipe } = saved;
      recipe = { ...savedRecipe, ghn: loaded.header.config };
      const wanted = options.recipe?.steps;
      if (wanted !== undefined && wanted > recipe.steps) {
        // A finished schedule (lr ≈ 0) restarts with a warm-up to the recipe's peak lr; an unfinished
        // one continues from its current lr. Either way a cosine to 0 at the new step count.
        const finished = startStep >= recipe.steps;
        const metaBatch = options.recipe?.metaBatch ?? recipe.metaBatch;
        const images = options.recipe?.images ?? recipe.images;
        const poolSize = options.recipe?.poolSize ?? recipe.poolSize;
        const diversity = options.recipe?.diversity ?? recipe.diversity;
        const trainVariables = options.recipe?.trainVariables ?? recipe.trainVariables;
        const objective = { ...(diversity ? { diversity } : {}), ...(trainVariables?.length ? { trainVariables } : {}) };
        const tail: ScheduleTail = {
          from: startStep,
          lr: options.extend?.lr ?? (finished ? recipe.lr : scheduledLr(recipe, startStep)),
          warmupSteps: options.extend?.warmupSteps ?? (finished ? 20 : 0),
          metaBatch, images, poolSize, ...objective,
        };
        const { diversity: _d, trainVariables: _v, ...rest } = recipe;
        recipe = { ...rest, steps: wanted, metaBatch, images, poolSize, ...objective, tails: [...(recipe.tails ?? []), tail], base: recipeBase(recipe) };
      }
    }
    optState = decodeGhn(new Uint8Array(readFileSync(`${ckpt}.opt`))).values;
  } else {
    ghn = new GhnModel(recipe.ghn);
  }
  const opt = new AdamW(ghn.variables, recipe.weightDecay, optState);
  const parallel = (options.workers ?? 1) > 1;
  if ((recipe.diversity || recipe.trainVariables?.length) && (parallel || options.distribute)) {
    throw new GhnError('usage', 'a diversity objective or a subset of trained variables runs in one process (no --workers, no --redis)');
  }
  // Serial steps run each drawn architecture themselves and drop one that fails (serialStep), so
  // their pool skips the build-time smoke test; worker processes draw on their own and keep it.
  const pool = new ArchitecturePool('train', recipe.poolSize, recipe.spaceSeed, TRAINING_POOL_CACHE, parallel, task);
  const valPool = new ArchitecturePool('val', 64, recipe.spaceSeed, Infinity, true, task);
  const valEvery = options.valEvery ?? 100;
  const checkpointEvery = options.checkpointEvery ?? 100;
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  let lastCheckpoint = started;
  const history: TrainProgress[] = [];
  let lastVal: ValidationResult | undefined;
  let step = startStep;
  // Data-parallel: this process and workers − 1 children share each step's architectures.
  const log = options.logPath ? TrainingLog.open(options.logPath, { keepThroughStep: startStep }) : undefined;
  const remote: DistributedSteps | undefined = options.distribute
    ? await options.distribute({ config: ghn.config, recipe, task, data: options.data, startStep })
    : undefined;
  const workers = parallel && !remote
    ? await GradientWorkers.start(options.workers! - 1, { config: ghn.config, poolSize: recipe.poolSize, spaceSeed: recipe.spaceSeed, seed: recipe.seed, data: options.data, task })
    : undefined;

  let finished = false;
  try {
    let stepStarted = performance.now();
    const lastStep = Math.min(recipe.steps, options.stopAtStep ?? Infinity);
    for (; step < lastStep; step++) {
      const { x, y } = imageBatch(options.data, recipe.images, recipe.seed, step);
      let indices: number[];
      let step_: MetaGradients;
      if (remote) {
        // Drawn from the remote side's record of usable architectures: the workers build them.
        ({ indices, gradients: step_ } = await remote.step(ghn, step, recipe.images, () => drawArchitectures(remote.pool, recipe.metaBatch, recipe.seed, step)));
      } else if (workers) {
        indices = drawArchitectures(pool, recipe.metaBatch, recipe.seed, step);
        const divisor = indices.length;
        step_ = await workers.step(ghn, step, recipe.images, indices, (index) => archGradients(ghn, pool.get(index)!, x, y, divisor));
      } else {
        ({ indices, gradients: step_ } = serialStep(ghn, pool, recipe, step, x, y));
      }
      const { loss, correct, grads } = step_;
      const gradNorm = Math.sqrt(tf.tidy(() => tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g)))).dataSync()[0]!));
      const lr = scheduledLr(recipe, step);
      if (Number.isFinite(loss) && Number.isFinite(gradNorm)) {
        opt.apply(grads, lr, step + 1, gradNorm > recipe.clipNorm ? recipe.clipNorm / gradNorm : 1);
      }
      tf.dispose([x, y, ...grads.values()]);

      const now = performance.now();
      const elapsedSec = (now - started) / 1000;
      const cpu = process.cpuUsage(cpuStarted);
      const progress: TrainProgress = {
        step: step + 1, steps: recipe.steps, loss, acc: correct / (indices.length * recipe.images), lr, gradNorm,
        ...(step_.disagreement === undefined ? {} : { disagreement: step_.disagreement / indices.length }),
        stepsPerMin: ((step + 1 - startStep) / elapsedSec) * 60, elapsedSec,
        cpuSec: (cpu.user + cpu.system) / 1e6, stepSec: (now - stepStarted) / 1000,
      };
      if (valEvery > 0 && (step + 1) % valEvery === 0 && options.valData) {
        lastVal = validate(ghn, valPool, options.valData, options.valArchs ?? 16, options.valImages ?? 256);
        progress.val = lastVal;
      }
      history.push(progress);
      log?.append(progress);
      options.onProgress?.(progress);
      const outOfTime = options.maxMinutes !== undefined && elapsedSec / 60 >= options.maxMinutes;
      const dueByTime = options.checkpointMinutes !== undefined && (performance.now() - lastCheckpoint) / 60000 >= options.checkpointMinutes;
      if (ckpt && ((step + 1) % checkpointEvery === 0 || step + 1 === lastStep || outOfTime || dueByTime)) {
        // The log first: an interruption between the two leaves steps the resume drops, not a gap.
        log?.flush();
        saveCheckpoint(ckpt, ghn, opt, recipe, step + 1, { lastVal }, recordsDataset ? dataset : undefined);
        lastCheckpoint = performance.now();
      }
      stepStarted = performance.now();
      if (outOfTime) {
        step++;
        break;
      }
    }
    finished = step >= recipe.steps;
  } finally {
    log?.close();
    workers?.stop();
    await remote?.stop(finished);
    opt.dispose();
    pool.dispose();
    valPool.dispose();
  }
  const elapsed = (performance.now() - started) / 60000;
  return { model: ghn, dataset, recordsDataset, recipe, stepsDone: step, stepsPerMin: (step - startStep) / Math.max(elapsed, 1e-9), lastVal, history };
}
