/**
 * Checks a written model the way a user's runtime will see it: onnxruntime-node loads it, runs a
 * batch of the declared input shape, and every output is finite. Further models that differ from a
 * checked one only in their float values (`predict --samples`) get a cheaper check of their own:
 * the same structure, every value finite (checkSameStructure).
 */
import crypto from 'node:crypto';
import * as ort from 'onnxruntime-node';
import { GhnError } from '../errors.js';
import { encodeModelParts, isExternal, joinParts, toNumber, type ModelProto, type OnnxModel, type TensorProto } from '../onnx/index.js';
import { createRng, gaussian } from '../util/random.js';
import { firstNonFinite } from './float-kernels.js';
import type { ValueInfoProto } from '../onnx/types.js';

export interface ValidationReport {
  inputShape: number[];
  outputShape: number[];
  /** Standard deviation of the first output over the batch: neither 0 nor exploding for a sane init. */
  outputStd: number;
  finite: boolean;
  ms: number;
}

/** The concrete shape to feed for a declared input: symbolic/unknown dims (the batch) become `batch`. */
export function concreteInputShape(input: ValueInfoProto, batch: number): number[] {
  const dims = input.type?.tensorType?.shape?.dim ?? [];
  return dims.map((d, k) => {
    const v = d.dimValue === undefined ? 0 : Number(d.dimValue);
    return v > 0 ? v : k === 0 ? batch : 1;
  });
}

const sameDims = (a: number[], b: number[]) => a.length === b.length && a.every((d, k) => d === b[k]);

/** concreteInputShape for onnxruntime's view of an input (its required inputs exclude initializers). */
function concreteMetadataShape(input: ort.InferenceSession.ValueMetadata, batch: number): number[] {
  const dims = input.isTensor ? input.shape : [];
  return dims.map((d, k) => (typeof d === 'number' && d > 0 ? d : k === 0 ? batch : 1));
}

/** A standard-normal batch for each input, from one stream of `seed` in input order. */
export interface CheckInput {
  name: string;
  shape: number[];
  data: Float32Array;
}

function drawInputs(specs: { name: string; shape: number[] }[], seed: number): CheckInput[] {
  const rng = createRng(seed);
  return specs.map(({ name, shape }) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = gaussian(rng);
    return { name, shape, data };
  });
}

/**
 * The batch validateWithOrt feeds `proto` (its inputs that are not initializers, as onnxruntime
 * lists them), drawn ahead: predict draws it while the written file is still going to disk
 * (ResNet-50: 150 k Gaussian draws, 10–20 ms), and validateWithOrt uses it when its names and
 * shapes are the session's, else draws its own (the same values).
 */
export function drawCheckInputs(proto: ModelProto, options: { batch?: number; seed?: number } = {}): CheckInput[] {
  const graph = proto.graph ?? {};
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const inputs = (graph.input ?? []).filter((v) => !initializers.has(v.name));
  return drawInputs(inputs.map((v) => ({ name: v.name ?? '', shape: concreteInputShape(v, options.batch ?? 2) })), options.seed ?? 0);
}

/**
 * `model`: the model's bytes, or the path of a model file (with its external data files beside it).
 * `inputs`: a batch drawn ahead by drawCheckInputs with the same batch and seed.
 */
export async function validateWithOrt(
  model: Uint8Array | string, options: { batch?: number; seed?: number; inputs?: CheckInput[] } = {},
): Promise<ValidationReport> {
  const t0 = performance.now();
  let session: ort.InferenceSession;
  try {
    // No graph optimizations: 'all' re-lays out every conv weight (NCHWc), which costs more than
    // it saves on a single run (ResNet-50: 0.56 s vs 0.14 s to create, about the same run), and
    // even 'basic' costs more to create than it saves (vit_b_16: ~0.66 vs ~0.54 s of CPU). No
    // spinning threads: they would burn the cores of a shared machine (and the file being written
    // meanwhile, see predict). No pre-packing: it copies every MatMul/Gemm weight into MLAS's
    // packed layout at creation, which one run repays only in part (vit_b_16: ~0.5 s of CPU and
    // ~190 MiB more to create, paired on the 2-core machine).
    const settings: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: 'disabled', extra: { session: { disable_prepacking: '1', intra_op: { allow_spinning: '0' } } },
    };
    session = typeof model === 'string' ? await ort.InferenceSession.create(model, settings) : await ort.InferenceSession.create(model, settings);
  } catch (err) {
    throw new GhnError('bad-input', `onnxruntime rejected the written model: ${(err as Error).message.split('\n')[0]}`);
  }
  try {
    // The inputs as onnxruntime reports them: no decoding of the (100 MB) model in JS.
    const specs = session.inputMetadata.map((input) => ({ name: input.name, shape: concreteMetadataShape(input, options.batch ?? 2) }));
    const ahead = options.inputs;
    const drawn = ahead && ahead.length === specs.length && ahead.every((x, k) => x.name === specs[k]!.name && sameDims(x.shape, specs[k]!.shape))
      ? ahead : drawInputs(specs, options.seed ?? 0);
    const feeds: Record<string, ort.Tensor> = {};
    for (const { name, shape, data } of drawn) feeds[name] = new ort.Tensor('float32', data, shape);
    const inputShape = drawn[0]?.shape ?? [];
    const results = await session.run(feeds);
    const first = results[session.outputNames[0]!]!;
    const values = first.data as Float32Array;
    let finite = true;
    for (const out of Object.values(results)) {
      for (const v of out.data as Float32Array) if (!Number.isFinite(v)) finite = false;
    }
    let mean = 0;
    for (const v of values) mean += v;
    mean /= values.length;
    let variance = 0;
    for (const v of values) variance += (v - mean) ** 2;
    return { inputShape, outputShape: [...first.dims], outputStd: Math.sqrt(variance / values.length), finite, ms: performance.now() - t0 };
  } finally {
    await session.release();
  }
}

