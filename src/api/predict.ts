/**
 * `predict`: ONNX in, the same model with every parameter predicted by the GHN out. The stages run
 * one way: import → GHN → post-processing → ONNX writing → onnxruntime validation.
 */
import fs from 'node:fs';
import path from 'node:path';
import { withNormalization, type Normalization } from '../data/normalization.js';
import { initBackend } from '../engine/backend.js';
import { GhnError } from '../errors.js';
import { checkGhnFile } from '../util/user-files.js';
import { loadGhn, type LoadedGhn } from '../ghn/serialize.js';
import { encodeNodes, predictParametersAsync } from '../ghn/predict-params.js';
import { hasLatent } from '../ghn/latent.js';
import type { GraphEncoding } from '../ghn/encoding.js';
import type * as tf from '../engine/tfjs-core.js';
import { buildGraph, type ComputationGraph } from '../graph/index.js';
import { allTensors, encodeModelParts, isExternal, joinParts } from '../onnx/index.js';
import type { ModelProto, OnnxModel } from '../onnx/types.js';
import { mixWithDefaultInit } from '../postprocess/default-init.js';
import { prepareProducts } from '../postprocess/ort-linalg.js';
import { calibrate, type CalibrationReport } from '../predict/calibrate.js';
import { predictionData, type PredictionData } from './calibration-data.js';
import { checkGhnServes, ghnDataset, predictedNormalization } from './ghn-compatibility.js';
import { firstImages, fitHead, type HeadFitReport, type LabeledImages } from '../predict/fit-head.js';
import { stageFile, type StagedFile } from '../predict/staged-file.js';
import { stageModelWithData } from '../predict/staged-model.js';
import { checkSameStructure, drawCheckInputs, modelStructure, validateWithOrt, type ModelStructure, type SameStructureReport, type ValidationReport } from '../predict/validate.js';
import { writeParameters, type WrittenParameters } from '../graph/write-parameters.js';
import { VERSION } from '../version.js';
import { StageClock, type StageTimes } from './stage-clock.js';
import { loadModel, type ModelSource } from './inspect.js';
import { DEFAULT_GHN_PATH, DEFAULT_PREDICT_OPTIONS, type PredictionOptions, type PredictOptions } from './predict-options.js';

export { DEFAULT_GHN_PATH, DEFAULT_PREDICT_OPTIONS, type PredictOptions };

export type ResolvedOptions = PredictionOptions & Pick<PredictOptions, 'ghn' | 'output'>;

export const PREDICT_STAGES = ['load', 'graph', 'ghn', 'mix', 'postprocess', 'calibrate', 'fit-head', 'write', 'validate'] as const;
export type PredictStage = (typeof PREDICT_STAGES)[number];

export interface PredictReport {
  tensors: number;
  parameters: number;
  /** Initializers added by splitting tensors the exporter shared between parameters. */
  splitTensors: number;
  /** The data file written beside the output when the model keeps tensors in external data. */
  dataFile?: string;
  ghn: { path: string; hash: string };
  options: PredictionOptions;
  backend: string;
  /** Wall milliseconds per stage. */
  timings: StageTimes<PredictStage>;
  /** CPU milliseconds per stage (every thread of the process; see stage-clock.ts). */
  cpuTimings: StageTimes<PredictStage>;
  calibration?: CalibrationReport;
  /** The classifier fitted on labeled images (absent when not fitted: option off, no labeled images, or no Linear head). */
  head?: HeadFitReport;
  /** The share t of PyTorch's default init in the written parameters, and how it was chosen. */
  mix: MixReport;
  validation?: ValidationReport;
  /** Instead of `validation`, for a model checked against another one's structure (samples 1…K−1 of `predict --samples`). */
  sameStructure?: SameStructureReport;
}

/** For emitPrediction: check against a model onnxruntime already checked, or record this one's structure to check others against. */
export interface EmitCheck {
  like?: { structure: ModelStructure; label: string };
  recordStructure?: boolean;
}

export interface PredictResult {
  /**
   * The written model's bytes, joined on first read (a getter: a caller that only wants the file
   * never pays for a 100–350 MB joined copy). The join reads the arrays in `tensors`, which the
   * model's initializers share: change them before the first read and the bytes carry the change
   * (and no longer match the file at `output`); after it, the bytes are fixed. Read `onnx` first,
   * or copy an array before changing it, to keep what was written.
   */
  readonly onnx: Uint8Array;
  report: PredictReport;
  /** Predicted values by initializer name in the written model, in its stored layout. */
  tensors: Map<string, Float32Array>;
  /** Parameter slot id (as `buildGraph` names slots) → the initializer holding its values in the written model. */
  initializerOf: Map<string, string>;
}

