/**
 * The model the calibration pass runs: the written model with, after each calibrated value v,
 *   s = clamp(clamp(1, low / std(v), high / std(v)), min, max)   (1 where std(v) = 0: a constant output has no scale to fix),
 *   v ← v · s,
 * so every later layer sees the calibrated activation, and s as an extra graph output. std is the
 * population standard deviation over the whole tensor. Every inference-form BatchNormalization runs
 * on the batch's statistics instead (as the GHN was trained), which become graph outputs too: they
 * are what the written running statistics should be. The fed tensors (the predicted weights)
 * become graph inputs instead of initializers, so the model bytes hold only the graph and the
 * untouched constants (inline, also those the model keeps in external data). Needs opset ≥ 9 (Where).
 *
 * With `accumulate`, the model is for the passes after the first (see calibrate.ts): no value is
 * rescaled, and each BatchNormalization normalizes with its statistics so far (fed: mean and biased
 * variance per channel, and w = this batch's share of all images) merged with this batch's; the
 * merged statistics are the outputs, fed to the next pass.
 */
import type * as ort from 'onnxruntime-node';
import { encodeModel, inlinedCopy, isExternal } from '../onnx/index.js';
import { AttributeType, DataType, type NodeProto, type OnnxModel, type TensorProto, type ValueInfoProto } from '../onnx/types.js';

export interface CalibrationModel {
  bytes: Uint8Array;
  /** Inputs the caller feeds with data (everything but the fed weights). */
  dataInputs: ValueInfoProto[];
  /** Calibrated value → the graph output holding its factor. */
  scaleOutputs: Map<string, string>;
  /** Per BatchNormalization run on batch statistics: the graph outputs holding them. */
  statisticOutputs: BatchStatisticOutputs[];
  /** With `accumulate`: the scalar input taking this batch's share of all images so far. */
  weightInput?: string;
}

/**
 * A value whose std lies in [low, high] keeps its scale; outside, it is brought to the nearer end.
 * Factors stay within [min, max] so a dead layer (std ≈ 0) is not blown up.
 */
export interface CalibrationRange {
  low: number;
  high: number;
  min: number;
  max: number;
}

export interface BatchStatisticOutputs {
  /** The node's running-mean and running-variance initializers. */
  runningMean: string;
  runningVariance: string;
  /** Graph outputs: the batch mean and (biased) variance per channel, and the [N, C, L] shape they pooled. */
  mean: string;
  variance: string;
  pooledShape: string;
  /** With `accumulate`: the graph inputs taking the statistics so far (same layout as mean and variance). */
  previousMean?: string;
  previousVariance?: string;
}

export interface CalibrationModelOptions {
  /** Merge each BatchNorm's batch statistics with fed earlier ones (the `weight` input is the batch's share). */
  accumulate?: boolean;
}

const scalar = (name: string, value: number): TensorProto => ({ name, dataType: DataType.FLOAT, dims: [], floatData: [value] });
const int64s = (name: string, values: number[]): TensorProto => ({ name, dataType: DataType.INT64, dims: [values.length], int64Data: values });
const node = (opType: string, input: string[], output: string, attribute?: NodeProto['attribute']): NodeProto =>
  ({ opType, input, output: [output], ...(attribute ? { attribute } : {}) });

/** ReduceMean over `axes` keeping dims: an attribute before opset 18, an input from 18 on. */
function reduceMean(input: string, output: string, axes: { name: string; values: number[] }, opset: number): NodeProto {
  return opset >= 18
    ? node('ReduceMean', [input, axes.name], output)
    : node('ReduceMean', [input], output, [{ name: 'axes', type: AttributeType.INTS, ints: axes.values }]);
}

/** A BatchNormalization in inference form (one output) whose statistics can be taken from the batch. */
function isInferenceBatchNorm(n: NodeProto): boolean {
  return n.opType === 'BatchNormalization' && (n.output ?? []).filter((o) => o).length === 1 && (n.input ?? []).length === 5;
}

function epsilonOf(n: NodeProto): number {
  return n.attribute?.find((a) => a.name === 'epsilon')?.f ?? 1e-5;
}

/**
 * Nodes computing BatchNorm `bn` with the batch's statistics, rank-agnostic: x is viewed as
 * [N, C, L] (L = 1 for [N, C] inputs), pooled over N and L, normalized, and reshaped back.
 */
