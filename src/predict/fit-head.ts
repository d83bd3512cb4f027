/**
 * Fits the classifier of a predicted model in closed form on labeled images of the GHN's training
 * set (ridge regression of one-hot targets on the classifier's input features, then one
 * temperature), keeping every other predicted tensor.
 *
 * Why: on PyTorch-written architectures unlike the GHN's training space, the predicted features
 * carry the classes (a linear probe on them reaches 70–86% on Fashion-MNIST) but the predicted
 * classifier does not read them (5–20%): the GHN ties classes to feature channels through codes the
 * features of an unfamiliar architecture do not follow. A least-squares head is what linear
 * probing does before fine-tuning (Kumar et al. 2022, "Fine-tuning can distort pretrained features").
 *
 * Runs on the written model (calibrated: BatchNorm on the statistics it will be deployed with) in
 * onnxruntime-node, with the classifier's input as an extra output. A single Linear head, or a 1×1
 * conv head with global average pooling, whose output is the model's output (through
 * Flatten/Reshape/Identity at most) is fitted; anything else (a softmax after the head, several
 * heads, shared tensors) is left as predicted.
 */
import * as ort from 'onnxruntime-node';
import type { ComputationGraph } from '../graph/computation-graph.js';
import type { OpNode, ParamSlot } from '../graph/types.js';
import { replaceFloatInitializer, type WrittenParameters } from '../graph/write-parameters.js';
import { encodeModel, inlinedCopy, isExternal } from '../onnx/index.js';
import { DataType, type NodeProto, type OnnxModel } from '../onnx/types.js';
import { ridgeRegression } from './ridge-regression.js';

/** Labeled images of the model's input shape, normalized as the GHN's training data. */
export interface LabeledImages {
  data: Float32Array;
  labels: Int32Array;
  count: number;
  /** [C, H, W] of one image. */
  shape: readonly number[];
  classes: number;
  source: string;
}

export interface HeadFitReport {
  /** The fitted op (ONNX node name). */
  op: string;
  /** The classifier's form: a Linear or a 1×1 conv before global average pooling. */
  form: HeadForm;
  features: number;
  images: number;
  /** How the ridge system was solved (features ≤ images: primal). */
  solve: 'primal' | 'dual';
  /** The relative λ used (chosen by cross-validation in the primal form). */
  ridge: number;
  /** Cross-validated accuracy of the fit at that λ (primal form only). */
  heldOut?: number;
  /** Temperature applied to the least-squares logits (cross-entropy minimized on the fit images). */
  scale: number;
  /** Accuracy on the fit images of the predicted head and of the fitted one. */
  fitAccuracy: { predicted: number; fitted: number };
  /** Which head the written model keeps: the fitted one unless it is worse on the fit images. */
  kept: 'fitted' | 'predicted';
  data: string;
  ms: number;
}

/**
 * λ, as a fraction of the mean squared feature norm, is chosen per model by 4-fold cross-validation
 * on the fit images (primal form): the best fixed value differed by model (0.001 for attention nets,
 * 0.01–0.1 for wide MLPs on the benchmark). Heads with more than CV_MAX_FEATURES inputs take 0.01.
 */
export const RIDGE_GRID = [1e-4, 1e-3, 1e-2, 1e-1] as const;
const RIDGE_FOLDS = 4;
const DUAL_MAX_IMAGES = 1024;
/** Cross-validation solves grid × folds systems of features²; above 512 features (≥ 1 s) λ is fixed. */
const CV_MAX_FEATURES = 512;
const FIXED_RIDGE = 0.01;

/** The first `count` of `images` (all of them when there are fewer). */
export function firstImages(images: LabeledImages, count: number): LabeledImages {
  if (images.count <= count) return images;
  const perImage = images.shape.reduce((a, b) => a * b, 1);
  return { ...images, data: images.data.subarray(0, count * perImage), labels: images.labels.subarray(0, count), count };
}
const BATCH = 256;
/** ONNX ops that may sit between the head and the model's output without changing the logits. */
const LOGIT_PRESERVING = new Set(['Flatten', 'Reshape', 'Identity', 'Squeeze', 'Dropout']);