/**
 * What onnxruntime's acceptance of a model depends on, apart from its float values: the model's
 * bytes with the metadata left out and every top-level FLOAT initializer's data left out (its name,
 * type and dims stay), as a SHA-256. Other tensors (shape constants, int64 indices…) keep their data.
 */
export interface ModelStructure {
  fingerprint: string;
  floatTensors: number;
}

const FLOAT = 1;

function floatValues(t: TensorProto): Float32Array | number[] | undefined {
  if (t.rawData && t.rawData.length) {
    const r = t.rawData;
    if (r.length % 4) return undefined;
    // An aligned view costs nothing; an unaligned payload (inside a decoded file's buffer) is copied (not Buffer.slice: a view).
    return r.byteOffset % 4 === 0 ? new Float32Array(r.buffer, r.byteOffset, r.length / 4) : new Float32Array(new Uint8Array(r).buffer);
  }
  return t.floatData ?? [];
}

export function modelStructure(proto: ModelProto): ModelStructure {
  const graph = proto.graph ?? {};
  let floatTensors = 0;
  const initializer = (graph.initializer ?? []).map((t) => {
    if (t.dataType !== FLOAT || isExternal(t)) return t;
    floatTensors++;
    // Own keys without the data fields: a lazy rawData getter is not called (no read from disk).
    const stripped: Record<string, unknown> = {};
    for (const key of Object.keys(t)) if (key !== 'rawData' && key !== 'floatData') stripped[key] = (t as Record<string, unknown>)[key];
    return stripped as TensorProto;
  });
  const skeleton = { ...proto, metadataProps: [], graph: { ...graph, initializer } } as ModelProto;
  const bytes = joinParts(encodeModelParts({ proto: skeleton } as OnnxModel));
  return { fingerprint: crypto.createHash('sha256').update(bytes).digest('hex'), floatTensors };
}

export interface SameStructureReport {
  /** What the model was checked against (e.g. "sample 0"), which onnxruntime loaded and ran. */
  reference: string;
  floatTensors: number;
  /** Float values checked finite. */
  values: number;
  ms: number;
}

/**
 * The cheap check of a model whose structure matches one onnxruntime accepted and ran with finite
 * outputs: the structure is byte-identical (so onnxruntime loads it the same way: same nodes, types,
 * dims, constants), every FLOAT initializer holds exactly dims' product of values, and every value is
 * finite. Throws a GhnError otherwise. What it leaves out, a finite model whose activations overflow,
 * the caller rules out elsewhere (predict's samples were each run in onnxruntime by their calibration).
 */
export function checkSameStructure(proto: ModelProto, reference: ModelStructure, label: string): SameStructureReport {
  const t0 = performance.now();
  const own = modelStructure(proto);
  if (own.fingerprint !== reference.fingerprint || own.floatTensors !== reference.floatTensors) {
    throw new GhnError('bad-input', `the written model's graph differs from ${label}'s, which onnxruntime checked`);
  }
  let values = 0;
  for (const t of proto.graph?.initializer ?? []) {
    if (t.dataType !== FLOAT || isExternal(t)) continue;
    const data = floatValues(t);
    const expected = (t.dims ?? []).reduce<number>((a, d) => a * toNumber(d), 1);
    if (!data || data.length !== expected) {
      throw new GhnError('bad-input', `the written model's tensor ${t.name} holds ${data?.length ?? 'a partial'} values, not ${expected}`);
    }
    const bad = data instanceof Float32Array ? firstNonFinite(data) : data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new GhnError('bad-input', `the written model's tensor ${t.name} has a non-finite value at ${bad}`);
    values += data.length;
  }
  return { reference: label, floatTensors: own.floatTensors, values, ms: performance.now() - t0 };
}
