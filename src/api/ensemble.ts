/**
 * Ensembles of ONNX classifiers (typically `ghn predict --samples`): each member's and the
 * ensemble's (mean softmax) test accuracy and the members' mean pairwise disagreement, optionally
 * after fine-tuning each member; and `distill`: the ensemble's mean softmax as soft targets for one
 * student trained from a file's parameters.
 *
 * Every member runs in onnxruntime on the test split normalized as its file records
 * (`ghn.input_normalization`, else the dataset's own), as `ghn finetune` and the benchmarks do.
 */
import * as ort from 'onnxruntime-node';
import { readNormalization, withNormalization, type Dataset, type DatasetSource, type Normalization } from '../data/index.js';
import { loadSource } from '../data/sources.js';
import { initBackend } from '../engine/backend.js';
import { GhnError } from '../errors.js';
import { finetune } from '../fine-tuning/finetune.js';
import type { FinetuneProgress, HeadRefitOptions } from '../fine-tuning/finetune.js';
import type { OptimizerKind } from '../fine-tuning/optimizers.js';
import type { HeadFitReport } from '../predict/fit-head.js';
import { learningRateFor, optimizerForStart, startKind } from '../fine-tuning/start-recipe.js';
import { buildGraph } from '../graph/index.js';
import { encodeModel } from '../onnx/index.js';
import { finetuneModel } from './finetune.js';
import { loadModel } from './inspect.js';

/** The project's fine-tuning recipe (bench/accuracy-measure.ts FINETUNE_RECIPE): AdamW, lr 1e-3, batch 64, seed 0. */
export const ENSEMBLE_FINETUNE_RECIPE = { batch: 64, lr: 1e-3, optimizer: 'adamw', seed: 0 } as const;
const EVAL_BATCH = 256;

/** One member as a file path or its bytes, with a name for reports. */
export interface Member {
  name: string;
  model: string | Uint8Array;
}

/** A model's outputs as softmax probabilities over its first output, on the session's batches. */
class ProbabilityModel {
  private constructor(private readonly session: ort.InferenceSession, readonly name: string) {}

  static async open(member: Member): Promise<ProbabilityModel> {
    try {
      const session = typeof member.model === 'string' ? await ort.InferenceSession.create(member.model) : await ort.InferenceSession.create(member.model);
      return new ProbabilityModel(session, member.name);
    } catch (err) {
      throw new GhnError('bad-input', `${member.name}: onnxruntime cannot load the model: ${(err as Error).message.split('\n')[0]}`, { cause: err });
    }
  }

  /** Softmax of the logits of `count` images [count, C, H, W] → [count, classes]. */
  async probabilities(images: Float32Array, count: number, shape: readonly number[], classes: number): Promise<Float32Array> {
    let logits: Float32Array;
    try {
      const out = await this.session.run({ [this.session.inputNames[0]!]: new ort.Tensor('float32', images, [count, ...shape]) });
      logits = out[this.session.outputNames[0]!]!.data as Float32Array;
    } catch (err) {
      throw new GhnError('bad-input', `${this.name}: onnxruntime cannot run the model on batches of [${count}, ${shape.join(', ')}]: ${(err as Error).message.split('\n')[0]}`, { cause: err });
    }
    if (logits.length !== count * classes) {
      throw new GhnError('bad-input', `${this.name}: ${logits.length / count} outputs per image, the dataset has ${classes} classes`);
    }
    return softmaxRows(logits, classes);
  }

  /** Probabilities on every image of `data`, in order. */
  async onDataset(data: Dataset): Promise<Float32Array> {
    const size = data.shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(data.count * data.classes);
    for (let start = 0; start < data.count; start += EVAL_BATCH) {
      const n = Math.min(EVAL_BATCH, data.count - start);
      out.set(await this.probabilities(data.images.subarray(start * size, (start + n) * size), n, data.shape, data.classes), start * data.classes);
    }
    return out;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** Row-wise softmax of [N, classes] logits (max subtracted: exp of large logits overflows). */
export function softmaxRows(logits: Float32Array, classes: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r < logits.length; r += classes) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[r + c]!);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += (out[r + c] = Math.exp(logits[r + c]! - max));
    for (let c = 0; c < classes; c++) out[r + c]! /= sum;
  }
  return out;
}

/** Arg-max per row. */
export function argmaxRows(scores: Float32Array, classes: number): Int32Array {
  const out = new Int32Array(scores.length / classes);
  for (let i = 0; i < out.length; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (scores[i * classes + c]! > scores[i * classes + best]!) best = c;
    out[i] = best;
  }
  return out;
}

/** Mean of the members' probabilities, row by row. */
export function meanProbabilities(members: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(members[0]!.length);
  for (const p of members) for (let i = 0; i < out.length; i++) out[i]! += p[i]! / members.length;
  return out;
}

export interface EnsembleFigures {
  /** Test accuracy of each member, in order. */
  members: number[];
  meanMember: number;
  /** Accuracy of the arg-max of the members' mean softmax. */
  ensemble: number;
  /** Mean over member pairs of the fraction of images whose arg-maxes differ (0 for one member). */
  disagreement: number;
}