const ghnCache = new Map<string, LoadedGhn>();

function openGhn(file: string): LoadedGhn {
  const resolved = path.resolve(file);
  checkGhnFile(resolved);
  let loaded = ghnCache.get(resolved);
  if (!loaded) ghnCache.set(resolved, (loaded = loadGhn(resolved)));
  return loaded;
}

function recordProvenance(proto: ModelProto, entries: Record<string, string>, normalization: Normalization): ModelProto {
  const keys = new Set(Object.keys(entries));
  const kept = (proto.metadataProps ?? []).filter((p) => !keys.has(p.key ?? ''));
  const withEntries = { ...proto, metadataProps: [...kept, ...Object.entries(entries).map(([key, value]) => ({ key, value }))] };
  return withNormalization(withEntries, normalization);
}

/**
 * What every initialization of one model shares: the model, its graph, the GHN's raw prediction
 * (one forward pass) and the calibration images. `predict` writes one initialization from it,
 * `predictSamples` (predict-samples.ts) several.
 */
export interface PreparedPrediction {
  source: ModelSource;
  opts: ResolvedOptions;
  clock: StageClock<PredictStage>;
  model: OnnxModel;
  graph: ComputationGraph;
  backendName: string;
  ghnPath: string;
  ghn: LoadedGhn;
  /** The GHN's predictions by slot id; a t = 0 candidate adopts these arrays unless told to keep them. */
  raw: Map<string, Float32Array>;
  /** With `keepEncoding` and a latent GHN: the graph's encoding and the transformer's node embeddings behind `raw` (the caller disposes `nodes`). */
  encoded?: { enc: GraphEncoding; nodes: tf.Tensor2D };
  data: PredictionData;
}

/** Load → graph → GHN forward pass → calibration images: the stages run once per model. */
export async function preparePrediction(source: ModelSource, options: PredictOptions = {}, keepEncoding = false): Promise<PreparedPrediction> {
  const opts: ResolvedOptions = { ...DEFAULT_PREDICT_OPTIONS, ...options };
  if (opts.mix !== 'auto' && !(typeof opts.mix === 'number' && opts.mix >= 0 && opts.mix <= 1)) {
    throw new GhnError('usage', `mix must be 'auto' or a number in [0, 1], got ${JSON.stringify(opts.mix)}`);
  }
  // V8 compiles the backend's wasm on background threads: the model is read and its graph built
  // meanwhile (~0.1 s of ResNet-50's start-up).
  const backendReady = initBackend(undefined, { gradients: false });
  backendReady.catch(() => undefined); // a bad model fails first; its error is the one reported
  const clock = new StageClock(PREDICT_STAGES);
  const model = clock.measure('load', () => loadModel(source));
  const graph = clock.measure('graph', () => buildGraph(model));
  if (graph.unsupported.length) {
    const names = [...new Set(graph.unsupported.map((u) => u.opType))].join(', ');
    throw new GhnError('unsupported', `cannot predict parameters: unsupported operator(s) ${names}`);
  }
  // onnxruntime starts while the wasm compile finishes: the GHN's products run on it, and the QR's
  // only when orthogonalizing (each session built for nothing costs start-up).
  prepareProducts(opts.orthogonalize ? ['lowRank', 'gram', 'solve'] : ['lowRank']);
  const backend = await backendReady;
  const ghnPath = opts.ghn ?? DEFAULT_GHN_PATH;
  const ghn = openGhn(ghnPath);
  checkGhnServes(ghn.header, ghnPath, model, typeof source === 'string' ? source : undefined);
  // Latent samples decode again from the same node embeddings: the transformer runs once.
  const encoded = keepEncoding && hasLatent(ghn.model) ? clock.measure('ghn', () => encodeNodes(ghn.model, graph)) : undefined;
  const raw = await clock.measureAsync('ghn', () => (encoded ? predictParametersAsync(ghn.model, encoded.enc, undefined, encoded.nodes) : predictParametersAsync(ghn.model, graph)));
  const data = opts.calibrate ? predictionData(model, opts.calibrationData, { labeled: opts.fitHead, dataset: ghnDataset(ghn.header) }) : {};
  return { source, opts, clock, model, graph, backendName: backend.name, ghnPath, ghn, raw, data, ...(encoded ? { encoded } : {}) };
}

