/**
 * Which models a GHN serves. A GHN that records its training dataset (every one `ghn train` writes)
 * serves models of that dataset's task: its input shape [C, H, W] and class count. Its calibration
 * images, classifier fit and the normalization recorded in predicted files only mean something for
 * such models. GHNs from before datasets were recorded (the shipped Fashion-MNIST one) predict any
 * model, as they always did, calibrating on noise when the model does not take their images.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describeTask, FASHION_MNIST_RECORD } from '../data/sources.js';
import type { DatasetRecord } from '../data/dataset.js';
import { FASHION_MNIST_NORMALIZATION, readNormalization, type Normalization } from '../data/normalization.js';
import { GhnError } from '../errors.js';
import { readGhnHeader, type GhnHeader } from '../ghn/serialize.js';
import type { ModelProto, OnnxModel, ValueInfoProto } from '../onnx/types.js';
import { DEFAULT_GHN_PATH } from './predict-options.js';

/** The dataset a GHN was trained on: its record, or Fashion-MNIST for a GHN without one. */
export function ghnDataset(header: GhnHeader): DatasetRecord {
  return header.dataset ?? FASHION_MNIST_RECORD;
}

/** The normalization a predicted file records: the GHN's dataset's (a GHN without a record: the model's own, else Fashion-MNIST's). */
export function predictedNormalization(header: GhnHeader, model: ModelProto): Normalization {
  return header.dataset ? header.dataset.normalization : (readNormalization(model) ?? FASHION_MNIST_NORMALIZATION);
}

const dims = (v: ValueInfoProto | undefined): number[] | undefined =>
  v?.type?.tensorType?.shape?.dim?.map((d) => (d.dimValue === undefined ? 0 : Number(d.dimValue)));

/** The model's [C, H, W…] (first data input, batch dropped) and class count (last dim of the first output); 0 or undefined where not declared. */
export function modelTask(model: OnnxModel): { shape?: number[]; classes?: number } {
  const g = model.proto.graph;
  const initializers = new Set((g?.initializer ?? []).map((t) => t.name));
  const input = dims((g?.input ?? []).find((v) => !initializers.has(v.name)))?.slice(1);
  const output = dims(g?.output?.[0]);
  const classes = output && output.length >= 2 ? output[output.length - 1] : undefined;
  return { shape: input, classes: classes || undefined };
}

/** Equal where both are declared (a symbolic dimension cannot be shown to differ). */
function serves(dataset: DatasetRecord, task: { shape?: number[]; classes?: number }): boolean {
  const shapeOk = task.shape === undefined ||
    (task.shape.length === dataset.shape.length && task.shape.every((d, k) => d === 0 || d === dataset.shape[k]));
  return shapeOk && (task.classes === undefined || task.classes === dataset.classes);
}

function shown(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

/** A GHN beside `ghnPath` or the shipped one whose dataset is exactly `task`'s, if any. */
function suggestGhn(ghnPath: string, task: { shape?: number[]; classes?: number }): { file: string; dataset: DatasetRecord } | undefined {
  const dirs = [...new Set([path.dirname(path.resolve(ghnPath)), path.dirname(DEFAULT_GHN_PATH)])];
  const files = [DEFAULT_GHN_PATH, ...dirs.flatMap((d) => (existsSync(d) ? readdirSync(d).filter((f) => f.endsWith('.ghn')).sort().map((f) => path.join(d, f)) : []))];
  for (const file of [...new Set(files)]) {
    if (file === path.resolve(ghnPath) || !existsSync(file)) continue;
    let header: GhnHeader;
    try {
      header = readGhnHeader(file);
    } catch {
      continue; // not a GHN: nothing to suggest
    }
    const dataset = ghnDataset(header);
    if (task.shape?.every((d) => d > 0) && task.classes !== undefined && serves(dataset, task)) return { file, dataset };
  }
  return undefined;
}

/** Throws a one-line GhnError('usage') when the GHN cannot serve the model, naming both tasks and a GHN that would serve it. */
export function checkGhnServes(header: GhnHeader, ghnPath: string, model: OnnxModel, modelName = 'the model'): void {
  const dataset = header.dataset;
  if (!dataset) return;
  const task = modelTask(model);
  if (serves(dataset, task)) return;
  const theirs = describeTask(task.shape ?? ['?'], task.classes);
  const other = suggestGhn(ghnPath, task);
  const advice = other
    ? `use ${shown(other.file)} (trained on ${other.dataset.name}, ${describeTask(other.dataset.shape, other.dataset.classes)})`
    : `train a GHN on such data (\`ghn train --data <dataset of ${theirs}>\`)`;
  throw new GhnError('usage',
    `${shown(ghnPath)} was trained on ${dataset.name} (${describeTask(dataset.shape, dataset.classes)}) and cannot serve ${modelName}, which takes ${theirs}: ${advice}`);
}
