/**
 * `predictSamples`: K initializations of one architecture from one GHN forward pass.
 *
 * With a latent GHN (ghn/latent.ts), sample i is the GHN's prediction for the latent draw of seed
 * `seed + i` (sample 0: z = 0, the deterministic prediction); the graph transformer runs once and
 * each further sample costs a decoder pass. The samples keep the deterministic prediction's share t
 * of PyTorch's default init (none where it is 0), each with the default draw of its own seed.
 *
 * Without a latent, sample i mixes
 * the raw prediction with a default-init draw from seed `seed + i` (the only thing that differs
 * between samples), at the share t the deterministic prediction chose; when that is 0 (the
 * prediction alone) the samples use SAMPLE_MIX so that they differ at all. Each sample then gets
 * its own calibration and classifier fit, since both depend on the weights.
 *
 * Invariant: when the deterministic prediction mixes (t > 0), sample 0 is it (same tensors; only
 * the `ghn.sample` metadata entry is added).
 *
 * Checks: sample 0 is loaded and run in onnxruntime like a single prediction; samples 1…K−1 have the
 * same structure by construction, so each is checked against sample 0's (byte-identical graph, every
 * float value finite; validate.ts checkSameStructure): on ResNet-50 ~0.05 s instead of ~0.25 s of
 * session creation and forward pass per sample. Each was run in onnxruntime by its own calibration.
 *
 * Overlap: sample i+1's default-init mix is computed on a worker thread (mix-worker.ts) while sample
 * i calibrates, is checked and written on the main thread; on 2 cores that hides most of the mix
 * (ResNet-50: ~0.14 s a sample). The worker holds a copy of the prediction and one sample's arrays
 * ahead. The values are the same: the same function of the same seeds.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GhnError } from '../errors.js';
import type { HeadFitReport } from '../predict/fit-head.js';
import type { StagedFile } from '../predict/staged-file.js';
import type { ModelStructure } from '../predict/validate.js';
import { MixWorker } from '../postprocess/mix-worker.js';
import { drawSampleLatent, hasLatent } from '../ghn/latent.js';
import { predictParametersAsync } from '../ghn/predict-params.js';
import { StageClock } from './stage-clock.js';
import type { ModelSource } from './inspect.js';
import type { PredictOptions } from './predict-options.js';
import {
  candidateInitializer, chooseMix, emitPrediction, headFitter, preparePrediction, PREDICT_STAGES,
  type Initialized, type MixReport, type PredictResult, type PredictStage,
} from './predict.js';
import type { StageTimes } from './stage-clock.js';

/**
 * Default-init share of the samples when the deterministic prediction is the GHN alone (t = 0).
 * Chosen by measurement (docs/benchmarks.md, "Samples and ensembles"; resnet_basic, mobilenet_v2,
 * K = 8): 0.1 gave resnet_basic 3.5% disagreement, 0.3 put samples 3.7 / 6.3 points below the
 * deterministic prediction; 0.2 kept the mean sample within 1.5 points with 7.5% / 16.9% disagreement.
 */
export const SAMPLE_MIX = 0.2;
/** The ONNX metadata key of a sample's index, count, mix seed and share. */
export const SAMPLE_METADATA_KEY = 'ghn.sample';

export interface PredictSamplesOptions extends Omit<PredictOptions, 'output'> {
  /** Write sample i to `<outputDir>/<name>.<i>.onnx` (created if missing). */
  outputDir?: string;
  /** File name stem (default: the model file's name without `.onnx`, or `model` for bytes). */
  name?: string;
  /** Share of the default draw when the deterministic prediction does not mix (default SAMPLE_MIX). */
  sampleMix?: number;
  /**
   * false (with outputDir): each sample's arrays are let go once its file is written, so memory stays
   * near one sample's (ResNet-50 K = 8: ~2 GB held otherwise); its result then has no `tensors` and its
   * `onnx` reads the written file. Default true.
   */
  keepTensors?: boolean;
  /** Mix samples 1…K−1 on a worker thread ahead of time (default: with K ≥ 2 and at least MIX_WORKER_VALUES parameters). */
  mixWorker?: boolean;
}