/**
 * One candidate per call: the raw prediction mixed with share t of a default draw from `mixSeed`,
 * post-processed, written and calibrated. `keepRaw`: a t = 0 candidate works on a copy, so the raw
 * prediction stays as the GHN wrote it for further candidates (post-processing runs in place).
 * `premixed`: the mix of share t and `mixSeed`, already under way (predictSamples computes the next
 * sample's while this one's onnxruntime runs); the 'mix' stage then times only the wait for it.
 */
export function candidateInitializer(
  p: PreparedPrediction, mixSeed: number, keepRaw = false, premixed?: Promise<Map<string, Float32Array>>,
): (t: number) => Promise<Initialized> {
  const { clock, graph, raw, opts, data } = p;
  return async (t: number): Promise<Initialized> => {
    // A mix makes new arrays; t = 0 goes last, so the raw predictions are only adopted once.
    const tensors = t !== 0 && premixed ? await clock.measureAsync('mix', () => premixed)
      : t !== 0 ? clock.measure('mix', () => mixWithDefaultInit(graph, raw, t, mixSeed))
      : keepRaw && (opts.noise || opts.orthogonalize) ? new Map([...raw].map(([id, v]) => [id, v.slice()])) : raw;
    const processed = await clock.measureAsync('postprocess', () => postprocess(graph, tensors, opts));
    // The arrays are this candidate's own and are not changed again (calibration makes new ones).
    const result = clock.measure('write', () => writeParameters(graph, processed, { adopt: true }));
    const calibration = opts.calibrate
      ? await clock.measureAsync('calibrate', () => calibrate(graph, result, processed, { seed: opts.seed, images: data.calibration }))
      : undefined;
    return { t, processed, result, calibration };
  };
}

/** The classifier fit of a candidate on `images` (written into its model when `write`). */
export function headFitter(p: PreparedPrediction): (c: Initialized, images: LabeledImages, write: boolean) => Promise<HeadFitReport | undefined> {
  return (c, images, write) => p.clock.measureAsync('fit-head', () => fitHead(p.graph, c.result, c.processed, images, { write }));
}

/** Predicts every parameter of `source` and returns the written ONNX bytes with a report. */
export async function predict(source: ModelSource, options: PredictOptions = {}): Promise<PredictResult> {
  const p = await preparePrediction(source, options);
  const chosen = await chooseMix(p.opts.mix, p.data.labeled, candidateInitializer(p, p.opts.seed), headFitter(p));
  const { result, staged } = await emitPrediction(p, chosen, p.opts.output);
  // What is left of the file write after the check.
  await p.clock.measureAsync('write', async () => staged?.commit());
  return result;
}

/**
 * Records provenance in the chosen candidate's model, encodes it, starts writing it to `output`
 * (staged: complete or absent) and checks it in onnxruntime. The caller commits the staged file;
 * a failed check discards it. `metadata` adds entries after the usual ones.
 */
