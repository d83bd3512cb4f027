/**
 * Meta-training and evaluation of a GHN on Fashion-MNIST, as the `ghn train` / `ghn eval` commands
 * and the training script run them: the data split and file layout live here, once.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadFashionMnist, type Dataset } from '../data/index.js';
import { initBackend } from '../engine/backend.js';
import { evaluateGhn, type EvaluateGhnOptions, type GhnEvaluation } from '../meta-training/evaluate.js';
import { GhnError } from '../errors.js';
import { replayTraining } from '../meta-training/replay.js';
import { decodeGhn, loadGhn, saveGhn } from '../ghn/serialize.js';
import { trainGhn, type TrainProgress, type TrainRecipe } from '../meta-training/train.js';
import { trainingLogPath } from '../meta-training/training-log.js';

/** Training images held out of the train set for validation during meta-training. */
export const VALIDATION_IMAGES = 5000;

/** Splits Fashion-MNIST's train set into meta-training images and held-out validation images. */
export function trainValidationSplit(full: Dataset, held = VALIDATION_IMAGES): { train: Dataset; val: Dataset } {
  const size = full.shape.reduce((a, b) => a * b, 1);
  const cut = full.count - held;
  return {
    train: { ...full, count: cut, images: full.images.subarray(0, cut * size), labels: full.labels.subarray(0, cut) },
    val: { ...full, count: held, images: full.images.subarray(cut * size), labels: full.labels.subarray(cut) },
  };
}

export interface TrainCommandOptions {
  /** Output prefix: writes <out>.ghn, <out>.log.jsonl.gz (gzip-compressed JSON lines), <out>.metrics.json. */
  out: string;
  recipe?: Partial<TrainRecipe>;
  /**
   * Train the run recorded in this recipe (from recordedRecipe: its base schedule and every
   * extension, segment by segment) instead of `recipe`; resumable like --resume.
   */
  replay?: TrainRecipe;
  minutes?: number;
  resume?: boolean;
  /** Processes sharing each meta-step (see TrainGhnOptions.workers); default 1. */
  workers?: number;
  dataDir?: string;
  /** Test-split architectures evaluated after training (0: no evaluation). */
  evalArchs?: number;
  onProgress?: (p: TrainProgress) => void;
  onEvalProgress?: (message: string) => void;
}

export async function trainAndSave(options: TrainCommandOptions) {
  await initBackend();
  const { train, val } = trainValidationSplit(loadFashionMnist({ split: 'train', dir: options.dataDir }));
  const run = {
    data: train, valData: val, valEvery: 100, checkpointPath: `${options.out}.ghn`, checkpointEvery: 50,
    logPath: trainingLogPath(options.out), maxMinutes: options.minutes, onProgress: options.onProgress, workers: options.workers,
  };
  const result = options.replay
    ? await replayTraining(options.replay, run)
    : await trainGhn({ ...run, recipe: options.recipe, resume: options.resume });
  const training = { stepsDone: result.stepsDone, stepsPerMin: result.stepsPerMin, lastVal: result.lastVal };
  let evaluation: GhnEvaluation | undefined;
  if (options.evalArchs) {
    evaluation = await evaluateGhn(result.model, {
      data: loadFashionMnist({ split: 'test', dir: options.dataDir }), trainData: train, archs: options.evalArchs,
      onProgress: options.onEvalProgress,
    });
    writeFileSync(`${options.out}.metrics.json`, JSON.stringify({ training, ...evaluation }, null, 2));
  }
  const hash = saveGhn(`${options.out}.ghn`, result.model, {
    recipe: { ...result.recipe, stepsDone: result.stepsDone }, metrics: { training, ...evaluation },
  });
  return { hash, training, evaluation };
}

/** The training recipe recorded in a .ghn file's header (what `ghn train --replay` trains again). */
export function recordedRecipe(file: string): TrainRecipe {
  if (!existsSync(file)) throw new GhnError('not-found', `no GHN at ${file}`);
  const { header } = decodeGhn(new Uint8Array(readFileSync(file)), file);
  const recipe = header.recipe as TrainRecipe | undefined;
  if (!recipe || typeof recipe.steps !== 'number' || typeof recipe.lr !== 'number') {
    throw new GhnError('bad-input', `${file}: no training recipe recorded in its header`);
  }
  return recipe;
}

export async function evaluateSavedGhn(file: string, options: Omit<EvaluateGhnOptions, 'data' | 'trainData'> & { dataDir?: string }) {
  await initBackend();
  const { model, hash } = loadGhn(file);
  try {
    const { train } = trainValidationSplit(loadFashionMnist({ split: 'train', dir: options.dataDir }));
    const evaluation = await evaluateGhn(model, { ...options, data: loadFashionMnist({ split: 'test', dir: options.dataDir }), trainData: train });
    return { hash, evaluation };
  } finally {
    model.dispose();
  }
}