/**
 * The classifier forms fitted: a Linear, or a 1×1 conv followed by global average pooling (SqueezeNet,
 * all-convolutional nets), optionally with a ReLU before the pooling. The conv's logits are linear in
 * the pooled input; a ReLU is kept linear by a common bias shift (it changes no softmax).
 */
type HeadForm = 'linear' | 'pointwise-conv';

export interface Head {
  form: HeadForm;
  op: OpNode;
  weight: ParamSlot;
  bias?: ParamSlot;
  /** The activation the head reads. */
  features: string;
  /** The model output that holds the logits. */
  output: string;
  /** The pointwise conv's output goes through a ReLU before the pooling. */
  relu: boolean;
}

/** The ONNX nodes from `value` to a graph output, when it is a single chain; undefined otherwise. */
function chainToOutput(graph: ComputationGraph, value: string): { ops: string[]; output: string } | undefined {
  const index = graph.index;
  const ops: string[] = [];
  while (!index.isGraphOutput(value)) {
    const consumers = index.consumersOf(value);
    if (ops.length > 6 || consumers.length !== 1) return undefined;
    ops.push(index.opType(consumers[0]!.node));
    value = index.outputs(consumers[0]!.node)[0]!;
  }
  return { ops, output: value };
}

/** The model's single classifier, when it is one of the fitted forms and writes the model's output. */
export function classifierHead(graph: ComputationGraph, classes: number): Head | undefined {
  const heads = graph.headOps();
  if (heads.length !== 1 || heads[0]!.outputs.length !== 1) return undefined;
  const op = heads[0]!;
  const slots = graph.slotsOf(op);
  const weight = slots.find((s) => s.role === 'linear.weight' || s.role === 'conv.weight');
  const bias = slots.find((s) => s.role === 'linear.bias' || s.role === 'conv.bias');
  if (!weight || weight.shape[0] !== classes || weight.shareCount > 1 || (bias && bias.shareCount > 1)) return undefined;
  const features = graph.index.activationInputs(weight.consumer.node)[0];
  const chain = chainToOutput(graph, op.outputs[0]!);
  if (!features || !chain) return undefined;
  if (op.kind === 'linear' && weight.shape.length === 2 && chain.ops.every((o) => LOGIT_PRESERVING.has(o))) {
    return { form: 'linear', op, weight, bias, features, output: chain.output, relu: false };
  }
  const pointwise = op.kind === 'conv' && weight.shape.length === 4 && weight.shape[2] === 1 && weight.shape[3] === 1;
  const pool = chain.ops.indexOf('GlobalAveragePool');
  const before = chain.ops.slice(0, Math.max(0, pool)), after = chain.ops.slice(pool + 1);
  const relu = before.includes('Relu');
  if (!pointwise || pool < 0 || !before.every((o) => o === 'Relu' || o === 'Dropout') || !after.every((o) => LOGIT_PRESERVING.has(o))) return undefined;
  if (relu && !bias) return undefined; // the shift that keeps the ReLU linear needs a bias
  return { form: 'pointwise-conv', op, weight, bias, features, output: chain.output, relu };
}

function accuracy(logits: ArrayLike<number>, labels: Int32Array, classes: number): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits[i * classes + c]! > logits[i * classes + best]!) best = c;
    if (best === labels[i]) correct++;
  }
  return correct / Math.max(1, labels.length);
}

function crossEntropy(z: Float64Array, labels: Int32Array, classes: number, scale: number): number {
  let total = 0;
  for (let i = 0; i < labels.length; i++) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, scale * z[i * classes + c]!);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(scale * z[i * classes + c]! - max);
    total += max + Math.log(sum) - scale * z[i * classes + labels[i]!]!;
  }
  return total / labels.length;
}

/** The temperature minimizing cross-entropy: golden-section search over log s ∈ [log 0.01, log 1e4]. */
function bestScale(z: Float64Array, labels: Int32Array, classes: number): number {
  let lo = Math.log(0.01), hi = Math.log(1e4);
  const ratio = (Math.sqrt(5) - 1) / 2;
  const f = (t: number) => crossEntropy(z, labels, classes, Math.exp(t));
  let a = hi - ratio * (hi - lo), b = lo + ratio * (hi - lo);
  let fa = f(a), fb = f(b);
  for (let it = 0; it < 40; it++) {
    if (fa < fb) { hi = b; b = a; fb = fa; a = hi - ratio * (hi - lo); fa = f(a); }
    else { lo = a; a = b; fa = fb; b = lo + ratio * (hi - lo); fb = f(b); }
  }
  return Math.exp((lo + hi) / 2);
}

