/**
 * Output-scale calibration of predicted weights (LSUV-style, Mishkin & Matas 2016, data-free).
 *
 * A GHN is trained with BatchNorm on batch statistics, where a layer's weight scale does not matter.
 * Deployed models run BatchNorm on running statistics (fresh: mean 0, variance 1, i.e. identity), and
 * the default eval export folds BN away altogether; there, He-scaled weights make residual networks
 * explode (ResNet-50's logits reach 1e6). One forward pass on a standard-normal batch fixes it: at each
 * layer with a weight, in topological order, the output is rescaled to unit standard deviation and the
 * layer's weight and bias take the same factor, so later layers see the calibrated activations.
 * Only whole tensors are rescaled: the GHN's predicted directions are kept.
 *
 * The pass runs in onnxruntime-node: the model gets, after every weight layer, nodes that compute the
 * factor from the layer's output and apply it, so the sequential rescaling happens inside one native
 * forward pass (see calibration-graph.ts); the factors come back as extra outputs.
 */
import * as ort from 'onnxruntime-node';
import type { ComputationGraph } from '../graph/index.js';
import type { WrittenParameters } from '../graph/write-parameters.js';
import { replaceTensorData } from '../onnx/index.js';
import { createRng, gaussian } from '../util/random.js';
import { calibrationModel } from './calibration-graph.js';
import { concreteInputShape } from './validate.js';

/** Roles rescaled together with their op's output. */
const SCALED_ROLES = new Set(['conv.weight', 'conv.bias', 'linear.weight', 'linear.bias']);
const WEIGHT_ROLES = new Set(['conv.weight', 'linear.weight']);
/** Factors are kept in this range so a dead layer (std ≈ 0) is not blown up. */
export const MIN_SCALE = 1e-3;
export const MAX_SCALE = 1e3;

export interface CalibrationReport {
  layers: number;
  /** Geometric mean and extremes of the applied factors. */
  meanScale: number;
  minScale: number;
  maxScale: number;
  ms: number;
}

/**
 * Rescales `tensors` (slot id → values, stored layout; changed in place) and the matching
 * initializers of `written` (the model with one initializer per slot, from writeParameters, which
 * the forward pass runs; they end up holding the same arrays).
 */
export async function calibrateScales(
  graph: ComputationGraph, written: WrittenParameters, tensors: Map<string, Float32Array>, options: { batch?: number; seed?: number } = {},
): Promise<CalibrationReport> {
  const t0 = performance.now();
  // Which value each weight op writes, and which slots scale with it.
  const slotsByValue = new Map<string, string[]>();
  for (const op of graph.ops) {
    const slots = graph.slotsOf(op);
    if (!slots.some((s) => WEIGHT_ROLES.has(s.role)) || op.outputs.length !== 1) continue;
    slotsByValue.set(op.outputs[0]!, slots.filter((s) => SCALED_ROLES.has(s.role)).map((s) => s.id));
  }
  const proto = written.model.proto;
  const initializers = new Map((proto.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  // The predicted tensors are fed, not encoded into the model: no 100 MB copy for ResNet-50.
  const weights = new Map<string, ort.Tensor>();
  for (const [slotId, values] of tensors) {
    weights.set(written.initializerOf.get(slotId)!, new ort.Tensor('float32', values, [...graph.slots.get(slotId)!.storedShape]));
  }
  const model = calibrationModel(written.model, [...slotsByValue.keys()], weights, { min: MIN_SCALE, max: MAX_SCALE });

  // One sample: each layer's statistic still pools C·H·W (or tokens·width) values, and the pass
  // costs half of batch 2 (the same factors to 3 digits on ResNet-50).
  const rng = createRng(options.seed ?? 0);
  const feeds: Record<string, ort.Tensor> = Object.fromEntries(weights);
  for (const input of model.dataInputs) {
    const shape = concreteInputShape(input, options.batch ?? 1);
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = gaussian(rng);
    feeds[input.name!] = new ort.Tensor('float32', data, shape);
  }
  // One run: basic optimizations suffice (see validate.ts). Spinning threads would burn the cores of
  // a shared machine.
  const session = await ort.InferenceSession.create(model.bytes, {
    graphOptimizationLevel: 'basic', extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
  const scales = new Map<string, number>();
  try {
    const results = await session.run(feeds, [...model.scaleOutputs.values()]);
    for (const [value, output] of model.scaleOutputs) scales.set(value, (results[output]!.data as Float32Array)[0]!);
  } finally {
    await session.release();
  }

  // The factors go into both the slot values (in place: no second 100 MB for ResNet-50) and the
  // written model's tensors, which adopt the same arrays.
  for (const [value, scale] of scales) {
    for (const slotId of slotsByValue.get(value)!) {
      const values = tensors.get(slotId)!;
      for (let i = 0; i < values.length; i++) values[i]! *= scale;
      replaceTensorData(initializers.get(written.initializerOf.get(slotId)!)!, values, { adopt: true });
    }
  }
  const all = [...scales.values()];
  const logMean = all.reduce((a, s) => a + Math.log(s), 0) / Math.max(1, all.length);
  return {
    layers: all.length,
    meanScale: Math.exp(logMean),
    minScale: all.length ? Math.min(...all) : 1,
    maxScale: all.length ? Math.max(...all) : 1,
    ms: performance.now() - t0,
  };
}