function batchStatisticNodes(
  bn: NodeProto, c: (name: string) => string, opset: number, fresh: (n: string) => string, accumulate: boolean,
): { nodes: NodeProto[]; outputs: Omit<BatchStatisticOutputs, 'runningMean' | 'runningVariance'> } {
  const [x, scale, bias] = bn.input!;
  const y = bn.output![0]!;
  const t = (step: string) => fresh(`${y}::batch_statistics.${step}`);
  const names = {
    shape: t('shape'), leading: t('leading'), viewShape: t('view_shape'), view: t('view'), mean: t('mean'), centred: t('centred'),
    squares: t('squares'), variance: t('variance'), shifted: t('shifted'), std: t('std'), normalized: t('normalized'),
    scale: t('scale'), bias: t('bias'), scaled: t('scaled'), shiftedOut: t('out'), epsilon: t('epsilon'),
    meanOut: t('mean_out'), varianceOut: t('variance_out'), pooledShape: t('pooled_shape'),
  };
  const axes = { name: c('axes'), values: [0, 2] };
  const nodes: NodeProto[] = [
    node('Shape', [x!], names.shape),
    node('Slice', [names.shape, c('zero64'), c('two64')], names.leading),
    node('Concat', [names.leading, c('minus1')], names.viewShape, [{ name: 'axis', type: AttributeType.INT, i: 0 }]),
    node('Reshape', [x!, names.viewShape], names.view),
    reduceMean(names.view, names.mean, axes, opset),
    node('Sub', [names.view, names.mean], names.centred),
    node('Mul', [names.centred, names.centred], names.squares),
    reduceMean(names.squares, names.variance, axes, opset),
  ];
  // What the node normalizes with: this batch's statistics, or (accumulate) those merged with the
  // earlier batches' by the parallel-variance formula, m = m₀ + w·d, v = (1−w)·v₀ + w·v₁ + w(1−w)·d².
  let mean = names.mean, centred = names.centred, variance = names.variance;
  let previous: { previousMean: string; previousVariance: string } | undefined;
  if (accumulate) {
    previous = { previousMean: t('previous_mean'), previousVariance: t('previous_variance') };
    const m = {
      mean0: t('previous_mean_view'), variance0: t('previous_variance_view'), d: t('merge_d'), wd: t('merge_wd'), mean: t('merged_mean'),
      keep: t('merge_keep'), old: t('merge_old'), fresh: t('merge_fresh'), spread: t('merge_spread'), spreadW: t('merge_spread_w'),
      partial: t('merge_partial'), variance: t('merged_variance'), centred: t('merged_centred'), sum: t('merge_sum'),
    };
    nodes.push(
      node('Reshape', [previous.previousMean, c('channelView')], m.mean0),
      node('Reshape', [previous.previousVariance, c('channelView')], m.variance0),
      node('Sub', [names.mean, m.mean0], m.d),
      node('Mul', [m.d, c('weight')], m.wd),
      node('Add', [m.mean0, m.wd], m.mean),
      node('Sub', [c('one'), c('weight')], m.keep),
      node('Mul', [m.variance0, m.keep], m.old),
      node('Mul', [names.variance, c('weight')], m.fresh),
      node('Mul', [m.wd, m.d], m.spreadW),
      node('Mul', [m.spreadW, m.keep], m.spread),
      node('Add', [m.old, m.fresh], m.partial),
      node('Add', [m.partial, m.spread], m.variance),
      node('Sub', [names.view, m.mean], m.centred),
    );
    mean = m.mean;
    variance = m.variance;
    centred = m.centred;
  }
  nodes.push(
    node('Constant', [], names.epsilon, [{ name: 'value', type: AttributeType.TENSOR, t: scalar('', epsilonOf(bn)) }]),
    node('Add', [variance, names.epsilon], names.shifted),
    node('Sqrt', [names.shifted], names.std),
    node('Div', [centred, names.std], names.normalized),
    node('Reshape', [scale!, c('channelView')], names.scale),
    node('Reshape', [bias!, c('channelView')], names.bias),
    node('Mul', [names.normalized, names.scale], names.scaled),
    node('Add', [names.scaled, names.bias], names.shiftedOut),
    node('Reshape', [names.shiftedOut, names.shape], y),
    node('Reshape', [mean, c('minus1')], names.meanOut),
    node('Reshape', [variance, c('minus1')], names.varianceOut),
    node('Shape', [names.view], names.pooledShape),
  );
  return { nodes, outputs: { mean: names.meanOut, variance: names.varianceOut, pooledShape: names.pooledShape, ...previous } };
}

/** The nodes that turn `raw` into the calibrated `value` and its factor `scale`, with constants named by `c`. */
function scaleNodes(raw: string, value: string, scale: string, c: (name: string) => string): NodeProto[] {
  const t = (step: string) => `${value}::calibration.${step}`;
  return [
    node('ReduceMean', [raw], t('mean')),
    node('Sub', [raw, t('mean')], t('centred')),
    node('Mul', [t('centred'), t('centred')], t('squares')),
    node('ReduceMean', [t('squares')], t('variance')),
    node('Sqrt', [t('variance')], t('std')),
    node('Reciprocal', [t('std')], t('inverse')),
    node('Mul', [t('inverse'), c('low')], t('up')),
    node('Mul', [t('inverse'), c('high')], t('down')),
    node('Max', [t('up'), c('one')], t('raised')),
    node('Min', [t('raised'), t('down')], t('banded')),
    node('Min', [t('banded'), c('max')], t('capped')),
    node('Max', [t('capped'), c('min')], t('clamped')),
    node('Greater', [t('std'), c('zero')], t('live')),
    node('Where', [t('live'), t('clamped'), c('one')], scale),
    node('Mul', [raw, scale], value),
  ];
}