export async function emitPrediction(
  p: PreparedPrediction, chosen: Initialized & { head?: HeadFitReport; mix: MixReport }, outputPath: string | undefined,
  metadata: Record<string, string> = {}, check: EmitCheck = {},
): Promise<{ result: PredictResult; staged?: StagedFile; structure?: ModelStructure }> {
  const { clock, opts, graph, ghn, ghnPath, model, source } = p;
  const { processed, result, calibration, head } = chosen;
  const written = clock.measure('write', () => {
    const normalization = predictedNormalization(ghn.header, model.proto);
    const proto = recordProvenance(result.model.proto, {
      'ghn.version': VERSION,
      'ghn.model': path.basename(ghnPath),
      'ghn.model_sha256': ghn.hash,
      'ghn.options': JSON.stringify({
        seed: opts.seed, noise: opts.noise, orthogonalize: opts.orthogonalize, fromLayer: opts.fromLayer, calibrate: opts.calibrate,
        ...(calibration ? { calibrationData: calibration.data, calibrationBatch: calibration.batch } : {}),
        fitHead: opts.fitHead, mix: chosen.t,
        ...(head?.kept === 'fitted' ? { headFitImages: head.images, headFitData: head.data } : {}),
      }),
      ...metadata,
    }, normalization);
    return { model: { ...result.model, proto } as OnnxModel, initializerOf: result.initializerOf, added: result.added };
  });
  const output = clock.measure('write', () => stageOutput(written.model, outputPath, source));
  let validation: ValidationReport | undefined;
  let sameStructure: SameStructureReport | undefined;
  let structure: ModelStructure | undefined;
  const selfContained = !output.dataFile;
  if (opts.validate && check.like && selfContained) {
    try {
      sameStructure = clock.measure('validate', () => checkSameStructure(written.model.proto, check.like!.structure, check.like!.label));
    } catch (err) {
      await output.staged?.discard();
      throw err;
    }
  } else if (opts.validate) {
    try {
      // One sample: loading the written bytes and one forward pass with finite outputs is the proof;
      // a second sample doubles the forward pass (ResNet-50: ~0.1 s of CPU) and proves nothing more.
      const batchOf = { seed: opts.seed, batch: 1 };
      // Drawn, and the structure recorded, while the file is still being written (the check's session needs all of it).
      const inputs = clock.measure('validate', () => drawCheckInputs(written.model.proto, batchOf));
      const recorded = check.recordStructure && selfContained ? clock.measure('validate', () => modelStructure(written.model.proto)) : undefined;
      const checked = await clock.measureAsync('write', output.checked);
      validation = await clock.measureAsync('validate', () => validateWithOrt(checked, { ...batchOf, inputs }));
      if (!validation.finite) throw new GhnError('bad-input', 'the predicted model gives non-finite outputs in onnxruntime');
      structure = recorded;
    } catch (err) {
      await output.staged?.discard();
      throw err;
    }
  }
  const tensors = new Map<string, Float32Array>();
  for (const [slotId, data] of processed) tensors.set(written.initializerOf.get(slotId)!, data);
  return {
    staged: output.staged,
    ...(structure ? { structure } : {}),
    result: {
      get onnx() {
        return output.bytes();
      },
      tensors,
      initializerOf: written.initializerOf,
      report: {
        tensors: processed.size,
        parameters: graph.parameterCount,
        splitTensors: written.added.length,
        ...(output.dataFile === undefined ? {} : { dataFile: output.dataFile }),
        ghn: { path: ghnPath, hash: ghn.hash },
        options: {
          seed: opts.seed, noise: opts.noise, orthogonalize: opts.orthogonalize, fromLayer: opts.fromLayer,
          calibrate: opts.calibrate, calibrationData: opts.calibrationData, fitHead: opts.fitHead, mix: opts.mix, validate: opts.validate,
        },
        backend: p.backendName,
        timings: clock.wall,
        cpuTimings: clock.cpu,
        calibration,
        head,
        mix: chosen.mix,
        validation,
        ...(sameStructure ? { sameStructure } : {}),
      },
    },
  };
}

/**
 * Starts writing the output. A model self-contained in one protobuf is encoded into parts that go
 * to a temp file on libuv's threads, unjoined; onnxruntime then checks that file from its path
 * (it reads it without a second copy of the bytes in memory: ResNet-50 0.18 s of CPU and 187 MiB to
 * create against 0.33–0.56 s and 284 MiB from a buffer, vit_b_16 0.64–0.70 s and 423 MiB against
 * 1.1–1.8 s and 753 MiB), and the bytes are joined only if the caller asks for them. Without an
 * output path, or when writing over the input the parts still read from, the bytes are joined
 * first and checked from memory. A model that keeps tensors in external data (over 2 GiB, or
 * exported that way) is written with one data file `<output>.data` into a staging directory, and
 * checked there from its path.
 */
function stageOutput(model: OnnxModel, output: string | undefined, source: ModelSource):
  { bytes: () => Uint8Array; checked: () => Promise<Uint8Array | string>; staged?: StagedFile; dataFile?: string } {
  if (!allTensors(model.proto).some(isExternal)) {
    const encoded = encodeModelParts(model);
    const inputs = [model.sourcePath, typeof source === 'string' ? source : undefined].filter((f) => f !== undefined);
    const overwritesSource = output !== undefined && inputs.some((f) => path.resolve(f) === path.resolve(output));
    if (output === undefined || overwritesSource) {
      const bytes = joinParts(encoded);
      return { bytes: () => bytes, checked: async () => bytes, staged: output === undefined ? undefined : stageFile(output, bytes) };
    }
    let joined: Uint8Array | undefined;
    const staged = stageFile(output, encoded);
    return { bytes: () => (joined ??= joinParts(encoded)), checked: async () => (await staged.written, staged.tmpPath), staged };
  }
  if (output === undefined) {
    const name = typeof source === 'string' ? source : 'the model';
    throw new GhnError('usage', `${name} keeps tensors in external data files: give an output path (the option \`output\`, -o on the command line) to write the predicted model and its data file beside it`);
  }
  const staged = stageModelWithData(model, output);
  return { bytes: () => staged.bytes, checked: async () => staged.stagedPath, staged, dataFile: staged.dataFile };
}

