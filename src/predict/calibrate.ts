/**
 * Calibration of predicted weights for the way a user runs them: one forward pass that
 * - rescales each weight layer so its output has unit standard deviation (LSUV-style, Mishkin &
 *   Matas 2016): deep BN-free nets and the default eval export (BN folded away) would otherwise
 *   explode with He-scaled weights (ResNet-50's logits reach 1e6). Only whole tensors are rescaled:
 *   the GHN's predicted directions are kept;
 * - estimates every BatchNorm's running statistics. A GHN is trained with BN on batch statistics;
 *   an exported model runs BN on its running statistics, which the file holds for PyTorch's initial
 *   weights (mean 0, variance 1), so a predicted model deployed as written classified at chance
 *   (resnet_small 9.4% vs 72.9% with batch statistics). The pass runs each BN on the batch's
 *   statistics, as in training, and writes them as the running statistics.
 *
 * The batch is real images when the caller has them (the GHN's training data, normalized as the GHN
 * saw it), otherwise standard-normal noise. The pass runs in onnxruntime-node: the model gets,
 * after every weight layer, nodes that compute the factor and apply it, and BN nodes that use batch
 * statistics (see calibration-graph.ts); factors and statistics come back as extra outputs.
 *
 * BN statistics need several images, not just many values: a deep channel's mean varies from image
 * to image far more than over one image's few positions, and statistics of one image leave that
 * variance out, so every BN of the deployed model amplifies a new image's deviations and the errors
 * compound (mobilenet_v3_small's logits reached std 123 on noise calibrated with one 224² image).
 * So noise runs at least MIN_NOISE_IMAGES images, and a batch over PASS_VALUES input values runs in
 * several passes: the first computes the factors (applied to the weights before the others) and
 * statistics; each further pass runs the scaled model with every BN normalizing by the statistics of
 * all images so far, merged with its own, which are what is written at the end.
 */
import * as ort from 'onnxruntime-node';
import type { ComputationGraph } from '../graph/index.js';
import { untieRunningStatistics } from '../graph/running-statistics.js';
import { replaceFloatInitializer, type WrittenParameters } from '../graph/write-parameters.js';
import { replaceTensorData } from '../onnx/index.js';
import { createRng, gaussian } from '../util/random.js';
import { calibrationModel } from './calibration-graph.js';
import { scaleInPlace } from './float-kernels.js';
import { withSession } from './session-cache.js';
import { concreteInputShape } from './validate.js';

/** Roles rescaled together with their op's output. */
const SCALED_ROLES = new Set(['conv.weight', 'conv.bias', 'linear.weight', 'linear.bias']);
const WEIGHT_ROLES = new Set(['conv.weight', 'linear.weight']);
/** Factors are kept in this range so a dead layer (std ≈ 0) is not blown up. */
export const MIN_SCALE = 1e-3;
export const MAX_SCALE = 1e3;
/** Noise samples: about 2^17 input values (167 of 1×28×28), at least MIN_NOISE_IMAGES when there are BN statistics to estimate, at most 128. */
const NOISE_VALUES = 1 << 17;
const MAX_NOISE_BATCH = 128;
/**
 * Enough images for BN statistics that hold on images outside the batch: on the 12 BN-preserving
 * torchvision exports that failed, 8 noise images left logit stds up to 62, 32 brought all under 10.
 */
export const MIN_NOISE_IMAGES = 32;
/**
 * Input values per pass (14 images of 3×224×224, 256 of CIFAR-10's 3×32×32): bounds the pass's
 * memory, which grows with the batch (efficientnet_v2_s took 5 GiB for 32 images of 3×384×384 at once).
 */
export const PASS_VALUES = 1 << 21;

/** Images to calibrate on: `count` × the model's input shape [C, H, W…], normalized as the GHN's training data. */
export interface CalibrationImages {
  data: Float32Array;
  count: number;
  shape: readonly number[];
  /** Where they come from, for the report (e.g. "fashion-mnist/train"). */
  source: string;
}

/**
 * Output standard deviations a layer keeps (see calibration-graph.ts). Plain LSUV ([1, 1]) also
 * rescales layers the GHN scaled on purpose, which changes residual and LayerNorm nets' functions
 * (convnext_small 67.3% → 51.0% test accuracy, fixtures, 2,000 images); [0.1, 10] only fixes
 * exploding or vanishing layers: over the 11 fixture architectures 44.2% mean vs 42.9% for LSUV.
 */
export const DEFAULT_STD_BAND = Object.freeze({ low: 0.1, high: 10 });

export interface CalibrationOptions {
  band?: { low: number; high: number };
  /** Real images of the model's input shape; standard-normal noise when absent or of another shape. */
  images?: CalibrationImages;
  seed?: number;
  /** Input values per pass (default PASS_VALUES); a larger batch runs in several passes. */
  passValues?: number;
}