/** Below this many parameters the worker's start (~50 ms) and copy cost more than the mixes it hides. */
export const MIX_WORKER_VALUES = 1 << 20;

export interface SampleInfo {
  index: number;
  count: number;
  /** Seed of this sample's default-init draw: the options' seed + index. */
  seed: number;
  /** Share t of the default draw in this sample. */
  mix: number;
  /** The share the deterministic prediction chose (samples use SAMPLE_MIX where it is 0, without a latent). */
  deterministicMix: number;
  /** Present with a latent GHN: the sample's latent was drawn from `seed` (sample 0: z = 0). */
  latent?: boolean;
}

export interface SampleResult extends PredictResult {
  sample: SampleInfo;
  /** Where it was written, with outputDir. */
  output?: string;
}

export interface PredictSamplesResult {
  samples: SampleResult[];
  /** How the deterministic prediction's share was chosen. */
  mix: MixReport;
  /** Wall / CPU ms of the shared stages (load, graph, GHN, choosing the share); each sample's report has its own. */
  timings: StageTimes<PredictStage>;
  cpuTimings: StageTimes<PredictStage>;
}

/** A count of samples: a positive integer. */
export function checkSampleCount(count: unknown): number {
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1) {
    throw new GhnError('usage', `samples must be a positive integer, got ${JSON.stringify(count)}`);
  }
  return count;
}

/** `<dir>/<name>.<i>.onnx`. */
export function samplePath(dir: string, name: string, index: number): string {
  return path.join(dir, `${name}.${index}.onnx`);
}

/** The stem of a model file: `a/lenet5.onnx` → `lenet5`. */
export function sampleName(source: ModelSource, name?: string): string {
  if (name !== undefined) return name;
  if (typeof source !== 'string') return 'model';
  const base = path.basename(source);
  return base.endsWith('.onnx') ? base.slice(0, -'.onnx'.length) : base;
}

/** An output directory must be a directory or not exist yet. */
export function checkOutputDir(dir: string): void {
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) {
    throw new GhnError('usage', `output directory ${dir} is an existing file`);
  }
}