/** The figures from each member's probabilities [N, classes] and the labels. */
export function ensembleFigures(probabilities: readonly Float32Array[], labels: ArrayLike<number>, classes: number): EnsembleFigures {
  const n = labels.length;
  const accuracy = (pred: Int32Array) => {
    let correct = 0;
    for (let i = 0; i < n; i++) if (pred[i] === labels[i]) correct++;
    return n ? correct / n : 0;
  };
  const preds = probabilities.map((p) => argmaxRows(p, classes));
  const members = preds.map(accuracy);
  let pairs = 0, disagree = 0;
  for (let a = 0; a < preds.length; a++) {
    for (let b = a + 1; b < preds.length; b++) {
      let d = 0;
      for (let i = 0; i < n; i++) if (preds[a]![i] !== preds[b]![i]) d++;
      disagree += n ? d / n : 0;
      pairs++;
    }
  }
  return {
    members, meanMember: members.reduce((a, b) => a + b, 0) / members.length,
    ensemble: accuracy(argmaxRows(meanProbabilities(probabilities), classes)),
    disagreement: pairs ? disagree / pairs : 0,
  };
}

/** Splits of one dataset, loaded once per normalization (members may record different ones). */
export class DatasetSplits {
  private readonly cache = new Map<string, Dataset>();

  constructor(readonly source: DatasetSource, private readonly testLimit?: number) {}

  get(split: 'train' | 'test', normalization: Normalization | undefined): Dataset {
    const key = `${split} ${JSON.stringify(normalization ?? null)}`;
    let data = this.cache.get(key);
    if (!data) {
      // Without a recorded normalization the test split uses the train split's (the dataset's own).
      const n = normalization ?? (split === 'test' ? this.get('train', undefined).normalization : undefined);
      data = loadSource(this.source, split, { normalization: n, limit: split === 'test' ? this.testLimit : undefined });
      this.cache.set(key, data);
    }
    return data;
  }
}

/** The normalization a model file records, if any. */
export function recordedNormalization(model: string | Uint8Array): Normalization | undefined {
  return readNormalization(loadModel(model).proto);
}

export interface EnsembleOptions {
  splits: DatasetSplits;
  /**
   * Fine-tune each member this many steps first (ENSEMBLE_FINETUNE_RECIPE, member i with the batch
   * order of seed i, as deep ensembles draw their own data order); 0 or absent: as written.
   */
  finetuneSteps?: number;
  /** The members' fine-tuning refits their heads in closed form (FinetuneOptions.headRefit). */
  headRefit?: HeadRefitOptions;
  onFinetuneProgress?: (member: number, p: FinetuneProgress) => void;
}

export interface EnsembleReport extends EnsembleFigures {
  names: string[];
  testImages: number;
  data: string;
  finetuneSteps: number;
}

/** Fine-tunes a member with the recipe; its bytes after training. */
async function finetuned(
  member: Member, splits: DatasetSplits, steps: number, seed: number, headRefit: HeadRefitOptions | undefined, onProgress?: (p: FinetuneProgress) => void,
): Promise<Uint8Array> {
  const train = splits.get('train', recordedNormalization(member.model));
  const { onnx } = await finetuneModel(member.model, { train, steps, ...ENSEMBLE_FINETUNE_RECIPE, seed, onProgress, ...(headRefit ? { headRefit } : {}) });
  return onnx;
}

/** Each member's softmax on the test split (normalized as the member records). */
async function testProbabilities(members: readonly Member[], splits: DatasetSplits): Promise<{ probabilities: Float32Array[]; test: Dataset }> {
  const probabilities: Float32Array[] = [];
  let test: Dataset | undefined;
  for (const m of members) {
    const data = splits.get('test', recordedNormalization(m.model));
    if (test && (data.count !== test.count || data.classes !== test.classes)) throw new GhnError('bad-input', `${m.name}: its test split differs from the other members'`);
    test = data;
    const model = await ProbabilityModel.open(m);
    try {
      probabilities.push(await model.onDataset(data));
    } finally {
      await model.release();
    }
  }
  return { probabilities, test: test! };
}

export async function evaluateEnsemble(members: readonly Member[], options: EnsembleOptions): Promise<EnsembleReport> {
  if (members.length === 0) throw new GhnError('usage', 'an ensemble needs at least one model');
  const steps = options.finetuneSteps ?? 0;
  if (!Number.isInteger(steps) || steps < 0) throw new GhnError('usage', `finetuneSteps must be a non-negative integer, got ${steps}`);
  let evaluated: Member[] = [...members];
  if (steps > 0) {
    await initBackend();
    evaluated = [];
    for (const [i, m] of members.entries()) {
      evaluated.push({ name: m.name, model: await finetuned(m, options.splits, steps, ENSEMBLE_FINETUNE_RECIPE.seed + i, options.headRefit, (p) => options.onFinetuneProgress?.(i, p)) });
    }
  }
  const { probabilities, test } = await testProbabilities(evaluated, options.splits);
  return {
    names: members.map((m) => m.name), testImages: test.count, data: test.name, finetuneSteps: steps,
    ...ensembleFigures(probabilities, test.labels, test.classes),
  };
}