export interface CalibrationReport {
  layers: number;
  /** Geometric mean and extremes of the applied factors. */
  meanScale: number;
  minScale: number;
  maxScale: number;
  /** BatchNorm nodes whose running statistics were estimated. */
  batchNorms: number;
  /** What the pass ran on: the images' source, or "standard-normal noise". */
  data: string;
  batch: number;
  /** Forward passes the batch ran in. */
  passes: number;
  ms: number;
}

/** The batch to feed for `input`: the images when they fit its shape, else noise. */
function calibrationFeed(inputShape: number[], options: CalibrationOptions, minImages: number): { data: Float32Array; shape: number[]; source: string } {
  const images = options.images;
  const sampleShape = inputShape.slice(1);
  if (images && images.count > 0 && images.shape.length === sampleShape.length && images.shape.every((d, k) => d === sampleShape[k])) {
    return { data: images.data, shape: [images.count, ...sampleShape], source: images.source };
  }
  const perSample = Math.max(1, sampleShape.reduce((a, b) => a * b, 1));
  const batch = Math.max(minImages, Math.min(MAX_NOISE_BATCH, Math.round(NOISE_VALUES / perSample)));
  const shape = [batch, ...sampleShape];
  return { data: noise(options.seed ?? 0, shape.reduce((a, b) => a * b, 1)), shape, source: 'standard-normal noise' };
}

/**
 * The last noise batch drawn, kept for the next calibration with the same seed and size: every
 * sample of `predict --samples` (and every call of a server) calibrates on the same noise, ~20 ms of
 * Gaussian draws for one 3×224×224 image. Only read (fed to onnxruntime), never changed.
 */
let lastNoise: { seed: number; data: Float32Array } | undefined;

function noise(seed: number, size: number): Float32Array {
  if (lastNoise && lastNoise.seed === seed && lastNoise.data.length === size) return lastNoise.data;
  const rng = createRng(seed);
  const data = new Float32Array(size);
  for (let i = 0; i < data.length; i++) data[i] = gaussian(rng);
  lastNoise = { seed, data };
  return data;
}

/**
 * Rescales `tensors` (slot id → values, stored layout; changed in place) and the matching
 * initializers of `written` (the model with one initializer per slot, from writeParameters, which
 * the forward pass runs; they end up holding the same arrays), and writes every inference-form
 * BatchNorm's running statistics into `written` (after giving each node tensors of its own).
 */