export async function predictSamples(source: ModelSource, count: number, options: PredictSamplesOptions = {}): Promise<PredictSamplesResult> {
  checkSampleCount(count);
  const { outputDir, name, sampleMix = SAMPLE_MIX, keepTensors = true, mixWorker, ...predictOptions } = options;
  if (!keepTensors && outputDir === undefined) throw new GhnError('usage', 'keepTensors: false needs an outputDir');
  if (!(typeof sampleMix === 'number' && sampleMix > 0 && sampleMix <= 1)) {
    throw new GhnError('usage', `sampleMix must be a number in (0, 1], got ${JSON.stringify(sampleMix)}`);
  }
  if (outputDir !== undefined) checkOutputDir(outputDir);
  const stem = sampleName(source, name);
  // A latent GHN's further samples reuse the deterministic pass's node embeddings.
  const p = await preparePrediction(source, predictOptions, count > 1);
  const { opts, data } = p;

  // The deterministic prediction's share: chosen as predict chooses it ('auto' with labels), else given.
  let chosen: (Initialized & { head?: HeadFitReport; mix: MixReport }) | undefined;
  let mix: MixReport;
  if (opts.mix === 'auto' && data.labeled) {
    // Keep the raw prediction intact for the samples that follow.
    chosen = await chooseMix(opts.mix, data.labeled, candidateInitializer(p, opts.seed, true), headFitter(p));
    mix = chosen.mix;
  } else {
    mix = { t: opts.mix === 'auto' ? 0 : opts.mix, chosenBy: opts.mix === 'auto' ? 'no-labels' : 'option' };
  }
  const latent = hasLatent(p.ghn.model);
  // A latent GHN's samples differ by their draws; without one, only a mix makes them differ.
  const t = mix.t > 0 || latent ? mix.t : sampleMix;
  const shared = { timings: p.clock.wall, cpuTimings: p.clock.cpu };
  const encoded = p.encoded;

  if (outputDir !== undefined) fs.mkdirSync(outputDir, { recursive: true });
  const samples: SampleResult[] = [];
  const staged: StagedFile[] = [];
  let reference: ModelStructure | undefined;
  const needsMix = (index: number) => !(index === 0 && chosen && chosen.t === t);
  // The worker mixes the one raw prediction; latent samples each have their own.
  const worker = !latent && (mixWorker ?? (count >= 2 && p.graph.parameterCount >= MIX_WORKER_VALUES)) ? new MixWorker(p.graph, p.raw, t) : undefined;
  /** Sample `index`'s mix, started now on the worker. */
  const mixAhead = (index: number): Promise<Map<string, Float32Array>> => {
    const mixed = worker!.mix(opts.seed + index);
    mixed.catch(() => {}); // reported by the sample that awaits it; unobserved if an earlier sample fails
    return mixed;
  };
  let ahead: Promise<Map<string, Float32Array>> | undefined;
  try {
    for (let index = 0; index < count; index++) {
      const seed = opts.seed + index;
      const premixed = ahead;
      ahead = worker && index + 1 < count && needsMix(index + 1) ? mixAhead(index + 1) : undefined;
      // Each sample's stages on a clock of its own (the shared ones stay in `shared`).
      const own = { ...p, clock: new StageClock(PREDICT_STAGES) };
      let candidate: Initialized & { head?: HeadFitReport; mix: MixReport };
      if (index === 0 && chosen && chosen.t === t) {
        candidate = chosen; // the deterministic prediction: same seed and share
        chosen = undefined; // its arrays are sample 0's from here on (released with it when not kept)
      } else {
        if (encoded && index > 0) {
          const z = drawSampleLatent(encoded.enc, p.ghn.model.config.latentDim!, seed);
          own.raw = await own.clock.measureAsync('ghn', () => predictParametersAsync(p.ghn.model, encoded.enc, z, encoded.nodes));
        }
        const c = await candidateInitializer(own, seed, true, premixed)(t);
        const head = data.labeled ? await headFitter(own)(c, data.labeled, true) : undefined;
        candidate = { ...c, head, mix };
      }
      const sample: SampleInfo = { index, count, seed, mix: t, deterministicMix: mix.t, ...(latent ? { latent: true } : {}) };
      const output = outputDir === undefined ? undefined : samplePath(outputDir, stem, index);
      const check = reference ? { like: { structure: reference, label: 'sample 0' } } : { recordStructure: index === 0 };
      const emitted = await emitPrediction(own, candidate, output, { [SAMPLE_METADATA_KEY]: JSON.stringify(sample) }, check);
      reference ??= emitted.structure;
      if (emitted.staged) staged.push(emitted.staged);
      if (keepTensors || output === undefined) {
        samples.push({ ...emitted.result, sample, ...(output === undefined ? {} : { output }) });
      } else {
        // Only the report and the file's path stay: the arrays go with the write's last reference.
        const file = output;
        samples.push({
          get onnx() {
            return new Uint8Array(fs.readFileSync(file));
          },
          report: emitted.result.report, tensors: new Map(), initializerOf: emitted.result.initializerOf, sample, output,
        });
      }
    }
    // Every sample checked: now the files go into place (each complete or absent).
    for (const s of staged) await s.commit();
  } catch (err) {
    await Promise.all(staged.map((s) => s.discard()));
    throw err;
  } finally {
    await worker?.close();
    p.encoded?.nodes.dispose();
  }
  return { samples, mix, ...shared };
}