/** One candidate initialization: the prediction mixed with share t of the default init, written and calibrated. */
export interface Initialized {
  t: number;
  processed: Map<string, Float32Array>;
  result: WrittenParameters;
  calibration?: CalibrationReport;
}

export interface MixReport {
  t: number;
  /** 'held-out': chosen among MIX_CANDIDATES by the fitted classifier's cross-validated accuracy; 'option': as given; 'no-labels': 'auto' without labeled images keeps the prediction. */
  chosenBy: 'held-out' | 'option' | 'no-labels';
  /** Held-out accuracy of each candidate, when chosen by it. */
  candidates?: { t: number; heldOut: number }[];
}

/** The shares 'auto' tries: the prediction alone, and half of it over half of a default draw. */
export const MIX_CANDIDATES = [0.5, 0] as const;
/** Labeled images each candidate's classifier is cross-validated on (the chosen one is then fitted on all). */
export const MIX_SELECTION_IMAGES = 1024;

/**
 * The initialization predict writes. 'auto' with labeled images: every candidate share is written,
 * calibrated and its classifier cross-validated on the first images; the best held-out accuracy
 * wins (the prediction alone on ties or when a head cannot be cross-validated), then its classifier
 * is fitted on all labeled images and written.
 */
export async function chooseMix(
  mix: number | 'auto', labeled: LabeledImages | undefined,
  initialize: (t: number) => Promise<Initialized>,
  fit: (c: Initialized, images: LabeledImages, write: boolean) => Promise<HeadFitReport | undefined>,
): Promise<Initialized & { head?: HeadFitReport; mix: MixReport }> {
  if (mix !== 'auto' || !labeled) {
    const t = mix === 'auto' ? 0 : mix;
    const c = await initialize(t);
    const head = labeled ? await fit(c, labeled, true) : undefined;
    return { ...c, head, mix: { t, chosenBy: mix === 'auto' ? 'no-labels' : 'option' } };
  }
  const selection = firstImages(labeled, MIX_SELECTION_IMAGES);
  const tried: { c: Initialized; head?: HeadFitReport }[] = [];
  for (const t of MIX_CANDIDATES) {
    const c = await initialize(t);
    tried.push({ c, head: await fit(c, selection, false) });
  }
  const score = (x: (typeof tried)[number]) => x.head?.heldOut ?? -1;
  const prediction = tried.find((x) => x.c.t === 0)!;
  const comparable = tried.every((x) => x.head?.heldOut !== undefined);
  const best = comparable ? tried.reduce((a, b) => (score(b) > score(a) || (score(b) === score(a) && b.c.t === 0) ? b : a)) : prediction;
  const head = await fit(best.c, labeled, true);
  const candidates = comparable ? tried.map((x) => ({ t: x.c.t, heldOut: x.head!.heldOut! })) : undefined;
  return { ...best.c, head, mix: { t: best.c.t, chosenBy: comparable ? 'held-out' : 'no-labels', ...(candidates ? { candidates } : {}) } };
}

async function postprocess(graph: ComputationGraph, raw: Map<string, Float32Array>, opts: ResolvedOptions) {
  if (!opts.noise && !opts.orthogonalize) return raw;
  const heads = new Set(graph.headOps().map((op) => op.id));
  const slots = [...graph.slots.values()].map((slot) => ({
    id: slot.id, role: slot.role, shape: slot.shape, layout: slot.layout, isClassifier: heads.has(slot.op),
  }));
  // Loaded only when post-processing runs (off by default): the QR and noise modules.
  const { diversifyAsync } = await import('../postprocess/diversify.js');
  // In place: the raw predictions are this call's own and not needed afterwards.
  const options = { noise: opts.noise, orthogonalize: opts.orthogonalize, fromLayer: opts.fromLayer, seed: opts.seed, inPlace: true };
  return (await diversifyAsync(raw, slots, options)).tensors;
}
