/**
 * Meta-training and evaluation of a GHN on a dataset (Fashion-MNIST by default), as the `ghn train` /
 * `ghn eval` commands and the training script run them: the data split and file layout live here, once.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  datasetRecord, describeTask, FASHION_MNIST_RECORD, loadSource, loadTrainTest, resolveDataset, type Dataset, type DatasetRecord, type DatasetSource,
} from '../data/index.js';
import { initBackend } from '../engine/backend.js';
import { evaluateGhn, type EvaluateGhnOptions, type GhnEvaluation } from '../meta-training/evaluate.js';
import { GhnError } from '../errors.js';
import { replayTraining } from '../meta-training/replay.js';
import { decodeGhn, loadGhn, saveGhn } from '../ghn/serialize.js';
import { checkGhnFile, checkWritableOutput } from '../util/user-files.js';
import { trainGhn, type TrainProgress, type TrainRecipe } from '../meta-training/train.js';
import { trainingLogPath } from '../meta-training/training-log.js';
import type { StepDistributor } from '../meta-training/step-distributor.js';

/** Training images held out of the train set for validation during meta-training. */
export const VALIDATION_IMAGES = 5000;

/**
 * Splits a train set into meta-training images and held-out validation images: the last
 * VALIDATION_IMAGES (Fashion-MNIST's 55,000 + 5,000), or a tenth of a smaller set.
 */
export function trainValidationSplit(full: Dataset, held = Math.min(VALIDATION_IMAGES, Math.floor(full.count / 10))): { train: Dataset; val: Dataset } {
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
  /** Where each step's gradients are computed instead (e.g. Redis workers: RedisCoordinator.open); see TrainGhnOptions.distribute. */
  distribute?: StepDistributor;
  /** fashion-mnist (default), cifar10, or a folder: IDX files, CIFAR-10 binary batches or images (src/data/sources.ts). */
  data?: string;
  dataDir?: string;
  /** Test-split architectures evaluated after training (0: no evaluation). */
  evalArchs?: number;
  onProgress?: (p: TrainProgress) => void;
  onEvalProgress?: (message: string) => void;
}

export async function trainAndSave(options: TrainCommandOptions) {
  checkOutputPrefix(options.out, Boolean(options.resume || options.replay));
  const source = resolveDataset(options.data ?? 'fashion-mnist', options.dataDir);
  await initBackend();
  const { train: full, test } = loadTrainTest(source, { test: Boolean(options.evalArchs) });
  const { train, val } = trainValidationSplit(full);
  const dataset = datasetRecord(full);
  const run = {
    data: train, valData: val.count > 0 ? val : undefined, dataset, valEvery: 100, checkpointPath: `${options.out}.ghn`, checkpointEvery: 50,
    logPath: trainingLogPath(options.out), maxMinutes: options.minutes, onProgress: options.onProgress, workers: options.workers,
    distribute: options.distribute,
  };
  const result = options.replay
    ? await replayTraining(options.replay, run)
    : await trainGhn({ ...run, recipe: options.recipe, resume: options.resume });
  const training = { stepsDone: result.stepsDone, stepsPerMin: result.stepsPerMin, lastVal: result.lastVal };
  let evaluation: GhnEvaluation | undefined;
  if (options.evalArchs && test) {
    evaluation = await evaluateGhn(result.model, {
      data: test, trainData: train, archs: options.evalArchs,
      onProgress: options.onEvalProgress,
    });
    writeFileSync(`${options.out}.metrics.json`, JSON.stringify({ training, ...evaluation }, null, 2));
  }
  const hash = saveGhn(`${options.out}.ghn`, result.model, {
    recipe: { ...result.recipe, stepsDone: result.stepsDone }, metrics: { training, ...evaluation }, ...(result.recordsDataset ? { dataset } : {}),
  });
  return { hash, training, evaluation, dataset };
}

function checkTask(file: string, recorded: DatasetRecord, data: Dataset): void {
  if (recorded.shape.join() !== data.shape.join() || recorded.classes !== data.classes) {
    throw new GhnError('usage', `${file} was trained on ${describeTask(recorded.shape, recorded.classes)} (${recorded.name}); ${data.name} has ${describeTask(data.shape, data.classes)}`);
  }
}

/** `out` is a prefix (`<out>.ghn`, `<out>.log.jsonl.gz`, …): a folder alone would name hidden files. */
function checkOutputPrefix(out: string, continuing: boolean): void {
  // `runs/` would write runs/.ghn; `runs` (a folder too) writes runs.ghn beside it, which is fine.
  if (out === '' || out.endsWith('/') || out.endsWith(path.sep)) {
    throw new GhnError('usage', `--out ${out}: is a folder; --out is a file prefix (it writes <prefix>.ghn, <prefix>.log.jsonl.gz), e.g. ${path.join(out || '.', 'ghn-mine')}`);
  }
  // A fresh run would overwrite a trained GHN (in a clone, by default, the shipped one) at its first checkpoint.
  if (!continuing && existsSync(`${out}.ghn`)) {
    throw new GhnError('usage', `${out}.ghn exists: pass --resume to continue training it, or another --out (or remove it)`);
  }
  checkWritableOutput(`${out}.ghn`, '--out');
}

/** The training recipe recorded in a .ghn file's header (what `ghn train --replay` trains again). */
export function recordedRecipe(file: string): TrainRecipe {
  checkGhnFile(file);
  const { header } = decodeGhn(new Uint8Array(readFileSync(file)), file);
  const recipe = header.recipe as TrainRecipe | undefined;
  if (!recipe || typeof recipe.steps !== 'number' || typeof recipe.lr !== 'number') {
    throw new GhnError('bad-input', `${file}: no training recipe recorded in its header`);
  }
  return recipe;
}

/**
 * Evaluates a saved GHN on its own dataset's test split (the one recorded in its header; Fashion-MNIST
 * for GHNs without a record), or on `data` (the same task: input shape and classes).
 */
export async function evaluateSavedGhn(file: string, options: Omit<EvaluateGhnOptions, 'data' | 'trainData'> & { data?: string; dataDir?: string }) {
  checkGhnFile(file);
  await initBackend();
  const { model, hash, header } = loadGhn(file);
  try {
    const recorded = header.dataset ?? FASHION_MNIST_RECORD;
    const named = recorded.kind === 'fashion-mnist' || recorded.kind === 'cifar10';
    const source: DatasetSource = options.data !== undefined
      ? resolveDataset(options.data, options.dataDir)
      : options.dataDir !== undefined
        ? resolveDataset(named ? recorded.kind : options.dataDir, options.dataDir)
        : { kind: recorded.kind, path: recorded.path };
    // The GHN's normalization, so the test images are what its predictions were trained for.
    const finetune = (options.finetuneArchs ?? 10) > 0;
    // One image first (identity normalization fits any channel count): another task is refused before anything is read.
    checkTask(file, recorded, loadSource(source, 'test', { limit: 1, normalization: { mean: [0], std: [1], scale: 1 } }));
    const test = loadSource(source, 'test', { normalization: recorded.normalization });
    const train = finetune ? trainValidationSplit(loadSource(source, 'train', { normalization: recorded.normalization })).train : undefined;
    const { data: _d, dataDir: _dd, ...rest } = options;
    const evaluation = await evaluateGhn(model, { ...rest, data: test, trainData: train });
    return { hash, evaluation, dataset: test.name };
  } finally {
    model.dispose();
  }
}
