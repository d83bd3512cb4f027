/** `inspect`: what ghn sees in a model, as a library call. */
import { buildGraph, summarize, type GraphSummary } from '../graph/index.js';
import { decodeModel, readModelFile, type OnnxModel } from '../onnx/index.js';

export type ModelSource = string | Uint8Array | OnnxModel;

export function loadModel(source: ModelSource): OnnxModel {
  if (typeof source === 'string') return readModelFile(source);
  if (source instanceof Uint8Array) return decodeModel(source);
  return source;
}

/** Summarizes a model: canonical ops, parameter tensors by role, and what was not recognized. */
export function inspect(source: ModelSource): GraphSummary {
  return summarize(buildGraph(loadModel(source)));
}