export async function calibrate(
  graph: ComputationGraph, written: WrittenParameters, tensors: Map<string, Float32Array>, options: CalibrationOptions = {},
): Promise<CalibrationReport> {
  const t0 = performance.now();
  // Which value each weight op writes, and which slots scale with it.
  const slotsByValue = new Map<string, string[]>();
  for (const op of graph.ops) {
    const slots = graph.slotsOf(op);
    if (!slots.some((s) => WEIGHT_ROLES.has(s.role)) || op.outputs.length !== 1) continue;
    slotsByValue.set(op.outputs[0]!, slots.filter((s) => SCALED_ROLES.has(s.role)).map((s) => s.id));
  }
  untieRunningStatistics(written.model);
  const proto = written.model.proto;
  const initializers = new Map((proto.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  // The predicted tensors are fed, not encoded into the model: no 100 MB copy for ResNet-50.
  const weights = new Map<string, ort.Tensor>();
  for (const [slotId, values] of tensors) {
    weights.set(written.initializerOf.get(slotId)!, new ort.Tensor('float32', values, [...graph.slots.get(slotId)!.storedShape]));
  }
  const band = options.band ?? DEFAULT_STD_BAND;
  const model = calibrationModel(written.model, [...slotsByValue.keys()], weights, { ...band, min: MIN_SCALE, max: MAX_SCALE });

  // Only BN statistics need many images; layer scales are whole-tensor stds, which one image's many
  // positions estimate (a BN-free ResNet-50 calibrates on 1 noise image instead of 32: ~2 s less).
  const minImages = model.statisticOutputs.length ? MIN_NOISE_IMAGES : 1;
  const inputs = model.dataInputs.map((input) => ({ name: input.name!, ...calibrationFeed(concreteInputShape(input, 1), options, minImages) }));
  const source = inputs.at(-1)?.source ?? 'standard-normal noise';
  const batch = inputs.length ? Math.min(...inputs.map((f) => f.shape[0]!)) : 1;
  const perSample = Math.max(1, ...inputs.map((f) => f.shape.slice(1).reduce((a, b) => a * b, 1)));
  const perPass = Math.max(1, Math.floor((options.passValues ?? PASS_VALUES) / perSample));
  /** The data feeds for images [from, to) of the batch. */
  const dataFeeds = (from: number, to: number): Record<string, ort.Tensor> => Object.fromEntries(inputs.map((f) => {
    const size = f.shape.slice(1).reduce((a, b) => a * b, 1);
    return [f.name, new ort.Tensor('float32', f.data.subarray(from * size, to * size), [to - from, ...f.shape.slice(1)])];
  }));
  // Few runs per session: basic optimizations suffice (see validate.ts). The session is kept for the
  // next calibration of the same architecture (session-cache.ts). Spinning threads would burn
  // the cores of a shared machine. Errors only: the running statistics of BN nodes run on batch
  // statistics are unused initializers here.
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'basic', logSeverityLevel: 3, extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
  const statistics = model.statisticOutputs;
  /** Per BN: the mean and biased variance over the images so far, and the [N, C, L] one pass pooled. */
  let merged: { mean: Float32Array; variance: Float32Array; pooled: BigInt64Array }[] = [];
  const scales = new Map<string, number>();
  await withSession(model.bytes, sessionOptions, async (session) => {
    const first = Math.min(batch, perPass);
    const wanted = [...model.scaleOutputs.values(), ...statistics.flatMap((s) => [s.mean, s.variance, s.pooledShape])];
    const results = await session.run({ ...Object.fromEntries(weights), ...dataFeeds(0, first) }, wanted);
    for (const [value, output] of model.scaleOutputs) scales.set(value, (results[output]!.data as Float32Array)[0]!);
    merged = statistics.map((s) => ({
      mean: results[s.mean]!.data as Float32Array, variance: results[s.variance]!.data as Float32Array, pooled: results[s.pooledShape]!.data as BigInt64Array,
    }));
  });

  // The factors go into both the slot values (in place: no second 100 MB for ResNet-50; the fed
  // tensors share these arrays, so later passes run the scaled model) and the written model's
  // tensors, which adopt the same arrays.
  // A factor of 1 (a layer inside the band: most of them) leaves the values as they are, so they
  // are not touched: ResNet-50 scales 26 of 54 layers (24 M of its 25.5 M values); float-kernels.ts
  // scales them in WebAssembly SIMD.
  for (const [value, scale] of scales) {
    if (scale === 1) continue;
    for (const slotId of slotsByValue.get(value)!) {
      const values = tensors.get(slotId)!;
      scaleInPlace(values, scale);
      replaceTensorData(initializers.get(written.initializerOf.get(slotId)!)!, values, { adopt: true });
    }
  }

  let passes = 1;
  if (batch > perPass && statistics.length > 0) {
    const accumulating = calibrationModel(written.model, [], weights, { ...band, min: MIN_SCALE, max: MAX_SCALE }, { accumulate: true });
    const acc = accumulating.statisticOutputs;
    const weightInput = accumulating.weightInput!;
    await withSession(accumulating.bytes, sessionOptions, async (session) => {
      const wanted = acc.flatMap((s) => [s.mean, s.variance]);
      for (let from = perPass; from < batch; from += perPass, passes++) {
        const to = Math.min(batch, from + perPass);
        const feeds: Record<string, ort.Tensor> = {
          ...Object.fromEntries(weights), ...dataFeeds(from, to),
          // This pass's share of the images so far: positions per image cancel out of the weight.
          [weightInput]: new ort.Tensor('float32', Float32Array.of((to - from) / to), []),
        };
        acc.forEach((s, k) => {
          feeds[s.previousMean!] = new ort.Tensor('float32', merged[k]!.mean, [merged[k]!.mean.length]);
          feeds[s.previousVariance!] = new ort.Tensor('float32', merged[k]!.variance, [merged[k]!.variance.length]);
        });
        const results = await session.run(feeds, wanted);
        merged = acc.map((s, k) => ({ ...merged[k]!, mean: results[s.mean]!.data as Float32Array, variance: results[s.variance]!.data as Float32Array }));
      }
    });
  }
  statistics.forEach((s, k) => {
    const { mean, variance, pooled } = merged[k]!;
    // Running variances are unbiased (PyTorch's convention); batch variances are not.
    const count = batch * Number(pooled[2]);
    replaceFloatInitializer(written, s.runningMean, Float32Array.from(mean));
    replaceFloatInitializer(written, s.runningVariance, Float32Array.from(variance, (v) => (count > 1 ? (v * count) / (count - 1) : v)));
  });

  const all = [...scales.values()];
  const logMean = all.reduce((a, s) => a + Math.log(s), 0) / Math.max(1, all.length);
  return {
    layers: all.length,
    meanScale: Math.exp(logMean),
    minScale: all.length ? Math.min(...all) : 1,
    maxScale: all.length ? Math.max(...all) : 1,
    batchNorms: statistics.length,
    data: source,
    batch,
    passes,
    ms: performance.now() - t0,
  };
}

