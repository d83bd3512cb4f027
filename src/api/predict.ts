/**
 * `predict`: ONNX in, the same model with every parameter predicted by the GHN out. The stages run
 * one way: import → GHN → post-processing → ONNX writing → onnxruntime validation.
 */
import fs from 'node:fs';
import path from 'node:path';
import { withNormalization, type Normalization } from '../data/normalization.js';
import { initBackend } from '../engine/backend.js';
import { GhnError } from '../errors.js';
import { loadGhn, type LoadedGhn } from '../ghn/serialize.js';
import { predictParametersAsync } from '../ghn/predict-params.js';
import { buildGraph, type ComputationGraph } from '../graph/index.js';
import { allTensors, encodeModel, isExternal } from '../onnx/index.js';
import type { ModelProto, OnnxModel } from '../onnx/types.js';
import { prepareProducts } from '../postprocess/ort-linalg.js';
import { calibrate, type CalibrationReport } from '../predict/calibrate.js';
import { predictionData } from './calibration-data.js';
import { checkGhnServes, ghnDataset, predictedNormalization } from './ghn-compatibility.js';
import { fitHead, type HeadFitReport } from '../predict/fit-head.js';
import { stageFile, type StagedFile } from '../predict/staged-file.js';
import { stageModelWithData } from '../predict/staged-model.js';
import { validateWithOrt, type ValidationReport } from '../predict/validate.js';
import { writeParameters } from '../graph/write-parameters.js';
import { VERSION } from '../version.js';
import { StageClock, type StageTimes } from './stage-clock.js';
import { loadModel, type ModelSource } from './inspect.js';
import { DEFAULT_GHN_PATH, DEFAULT_PREDICT_OPTIONS, type PredictionOptions, type PredictOptions } from './predict-options.js';

export { DEFAULT_GHN_PATH, DEFAULT_PREDICT_OPTIONS, type PredictOptions };

type ResolvedOptions = PredictionOptions & Pick<PredictOptions, 'ghn' | 'output'>;

export const PREDICT_STAGES = ['load', 'graph', 'ghn', 'postprocess', 'calibrate', 'fit-head', 'write', 'validate'] as const;
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
  validation?: ValidationReport;
}

export interface PredictResult {
  onnx: Uint8Array;
  report: PredictReport;
  /** Predicted values by initializer name in the written model, in its stored layout. */
  tensors: Map<string, Float32Array>;
  /** Parameter slot id (as `buildGraph` names slots) → the initializer holding its values in the written model. */
  initializerOf: Map<string, string>;
}

const ghnCache = new Map<string, LoadedGhn>();

function openGhn(file: string): LoadedGhn {
  const resolved = path.resolve(file);
  if (!fs.existsSync(resolved)) {
    throw new GhnError('missing-data', `no GHN at ${resolved}: train one with \`ghn train\` or pass --ghn`);
  }
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

/** Predicts every parameter of `source` and returns the written ONNX bytes with a report. */
export async function predict(source: ModelSource, options: PredictOptions = {}): Promise<PredictResult> {
  const opts: ResolvedOptions = { ...DEFAULT_PREDICT_OPTIONS, ...options };
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
  const raw = await clock.measureAsync('ghn', () => predictParametersAsync(ghn.model, graph));
  const processed = await clock.measureAsync('postprocess', () => postprocess(graph, raw, opts));
  // The predicted arrays are this call's own and are not changed again (calibration makes new ones).
  const result = clock.measure('write', () => writeParameters(graph, processed, { adopt: true }));
  const data = opts.calibrate ? predictionData(model, opts.calibrationData, { labeled: opts.fitHead, dataset: ghnDataset(ghn.header) }) : {};
  const calibration = opts.calibrate
    ? await clock.measureAsync('calibrate', () => calibrate(graph, result, processed, { seed: opts.seed, images: data.calibration }))
    : undefined;
  const head = data.labeled ? await clock.measureAsync('fit-head', () => fitHead(graph, result, processed, data.labeled!)) : undefined;
  const written = clock.measure('write', () => {
    const normalization = predictedNormalization(ghn.header, model.proto);
    const proto = recordProvenance(result.model.proto, {
      'ghn.version': VERSION,
      'ghn.model': path.basename(ghnPath),
      'ghn.model_sha256': ghn.hash,
      'ghn.options': JSON.stringify({
        seed: opts.seed, noise: opts.noise, orthogonalize: opts.orthogonalize, fromLayer: opts.fromLayer, calibrate: opts.calibrate,
        ...(calibration ? { calibrationData: calibration.data, calibrationBatch: calibration.batch } : {}),
        fitHead: opts.fitHead,
        ...(head?.kept === 'fitted' ? { headFitImages: head.images, headFitData: head.data } : {}),
      }),
    }, normalization);
    return { model: { ...result.model, proto } as OnnxModel, initializerOf: result.initializerOf, added: result.added };
  });
  const output = clock.measure('write', () => stageOutput(written.model, opts.output, source));
  let validation: ValidationReport | undefined;
  if (opts.validate) {
    try {
      // One sample: loading the written bytes and one forward pass with finite outputs is the proof;
      // a second sample doubles the forward pass (ResNet-50: ~0.1 s of CPU) and proves nothing more.
      validation = await clock.measureAsync('validate', () => validateWithOrt(output.checked, { seed: opts.seed, batch: 1 }));
      if (!validation.finite) throw new GhnError('bad-input', 'the predicted model gives non-finite outputs in onnxruntime');
    } catch (err) {
      await output.staged?.discard();
      throw err;
    }
  }
  // What is left of the file write after the check.
  await clock.measureAsync('write', async () => output.staged?.commit());
  const tensors = new Map<string, Float32Array>();
  for (const [slotId, data] of processed) tensors.set(written.initializerOf.get(slotId)!, data);
  return {
    onnx: output.bytes,
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
        calibrate: opts.calibrate, calibrationData: opts.calibrationData, fitHead: opts.fitHead, validate: opts.validate,
      },
      backend: backend.name,
      timings: clock.wall,
      cpuTimings: clock.cpu,
      calibration,
      head,
      validation,
    },
  };
}

/**
 * Starts writing the output. A model self-contained in one protobuf is encoded once and its file
 * written in the background (on libuv's threads while onnxruntime checks the bytes); a model that
 * keeps tensors in external data (over 2 GiB, or exported that way) is written with one data file
 * `<output>.data` into a staging directory, and checked there from its path.
 */
function stageOutput(model: OnnxModel, output: string | undefined, source: ModelSource):
  { bytes: Uint8Array; checked: Uint8Array | string; staged?: StagedFile; dataFile?: string } {
  if (!allTensors(model.proto).some(isExternal)) {
    const bytes = encodeModel(model);
    return { bytes, checked: bytes, staged: output === undefined ? undefined : stageFile(output, bytes) };
  }
  if (output === undefined) {
    const name = typeof source === 'string' ? source : 'the model';
    throw new GhnError('usage', `${name} keeps tensors in external data files: give an output path (the option \`output\`, -o on the command line) to write the predicted model and its data file beside it`);
  }
  const staged = stageModelWithData(model, output);
  return { bytes: staged.bytes, checked: staged.stagedPath, staged, dataFile: staged.dataFile };
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
