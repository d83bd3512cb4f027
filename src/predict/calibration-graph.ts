/**
 * The model the calibration pass runs: the written model with, after each calibrated value v,
 *   s = clamp(1 / std(v), min, max)   (1 where std(v) = 0: a constant output has no scale to fix),
 *   v ← v · s,
 * so every later layer sees the calibrated activation, and s as an extra graph output. std is the
 * population standard deviation over the whole tensor. The fed tensors (the predicted weights)
 * become graph inputs instead of initializers, so the model bytes hold only the graph and the
 * untouched constants (inline, also those the model keeps in external data). Needs opset ≥ 9 (Where).
 */
import type * as ort from 'onnxruntime-node';
import { encodeModel, inlinedCopy, isExternal } from '../onnx/index.js';
import { DataType, type NodeProto, type OnnxModel, type TensorProto, type ValueInfoProto } from '../onnx/types.js';

export interface CalibrationModel {
  bytes: Uint8Array;
  /** Inputs the caller feeds with data (everything but the fed weights). */
  dataInputs: ValueInfoProto[];
  /** Calibrated value → the graph output holding its factor. */
  scaleOutputs: Map<string, string>;
}

const scalar = (name: string, value: number): TensorProto => ({ name, dataType: DataType.FLOAT, dims: [], floatData: [value] });
const node = (opType: string, input: string[], output: string): NodeProto => ({ opType, input, output: [output] });

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
    node('Min', [t('inverse'), c('max')], t('capped')),
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
  model: OnnxModel, values: readonly string[], fed: ReadonlyMap<string, ort.Tensor>, range: { min: number; max: number },
): CalibrationModel {
  const g = model.proto.graph ?? {};
  const taken = new Set<string>([...(g.node ?? []).flatMap((n) => n.output ?? []), ...(g.initializer ?? []).map((t) => t.name ?? '')]);
  const fresh = (wanted: string): string => {
    let name = wanted;
    for (let k = 1; taken.has(name); k++) name = `${wanted}.${k}`;
    taken.add(name);
    return name;
  };
  const constants = { min: fresh('calibration.min'), max: fresh('calibration.max'), zero: fresh('calibration.zero'), one: fresh('calibration.one') };
  const c = (name: string) => constants[name as keyof typeof constants];

  const calibrated = new Set(values);
  const scaleOutputs = new Map<string, string>();
  const nodes: NodeProto[] = [];
  for (const original of g.node ?? []) {
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
  const scaleInfo = (name: string): ValueInfoProto => ({ name, type: { tensorType: { elemType: DataType.FLOAT } } });
  const proto = {
    ...model.proto,
    graph: {
      ...g,
      node: nodes,
      input: [...dataInputs, ...fedInputs],
      output: [...(g.output ?? []), ...[...scaleOutputs.values()].map(scaleInfo)],
      initializer: [
        // Encoded to bytes, the model has no directory to resolve data files from: their tensors go inline.
        ...(g.initializer ?? []).filter((t) => !fed.has(t.name ?? '')).map((t) => (isExternal(t) ? inlinedCopy(t, model.baseDir) : t)),
        scalar(constants.min, range.min), scalar(constants.max, range.max), scalar(constants.zero, 0), scalar(constants.one, 1),
      ],
      // Shapes recorded for the original values may not match renamed ones: let onnxruntime infer.
      valueInfo: [],
    },
  };
  return { bytes: encodeModel({ ...model, proto }), dataInputs, scaleOutputs };
}
