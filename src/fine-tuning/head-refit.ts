/**
 * Refits a model's classifier in closed form on its current features: the same ridge fit and
 * temperature that `ghn predict` applies to a prediction (src/predict/fit-head.ts), run on a
 * (fine-tuned) model as it is, on labeled training images.
 *
 * Why: a predicted model's head is fitted to the predicted body's features; fine-tuning moves the
 * body, and the old head no longer reads the new features (issue 18: most of a 76% start is lost in
 * the first steps). Refitting after the body moved keeps what the features carry.
 */
import type { Dataset } from '../data/dataset.js';
import { buildGraph } from '../graph/index.js';
import type { WrittenParameters } from '../graph/write-parameters.js';
import type { OnnxModel } from '../onnx/types.js';
import { readFloat32 } from '../onnx/tensor.js';
import { classifierHead, fitHead, type HeadFitReport, type LabeledImages } from '../predict/fit-head.js';

/** The first `count` labeled images of `data` (all of them when it has fewer). */
export function labeledImages(data: Dataset, count: number): LabeledImages {
  const n = Math.min(count, data.count);
  const size = data.shape[0] * data.shape[1] * data.shape[2];
  return { data: data.images.subarray(0, n * size), labels: data.labels.subarray(0, n), count: n, shape: data.shape, classes: data.classes, source: data.name };
}

export interface HeadRefit {
  report: HeadFitReport;
  /** The head's new values by initializer name; empty when the fit was worse than the head it had (kept). */
  values: Map<string, Float32Array>;
}

/**
 * Fits the head of `model` (BatchNorm on the running statistics it holds, in onnxruntime) on
 * `images` and writes it into `model` in place. Undefined when the model has no head of a fitted
 * form (fit-head.ts classifierHead); unchanged when the fit is worse on the images than its head.
 * One initializer per head tensor is assumed (fine-tuning unties shared ones first).
 */
export async function refitHead(model: OnnxModel, images: LabeledImages): Promise<HeadRefit | undefined> {
  const graph = buildGraph(model);
  const head = classifierHead(graph, images.classes);
  if (!head) return undefined;
  const written: WrittenParameters = { model, initializerOf: new Map([...graph.slots.values()].map((s) => [s.id, s.initializer])), added: [] };
  const report = await fitHead(graph, written, new Map(), images);
  if (!report) return undefined;
  const values = new Map<string, Float32Array>();
  if (report.kept === 'fitted') {
    const inits = new Map((model.proto.graph!.initializer ?? []).map((t) => [t.name ?? '', t]));
    for (const slot of [head.weight, ...(head.bias ? [head.bias] : [])]) values.set(slot.initializer, readFloat32(inits.get(slot.initializer)!, model));
  }
  return { report, values };
}