const floatOutput = (name: string) => ({ name, type: { tensorType: { elemType: DataType.FLOAT } } });

/** `model` with extra nodes and outputs, as one buffer (external tensors inline: onnxruntime reads bytes here). */
function withOutputs(model: OnnxModel, extraNodes: NodeProto[], outputs: string[]): Uint8Array {
  const graph = model.proto.graph!;
  const initializer = (graph.initializer ?? []).map((t) => (isExternal(t) ? inlinedCopy(t, model.baseDir) : t));
  const proto = {
    ...model.proto,
    graph: { ...graph, initializer, node: [...(graph.node ?? []), ...extraNodes], output: [...(graph.output ?? []), ...outputs.map(floatOutput)] },
  };
  return encodeModel({ ...model, proto } as OnnxModel);
}

const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  graphOptimizationLevel: 'basic', logSeverityLevel: 3, extra: { session: { intra_op: { allow_spinning: '0' } } },
};

/** Smallest value of `value` over the images, run on `model` (the pointwise head's pre-activations). */
async function minimumOver(model: OnnxModel, value: string, images: LabeledImages): Promise<number> {
  const session = await ort.InferenceSession.create(withOutputs(model, [], [value]), SESSION_OPTIONS);
  try {
    const perImage = images.shape.reduce((a, b) => a * b, 1);
    let min = Infinity;
    for (let start = 0; start < images.count; start += BATCH) {
      const n = Math.min(BATCH, images.count - start);
      const feed = new ort.Tensor('float32', images.data.subarray(start * perImage, (start + n) * perImage), [n, ...images.shape]);
      const out = (await session.run({ [session.inputNames[0]!]: feed }, [value]))[value]!.data as Float32Array;
      for (const v of out) if (v < min) min = v;
    }
    return min;
  } finally {
    await session.release();
  }
}

/** The head's input features (pooled, for a pointwise conv) and the model's logits on every image, in batches. */
export async function featuresAndLogits(model: OnnxModel, head: Head, images: LabeledImages): Promise<{ features: Float32Array; dims: number; logits: Float32Array }> {
  // A pointwise conv's logits are linear in its globally pooled input: that is what is regressed on.
  const pooled = head.form === 'pointwise-conv' ? `${head.features}/ghn_fit_head_pool` : head.features;
  const pool: NodeProto[] = head.form === 'pointwise-conv' ? [{ opType: 'GlobalAveragePool', input: [head.features], output: [pooled] }] : [];
  const session = await ort.InferenceSession.create(withOutputs(model, pool, [pooled]), SESSION_OPTIONS);
  try {
    const input = session.inputNames[0]!;
    const perImage = images.shape.reduce((a, b) => a * b, 1);
    const classes = images.classes;
    const logits = new Float32Array(images.count * classes);
    let features = new Float32Array(0), dims = 0;
    for (let start = 0; start < images.count; start += BATCH) {
      const n = Math.min(BATCH, images.count - start);
      const feed = new ort.Tensor('float32', images.data.subarray(start * perImage, (start + n) * perImage), [n, ...images.shape]);
      const out = await session.run({ [input]: feed }, [head.output, pooled]);
      const f = out[pooled]!;
      if (f.dims.length < 2 || f.dims[0] !== n || f.dims.slice(2).some((d) => d !== 1)) throw new RangeError(`classifier input has shape [${f.dims.join(', ')}]`);
      if (!dims) { dims = f.dims[1]!; features = new Float32Array(images.count * dims); }
      features.set(f.data as Float32Array, start * dims);
      logits.set(out[head.output]!.data as Float32Array, start * classes);
    }
    return { features, dims, logits };
  } finally {
    await session.release();
  }
}

/** The value the pointwise head's conv writes (its ReLU's input). */
function preActivation(graph: ComputationGraph, head: Head): string {
  return graph.index.outputs(head.weight.consumer.node)[0]!;
}