export interface DistillOptions {
  splits: DatasetSplits;
  steps: number;
  /** Default ENSEMBLE_FINETUNE_RECIPE's. */
  batch?: number;
  /** 'auto': start-recipe.ts learningRateFor the student (3e-3 for LAMB from a ghn prediction). Default 1e-3. */
  lr?: number | 'auto';
  /** Default AdamW; 'auto': LAMB for a student that is a ghn prediction, AdamW otherwise (start-recipe.ts). */
  optimizer?: OptimizerKind | 'auto';
  seed?: number;
  /**
   * Refit the student's head in closed form on the labels after training (and every `every` steps):
   * FinetuneOptions.headRefit. The body learns from the soft targets.
   */
  headRefit?: HeadRefitOptions;
  onProgress?: (p: FinetuneProgress) => void;
}

export interface DistillReport {
  steps: number;
  optimizer: OptimizerKind;
  lr: number;
  msPerStep: number;
  finalLoss: number;
  testImages: number;
  data: string;
  /** Test accuracy of the trained student (onnxruntime, written bytes). */
  student: number;
  /** The student file before training. */
  studentStart: number;
  /** The teachers' ensemble (mean softmax) and its members. */
  ensemble: number;
  members: number[];
  meanMember: number;
  disagreement: number;
  /** The student's closed-form head refit after training, when asked and its head has a fitted form. */
  headRefit?: HeadFitReport;
}

/**
 * Trains `student` (from its file's parameters, the importer's parameter tensors only) on the
 * training split against the teachers' mean softmax; returns the trained bytes (normalization as
 * the student recorded it) and the test figures.
 */
export async function distill(teachers: readonly Member[], student: Member, options: DistillOptions): Promise<{ onnx: Uint8Array; report: DistillReport }> {
  if (teachers.length === 0) throw new GhnError('usage', 'distillation needs at least one teacher model');
  if (!Number.isInteger(options.steps) || options.steps < 1) throw new GhnError('usage', `steps must be a positive integer, got ${options.steps}`);
  const normalization = recordedNormalization(student.model);
  for (const t of teachers) {
    if (JSON.stringify(recordedNormalization(t.model) ?? null) !== JSON.stringify(normalization ?? null)) {
      throw new GhnError('usage', `${t.name} records another input normalization than the student ${student.name}: the soft targets would see other inputs`);
    }
  }
  const train = options.splits.get('train', normalization);
  await initBackend();
  const model = loadModel(student.model);
  const trainable = [...new Set([...buildGraph(model).slots.values()].map((s) => s.initializer))];
  const start = startKind(model);
  const optimizer = options.optimizer === 'auto' ? optimizerForStart(start) : (options.optimizer ?? ENSEMBLE_FINETUNE_RECIPE.optimizer);
  const lr = options.lr === 'auto' ? learningRateFor(optimizer, start) : (options.lr ?? ENSEMBLE_FINETUNE_RECIPE.lr);
  const sessions: ProbabilityModel[] = [];
  let trained;
  try {
    for (const t of teachers) sessions.push(await ProbabilityModel.open(t));
    const softTargets = async (images: Float32Array, count: number) => {
      const probs: Float32Array[] = [];
      for (const s of sessions) probs.push(await s.probabilities(images, count, train.shape, train.classes));
      return meanProbabilities(probs);
    };
    trained = await finetune(model, {
      data: train, steps: options.steps, batch: options.batch ?? ENSEMBLE_FINETUNE_RECIPE.batch, lr,
      optimizer, seed: options.seed ?? ENSEMBLE_FINETUNE_RECIPE.seed, trainable,
      softTargets, onProgress: options.onProgress, ...(options.headRefit ? { headRefit: options.headRefit } : {}),
    });
  } finally {
    await Promise.all(sessions.map((s) => s.release()));
  }
  const proto = withNormalization(trained.model.proto, normalization ?? train.normalization);
  const onnx = encodeModel({ ...trained.model, proto });
  const { probabilities, test } = await testProbabilities([...teachers, student, { name: `${student.name} (distilled)`, model: onnx }], options.splits);
  const teacherFigures = ensembleFigures(probabilities.slice(0, teachers.length), test.labels, test.classes);
  const [studentStart, studentEnd] = ensembleFigures(probabilities.slice(teachers.length), test.labels, test.classes).members;
  return {
    onnx,
    report: {
      steps: options.steps, optimizer, lr, msPerStep: trained.msPerStep, finalLoss: trained.history.at(-1)?.loss ?? NaN,
      testImages: test.count, data: test.name,
      student: studentEnd!, studentStart: studentStart!, ensemble: teacherFigures.ensemble, members: teacherFigures.members,
      meanMember: teacherFigures.meanMember, disagreement: teacherFigures.disagreement,
      ...(trained.headRefit ? { headRefit: trained.headRefit } : {}),
    },
  };
}