/**
 * @param values the values to calibrate, each produced by exactly one node
 * @param fed initializers supplied at run time (name → the tensor that will be fed)
 */
export function calibrationModel(
  model: OnnxModel, values: readonly string[], fed: ReadonlyMap<string, ort.Tensor>, range: CalibrationRange, options: CalibrationModelOptions = {},
): CalibrationModel {
  const accumulate = options.accumulate ?? false;
  const g = model.proto.graph ?? {};
  const taken = new Set<string>([...(g.node ?? []).flatMap((n) => n.output ?? []), ...(g.initializer ?? []).map((t) => t.name ?? '')]);
  const fresh = (wanted: string): string => {
    let name = wanted;
    for (let k = 1; taken.has(name); k++) name = `${wanted}.${k}`;
    taken.add(name);
    return name;
  };
  const constants = {
    min: fresh('calibration.min'), max: fresh('calibration.max'), low: fresh('calibration.low'), high: fresh('calibration.high'), zero: fresh('calibration.zero'), one: fresh('calibration.one'),
    zero64: fresh('calibration.zero64'), two64: fresh('calibration.two64'), minus1: fresh('calibration.minus1'),
    channelView: fresh('calibration.channel_view'), axes: fresh('calibration.axes'), weight: fresh('calibration.weight'),
  };
  const c = (name: string) => constants[name as keyof typeof constants];
  const opset = (model.proto.opsetImport ?? []).map((o) => (!o.domain || o.domain === 'ai.onnx' ? Number(o.version ?? 0) : 0)).reduce((a, b) => Math.max(a, b), 0);
  const statisticOutputs: BatchStatisticOutputs[] = [];

  const calibrated = new Set(values);
  const scaleOutputs = new Map<string, string>();
  const nodes: NodeProto[] = [];
  for (const original of g.node ?? []) {
    if (isInferenceBatchNorm(original)) {
      const rewritten = batchStatisticNodes(original, c, opset, fresh, accumulate);
      nodes.push(...rewritten.nodes);
      statisticOutputs.push({ runningMean: original.input![3]!, runningVariance: original.input![4]!, ...rewritten.outputs });
      continue;
    }
    const outputs = original.output ?? [];
    const hit = outputs.findIndex((o) => calibrated.has(o));
    if (hit < 0) {
      nodes.push(original);
      continue;
    }
    const value = outputs[hit]!;
    const raw = fresh(`${value}::calibration.raw`);
    const scale = fresh(`${value}::calibration.scale`);
    nodes.push({ ...original, output: outputs.map((o, i) => (i === hit ? raw : o)) });
    nodes.push(...scaleNodes(raw, value, scale, c));
    scaleOutputs.set(value, scale);
  }

  const initializerNames = new Set((g.initializer ?? []).map((t) => t.name ?? ''));
  const dataInputs = (g.input ?? []).filter((v) => !initializerNames.has(v.name ?? '') && !fed.has(v.name ?? ''));
  const fedInputs: ValueInfoProto[] = [...fed].map(([name, tensor]) => ({
    name, type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: tensor.dims.map((d) => ({ dimValue: d })) } } },
  }));
  const scaleInfo = (name: string, elemType: DataType = DataType.FLOAT): ValueInfoProto => ({ name, type: { tensorType: { elemType } } });
  const accumulatedInputs: ValueInfoProto[] = accumulate
    ? [scaleInfo(constants.weight), ...statisticOutputs.flatMap((o) => [scaleInfo(o.previousMean!), scaleInfo(o.previousVariance!)])]
    : [];
  const statisticInfo = statisticOutputs.flatMap((o) => [scaleInfo(o.mean), scaleInfo(o.variance), scaleInfo(o.pooledShape, DataType.INT64)]);
  const proto = {
    ...model.proto,
    graph: {
      ...g,
      node: nodes,
      input: [...dataInputs, ...fedInputs, ...accumulatedInputs],
      output: [...(g.output ?? []), ...[...scaleOutputs.values()].map((name) => scaleInfo(name)), ...statisticInfo],
      initializer: [
        // Encoded to bytes, the model has no directory to resolve data files from: their tensors go inline.
        ...(g.initializer ?? []).filter((t) => !fed.has(t.name ?? '')).map((t) => (isExternal(t) ? inlinedCopy(t, model.baseDir) : t)),
        scalar(constants.min, range.min), scalar(constants.max, range.max), scalar(constants.low, range.low), scalar(constants.high, range.high), scalar(constants.zero, 0), scalar(constants.one, 1),
        int64s(constants.zero64, [0]), int64s(constants.two64, [2]), int64s(constants.minus1, [-1]),
        int64s(constants.channelView, [1, -1, 1]), int64s(constants.axes, [0, 2]),
      ],
      // Shapes recorded for the original values may not match renamed ones: let onnxruntime infer.
      valueInfo: [],
    },
  };
  return { bytes: encodeModel({ ...model, proto }), dataInputs, scaleOutputs, statisticOutputs, ...(accumulate ? { weightInput: constants.weight } : {}) };
}