/**
 * Fits the head of `written` (calibrated, one initializer per slot) on `images` and writes it into
 * both `written` and `tensors` (slot id → stored-layout values). Undefined when the model has no
 * head this applies to.
 */
export async function fitHead(
  graph: ComputationGraph, written: WrittenParameters, tensors: Map<string, Float32Array>, labeled: LabeledImages,
  options: { write?: boolean } = {},
): Promise<HeadFitReport | undefined> {
  const t0 = performance.now();
  const classes = labeled.classes;
  let images = labeled;
  const head = classifierHead(graph, classes);
  if (!head || images.count < 2) return undefined;
  // More features than DUAL_MAX_IMAGES: the dual system is images × images, solved in JS (O(n³)); 1,024 keeps it ~1 s.
  if (head.weight.shape[1]! > DUAL_MAX_IMAGES) images = firstImages(images, DUAL_MAX_IMAGES);
  let measured;
  try {
    measured = await featuresAndLogits(written.model, head, images);
  } catch (err) {
    if (err instanceof RangeError) return undefined; // token-shaped classifier input: not a plain feature vector
    throw err;
  }
  const { features, dims, logits } = measured;
  const n = images.count;
  if (dims !== head.weight.shape[1]) return undefined;
  const targets = new Float64Array(n * classes).fill(-1 / classes);
  for (let i = 0; i < n; i++) targets[i * classes + images.labels[i]!]! += 1;
  const solution = await ridgeRegression({
    features, samples: n, dims, targets, outputs: classes, relativeRidge: dims <= CV_MAX_FEATURES ? { grid: RIDGE_GRID, labels: images.labels, folds: RIDGE_FOLDS } : FIXED_RIDGE, center: head.bias !== undefined,
  });

  // Least-squares logits on the fit images, then the temperature that makes them probabilities.
  const z = new Float64Array(n * classes);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dims; j++) {
      const f = features[i * dims + j]! - solution.mean[j]!;
      if (f !== 0) for (let c = 0; c < classes; c++) z[i * classes + c]! += f * solution.weights[j * classes + c]!;
    }
  }
  const scale = bestScale(z, images.labels, classes);
  const fitAccuracy = { predicted: accuracy(logits, images.labels, classes), fitted: accuracy(z, images.labels, classes) };
  const kept = fitAccuracy.fitted >= fitAccuracy.predicted ? 'fitted' : 'predicted';
  if (kept === 'fitted' && options.write !== false) {
    const transposed = head.weight.layout === 'transposed';
    const weight = new Float32Array(classes * dims);
    for (let j = 0; j < dims; j++) {
      for (let c = 0; c < classes; c++) weight[transposed ? j * classes + c : c * dims + j] = scale * solution.weights[j * classes + c]!;
    }
    const writeSlot = (slot: ParamSlot, values: Float32Array) => {
      tensors.set(slot.id, values);
      replaceFloatInitializer(written, written.initializerOf.get(slot.id)!, values);
    };
    writeSlot(head.weight, weight);
    if (head.bias) {
      const bias = new Float32Array(classes);
      for (let c = 0; c < classes; c++) {
        let s = 0;
        for (let j = 0; j < dims; j++) s += solution.mean[j]! * solution.weights[j * classes + c]!;
        bias[c] = -scale * s;
      }
      writeSlot(head.bias, bias);
      if (head.relu) {
        // Lift every pre-activation above 0 on the fit images (plus a margin for unseen ones), so the
        // ReLU passes the fitted logits unchanged: a shift common to all classes changes no softmax.
        const min = await minimumOver(written.model, preActivation(graph, head), images);
        const spread = Math.max(...bias) - Math.min(...bias) + 1;
        const shift = Math.max(0, -min) + 0.5 * spread;
        writeSlot(head.bias, Float32Array.from(bias, (b) => b + shift));
      }
    }
  }
  return {
    op: head.op.name, form: head.form, features: dims, images: n, solve: solution.form, ridge: solution.relativeRidge,
    // The chosen λ is the grid's best held-out accuracy.
    ...(solution.heldOut ? { heldOut: Math.max(...solution.heldOut) } : {}), scale, fitAccuracy, kept, data: images.source, ms: performance.now() - t0,
  };
}
