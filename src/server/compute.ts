/**
 * The work behind /v1/predict and /v1/inspect, as plain functions of the uploaded bytes. Runs in a
 * worker thread (worker.ts) so the event loop stays free for health checks and metrics.
 */
import { predict } from '../api/predict.js';
import { readNormalization } from '../data/normalization.js';
import { GhnError } from '../errors.js';
import { buildGraph, summarize, type ComputationGraph } from '../graph/index.js';
import { decodeModel, isExternal, type OnnxModel, type ValueInfoProto } from '../onnx/index.js';
import type { GraphView, InspectOutput, Job, JobOutput, ModelSignature, PredictJobOptions, PredictOutput, TensorSignature } from './jobs.js';

/** Above this many ops a drawing is unreadable; the page shows a table instead. */
export const MAX_DRAWN_OPS = 400;

/**
 * Decodes an upload. No base directory is given, so nothing on the server's disk is ever read for
 * it; a model that keeps tensors in external files cannot be used and says so.
 */
export function decodeUpload(bytes: Uint8Array): OnnxModel {
  const model = decodeModel(bytes, { label: 'uploaded model' });
  const external = (model.proto.graph?.initializer ?? []).find(isExternal);
  if (external) {
    throw new GhnError('missing-data', `tensor ${external.name} is stored in an external data file; upload a model with its tensors inside the ONNX file`);
  }
  return model;
}

function signatureOf(values: readonly ValueInfoProto[]): TensorSignature[] {
  return values.map((v) => ({
    name: v.name ?? '',
    shape: (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimValue !== undefined && Number(d.dimValue) > 0 ? Number(d.dimValue) : d.dimParam || '?')),
  }));
}

export function modelSignature(model: OnnxModel): ModelSignature {
  const graph = model.proto.graph;
  const initializers = new Set((graph?.initializer ?? []).map((t) => t.name));
  return {
    inputs: signatureOf((graph?.input ?? []).filter((v) => !initializers.has(v.name))),
    outputs: signatureOf(graph?.output ?? []),
  };
}

export function graphView(g: ComputationGraph): GraphView {
  const nodes = g.ops.map((op) => ({
    id: op.id,
    kind: op.kind,
    label: op.name,
    onnxOps: [...op.onnxOps],
    params: g.slotsOf(op).reduce((sum, s) => sum + s.elements, 0),
    index: op.index,
  }));
  const edges = g.graph.mapEdges((_edge, _attrs, source, target) => [source, target] as [string, string]);
  return { nodes, edges };
}

export function inspectUpload(bytes: Uint8Array, withGraph: boolean): InspectOutput {
  const model = decodeUpload(bytes);
  const g = buildGraph(model);
  const out: InspectOutput = { kind: 'inspect', summary: summarize(g), signature: modelSignature(model) };
  if (withGraph) {
    if (g.ops.length <= MAX_DRAWN_OPS) out.graph = graphView(g);
    else out.graphOmitted = `${g.ops.length} operations (drawn up to ${MAX_DRAWN_OPS})`;
  }
  return out;
}

export async function predictUpload(bytes: Uint8Array, options: PredictJobOptions): Promise<PredictOutput> {
  const model = decodeUpload(bytes);
  const signature = modelSignature(model);
  const { onnx, report } = await predict(model, {
    ghn: options.ghnPath, seed: options.seed, noise: options.noise, orthogonalize: options.orthogonalize,
    fromLayer: options.fromLayer, fitHead: options.fitHead, mix: options.mix, validate: options.validate,
  });
  const { ghn, ...rest } = report;
  return { kind: 'predict', onnx, report: rest, ghnId: ghn.hash, signature, normalization: readNormalization(decodeModel(onnx).proto) ?? null };
}

export function runJob(job: Job): Promise<JobOutput> | JobOutput {
  return job.kind === 'predict' ? predictUpload(job.bytes, job.options) : inspectUpload(job.bytes, job.graph);
}
