/** Messages between the server and its worker threads: what a job asks for and what it answers. */
import type { PredictReport } from '../api/predict.js';
import type { Normalization } from '../data/normalization.js';
import type { GhnErrorKind } from '../errors.js';
import type { GraphSummary } from '../graph/index.js';

export interface PredictJobOptions {
  /** Server-side path of the GHN, resolved from a model id by the server (never by a request). */
  ghnPath: string;
  seed: number;
  noise: number;
  orthogonalize: boolean;
  fromLayer: number;
  fitHead: boolean;
  mix: number | 'auto';
  validate: boolean;
}

export type Job =
  | { kind: 'predict'; bytes: Uint8Array; options: PredictJobOptions }
  | { kind: 'inspect'; bytes: Uint8Array; graph: boolean };

/** A graph input or output, with symbolic dimensions kept as their names. */
export interface TensorSignature {
  name: string;
  shape: (number | string)[];
}

export interface ModelSignature {
  inputs: TensorSignature[];
  outputs: TensorSignature[];
}

/** The canonical-op graph for drawing: ops as nodes, activation flow as edges. */
export interface GraphView {
  nodes: { id: string; kind: string; label: string; onnxOps: string[]; params: number; index: number }[];
  edges: [source: string, target: string][];
}

export interface PredictOutput {
  kind: 'predict';
  onnx: Uint8Array;
  /** The library report without server paths. */
  report: Omit<PredictReport, 'ghn'>;
  /** sha256 of the GHN file the worker actually used (the model id). */
  ghnId: string;
  signature: ModelSignature;
  /** How raw pixels must be normalized for the predicted model (from its metadata). */
  normalization: Normalization | null;
}

export interface InspectOutput {
  kind: 'inspect';
  summary: GraphSummary;
  signature: ModelSignature;
  graph?: GraphView;
  /** Why `graph` was left out although asked for (too many ops to draw usefully). */
  graphOmitted?: string;
}

export type JobOutput = PredictOutput | InspectOutput;

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'done'; id: number; output: JobOutput }
  | { type: 'failed'; id: number; error: { kind?: GhnErrorKind; message: string } };

export type WorkerRequest = { id: number; job: Job };
