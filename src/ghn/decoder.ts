/**
 * Low-rank decoder (LoGAH spirit, no tiling): every slot is viewed as a matrix
 * [rows, cols·taps] and produced as W = A·Bᵀ with
 *   A = Φ(row index)·U(h)                      rows × r
 *   B[(c, t)] = (Φ(c)·Vc(h)) ⊙ (T(t)·Vt(h))   (cols·taps) × r   (a rank-r CP form over channel × tap)
 * where h is the slot embedding (op embedding + role embedding, through a small MLP), U, Vc, Vt are
 * linear maps of h, Φ are the fixed channel codes and T the kernel-tap codes (codes.ts). Channel i
 * gets the same code as an output of one layer and as an input of the next. Vector roles (biases,
 * norm scale/shift, layer scale, class token, PReLU slope) are Φ(index)·w(h).
 *
 * Weights are then standardized over the tensor and scaled (output-scale.ts). The mean and variance
 * of A·Bᵀ come from r×r Gram matrices (E[W²] = tr(AᵀA·BᵀB)/(rows·cols)), exactly and without a
 * reduction over millions of elements, so the 1/√r of the plain form is unnecessary.
 *
 * Batched evaluation (decodeSlots): the work is done for all slots at once, not slot by slot.
 * - A of every weight slot: Φ(0..maxRows)·[U₁ … U_S] is one matMul; the rows each slot needs are
 *   gathered from it into one [Σrows, r] tensor. B likewise from a channel product and a tap product
 *   (gathered and multiplied element-wise; a 1-tap slot uses no tap factor).
 * - Statistics never touch A or B: AᵀA/rows = Uᵀ·G(rows)·U with G(n) = Φ(0..n)ᵀΦ(0..n)/n a fixed
 *   P×P matrix (and mean(A) = μ(rows)·U), BᵀB/(cols·taps) = (Vcᵀ G(cols) Vc) ⊙ (Vtᵀ G_T Vt): a few
 *   batched r×r products for all slots.
 * - Per slot only: two slices of the scaled, augmented A and Bᵀ, one matMul, one reshape.
 * - Vector roles: one matMul Φ(0..maxN)·[w₁ … w_S], one gather, one affine map, one split.
 * The plan (indices and fixed matrices) is computed once per GraphEncoding and cached.
 */
import * as tf from '../engine/tfjs-core.js';
import type { ParamRole } from '../graph/vocabulary.js';
import { CHANNEL_CODE_DIM, CodeTensors, TAP_CODE_DIM, channelCodes, tapCodes } from './codes.js';
import type { GraphEncoding, SlotSpec } from './encoding.js';
import { gatherRows, layerNorm, type DecoderMap, type GhnModel } from './model.js';
import { OUTPUT_RULES } from './output-scale.js';

/** A slot seen as a matrix: rows × (cols · kH·kW), flattened in the canonical order. */
export interface MatrixView {
  rows: number;
  cols: number;
  kH: number;
  kW: number;
}

const MAX_LOG_GAIN = 1.5;

const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

const asVector = (s: SlotSpec): MatrixView => ({ rows: product(s.shape), cols: 1, kH: 1, kW: 1 });
const asMatrix = (s: SlotSpec): MatrixView => ({ rows: s.shape[0] ?? 1, cols: product(s.shape.slice(1)), kH: 1, kW: 1 });

/** Matrix view per role. Conv weights keep their taps apart; position embeddings are token × channel. */
const MATRIX_VIEWS: Readonly<Record<ParamRole, (s: SlotSpec) => MatrixView>> = {
  'conv.weight': (s) => ({ rows: s.shape[0]!, cols: s.shape[1] ?? 1, kH: s.shape[2] ?? 1, kW: product(s.shape.slice(3)) }),
  'linear.weight': asMatrix,
  'embedding': asMatrix,
  'pos_embedding': (s) => ({ rows: product(s.shape.slice(0, -1)), cols: s.shape[s.shape.length - 1] ?? 1, kH: 1, kW: 1 }),
  // [(2w−1)², heads]: relative position × head, as a position embedding is token × channel.
  'relative_position_bias': asMatrix,
  'conv.bias': asVector,
  'linear.bias': asVector,
  'bias': asVector,
  'norm.scale': asVector,
  'norm.shift': asVector,
  'class_token': asVector,
  'layer_scale': asVector,
  'prelu.slope': asVector,
};

export function matrixView(slot: SlotSpec): MatrixView {
  return MATRIX_VIEWS[slot.role](slot);
}

const maxOf = (codes: Int32Array): number => codes.reduce((a, b) => Math.max(a, b), 0);

/** Number of channel codes a row (or column) set needs: its largest code index + 1. */
const codeCount = (n: number, codes?: Int32Array): number => (codes ? maxOf(codes) + 1 : n);

/**
 * The channel-code indices a slot's rows and columns get: those of its channels' producers when the
 * GHN was trained with channel provenance (GhnConfig.channelProvenance), else none (0..n-1).
 */
function codesOf(slot: SlotSpec, provenance: boolean): { rows?: Int32Array; cols?: Int32Array } {
  return provenance ? { rows: slot.rowCodes, cols: slot.colCodes } : {};
}

const usesProvenance = (ghn: GhnModel): boolean => ghn.config.channelProvenance === true;

/** Number of channel codes the slots of the graph need (one more than the largest index). */
export function maxCodeIndex(enc: GraphEncoding, provenance = false): number {
  let m = 1;
  for (const s of enc.slots) {
    const v = matrixView(s);
    const c = codesOf(s, provenance);
    m = Math.max(m, codeCount(v.rows, c.rows), codeCount(v.cols, c.cols));
  }
  return m;
}

/** Slot embeddings [slots, hidden]: LN(s + MLP(s)), s = op embedding + role embedding. */
function embedSlots(ghn: GhnModel, enc: GraphEncoding, nodes: tf.Tensor2D): tf.Tensor2D {
  const ops = gatherRows(nodes, Int32Array.from(enc.slots, (s) => s.opIndex));
  const roles = gatherRows(ghn.v('slot.role') as tf.Tensor2D, Int32Array.from(enc.slots, (s) => s.roleId));
  const s = tf.add(ops, roles) as tf.Tensor2D;
  const inner = tf.relu(tf.add(tf.matMul(s, ghn.v('slot.w1') as tf.Tensor2D), ghn.v('slot.b1')));
  return layerNorm(tf.add(s, tf.matMul(inner as tf.Tensor2D, ghn.v('slot.w2') as tf.Tensor2D)), ghn.v('slot.gamma'), ghn.v('slot.beta'));
}

/**
 * e·W for one decoder map, W = decoder.<map>; with classifier maps, the classifier slots among
 * `slots` (the rows of e) add e·decoder.<map>.classifier.
 */
function decoderMaps(ghn: GhnModel, e: tf.Tensor2D, map: DecoderMap, enc: GraphEncoding, slots?: readonly number[]): tf.Tensor2D {
  const shared = tf.matMul(e, ghn.v(`decoder.${map}`) as tf.Tensor2D);
  if (!ghn.config.classifierMaps) return shared as tf.Tensor2D;
  const isClassifier = (slots ?? enc.slots.map((_, s) => s)).map((s) => (enc.slots[s]!.isClassifier ? 1 : 0));
  if (!isClassifier.some(Boolean)) return shared as tf.Tensor2D;
  const own = tf.matMul(e, ghn.v(`decoder.${map}.classifier`) as tf.Tensor2D);
  return tf.add(shared, tf.mul(own, tf.tensor2d(isClassifier, [isClassifier.length, 1]))) as tf.Tensor2D;
}

/**
 * Standardized A·Bᵀ scaled to `std`, as one product: the scale is folded into A and the mean
 * subtraction into one extra rank ([A·c, −m·c]·[B, 1]ᵀ), so no pass over the full tensor is added.
 */
function standardizedProduct(a: tf.Tensor2D, b: tf.Tensor2D, std: tf.Tensor, transposed = false): tf.Tensor2D {
  const rows = a.shape[0], cols = b.shape[0];
  if (rows * cols === 1) return tf.mul(tf.matMul(a, b, false, true), std);
  const mean = tf.sum(tf.mul(tf.mean(a, 0), tf.mean(b, 0)));
  const second = tf.div(tf.sum(tf.mul(tf.matMul(a, a, true, false), tf.matMul(b, b, true, false))), rows * cols);
  const variance = tf.relu(tf.sub(second, tf.square(mean)));
  const coef = tf.div(std, tf.sqrt(tf.add(variance, 1e-12)));
  const scaledA = tf.concat([tf.mul(a, coef), tf.mul(tf.fill([rows, 1], -1), tf.mul(mean, coef))], 1);
  const augmentedB = tf.concat([b, tf.ones([cols, 1])], 1);
  // Transposed: (A·Bᵀ)ᵀ = B·Aᵀ, from the small factors rather than a transpose of the product.
  return transposed ? tf.matMul(augmentedB, scaledA, false, true) : tf.matMul(scaledA, augmentedB, false, true);
}

/**
 * The same function as decodeSlots, one small product chain per slot (~25 tfjs ops per weight
 * slot). Under a gradient tape that is slower than the batched form (every op is recorded), but
 * without one it does fewer FLOPs (no [maxRows, S·r] tables), so forward-only prediction
 * (predictParameters) uses it. `stored` as in decodeSlots.
 */
export function decodeSlotsPerSlot(ghn: GhnModel, enc: GraphEncoding, nodes: tf.Tensor2D, options: { stored?: boolean } = {}): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  if (enc.slots.length === 0) return out;
  const r = ghn.config.rank;
  const P = CHANNEL_CODE_DIM;
  // Code tensors belong to the caller's tidy/gradient scope: the backward pass still reads them.
  const provenance = usesProvenance(ghn);
  const codes = new CodeTensors(maxCodeIndex(enc, provenance));
  {
    const e = embedSlots(ghn, enc, nodes);
    const rowMaps = decoderMaps(ghn, e, 'rows', enc); // [S, P·r]
    const colMaps = decoderMaps(ghn, e, 'cols', enc); // [S, P·r]
    const tapMaps = decoderMaps(ghn, e, 'taps', enc); // [S, T·r]
    const vectorMaps = decoderMaps(ghn, e, 'vector', enc); // [S, P]
    // Learned per-tensor gain around the fixed He std, exp(MAX_LOG_GAIN·tanh(·)) ∈ [0.22, 4.5]; its
    // head starts at zero, so an untrained GHN gives exactly the He std. It lets the GHN shrink
    // residual branches of norm-free networks, which a fixed He scale makes explode with depth.
    const gains = tf.exp(tf.mul(tf.tanh(decoderMaps(ghn, e, 'gain', enc)), MAX_LOG_GAIN)); // [S, 1]
    enc.slots.forEach((slot, s) => {
      const view = matrixView(slot);
      const rule = OUTPUT_RULES[slot.role];
      const own = codesOf(slot, provenance);
      let value: tf.Tensor;
      if (rule.kind === 'residual') {
        const w = tf.reshape(tf.slice(vectorMaps, [s, 0], [1, P]), [P, 1]) as tf.Tensor2D;
        const raw = tf.matMul(codes.indexed(view.rows, own.rows), w as tf.Tensor2D);
        value = tf.add(tf.mul(raw, rule.scale), rule.base);
      } else {
        const u = tf.reshape(tf.slice(rowMaps, [s, 0], [1, P * r]), [P, r]) as tf.Tensor2D;
        const vc = tf.reshape(tf.slice(colMaps, [s, 0], [1, P * r]), [P, r]) as tf.Tensor2D;
        const vt = tf.reshape(tf.slice(tapMaps, [s, 0], [1, TAP_CODE_DIM * r]), [TAP_CODE_DIM, r]) as tf.Tensor2D;
        const taps = view.kH * view.kW;
        const a = tf.matMul(codes.indexed(view.rows, own.rows), u);
        const bc = tf.matMul(codes.indexed(view.cols, own.cols), vc); // [cols, r]
        const bt = tf.matMul(codes.tap(view.kH, view.kW), vt); // [taps, r]
        const b = taps === 1 ? bc : tf.reshape(tf.mul(tf.expandDims(bc, 1), tf.expandDims(bt, 0)), [view.cols * taps, r]);
        const std = tf.mul(tf.reshape(tf.slice(gains, [s, 0], [1, 1]), []), rule.std(slot));
        value = standardizedProduct(a as tf.Tensor2D, b as tf.Tensor2D, std, options.stored && slot.layout === 'transposed');
      }
      out.set(slot.id, tf.reshape(value, (options.stored ? slot.storedShape : slot.shape) as number[]));
    });
  }
  return out;
}

/** The vector slots' values in one flat tensor: slot enc.slots[slots[j]] has sizes[j] values, in order. */
export interface BatchedVectors {
  values: tf.Tensor1D;
  slots: readonly number[];
  sizes: readonly number[];
}

/**
 * Weight slots with the same matrix view, decoded together: slot slots[g] is a[g]·b[g]ᵀ + shift[g]
 * (canonical), the value standardizedProduct computes as [a·c, −m·c]·[b, 1]ᵀ. The shift is applied
 * by the caller's product (onnxruntime's Gemm bias): tfjs-wasm's concat, which the extra rank
 * needs, copies row by row in JS (~30 ms for ResNet-50).
 */
export interface WeightGroup {
  slots: readonly number[];
  /** [G, rows, r]: A, scaled. */
  a: tf.Tensor3D;
  /** [G, cols·taps, r]. */
  b: tf.Tensor3D;
  /** [G]: the mean shift, −mean·scale. */
  shift: tf.Tensor1D;
}

/**
 * The forward-only form of decodeSlotsPerSlot up to each weight's final product, equal to it up to
 * float rounding with far fewer tfjs ops (each costs ~0.1 ms of dispatch, more in a fresh process):
 * the vector slots in one batch (as decodeSlots), the weights in one batched chain per distinct
 * matrix view (ResNet-50: 54 weights, 21 views; ViT-B/16: 51 weights, 7 views). Single-element
 * weights (only scaled) come as values. Runs inside the caller's tidy.
 */
export function predictionFactors(
  ghn: GhnModel, enc: GraphEncoding, nodes: tf.Tensor2D,
): { vectors?: BatchedVectors; groups: WeightGroup[]; values: Map<string, tf.Tensor> } {
  const groups: WeightGroup[] = [];
  const values = new Map<string, tf.Tensor>();
  if (enc.slots.length === 0) return { groups, values };
  const r = ghn.config.rank, P = CHANNEL_CODE_DIM, T = TAP_CODE_DIM;
  const provenance = usesProvenance(ghn);
  const codes = new CodeTensors(maxCodeIndex(enc, provenance));
  const e = embedSlots(ghn, enc, nodes);
  const vectorPlan = planOf(enc, provenance).vectors;
  const vectors = vectorPlan.slots.length
    ? { values: batchedVectorValues(ghn, e, vectorPlan, enc), slots: vectorPlan.slots, sizes: vectorPlan.sizes }
    : undefined;

  const byView = new Map<string, number[]>();
  enc.slots.forEach((slot, s) => {
    if (OUTPUT_RULES[slot.role].kind === 'residual') return;
    const v = matrixView(slot);
    // Slots with their own channel codes are decoded on their own.
    const own = codesOf(slot, provenance);
    const key = own.rows || own.cols ? `slot ${s}` : `${v.rows}x${v.cols}x${v.kH}x${v.kW}`;
    (byView.get(key) ?? byView.set(key, []).get(key)!).push(s);
  });
  for (const slots of byView.values()) {
    const G = slots.length;
    const first = enc.slots[slots[0]!]!;
    const view = matrixView(first);
    const taps = view.kH * view.kW;
    const es = gatherRows(e, Int32Array.from(slots));
    const u = tf.reshape(decoderMaps(ghn, es, 'rows', enc, slots), [G, P, r]) as tf.Tensor3D;
    const vc = tf.reshape(decoderMaps(ghn, es, 'cols', enc, slots), [G, P, r]) as tf.Tensor3D;
    const vt = tf.reshape(decoderMaps(ghn, es, 'taps', enc, slots), [G, T, r]) as tf.Tensor3D;
    // Learned per-tensor gain around the fixed He std (see decodeSlotsPerSlot).
    const gains = tf.reshape(tf.exp(tf.mul(tf.tanh(decoderMaps(ghn, es, 'gain', enc, slots)), MAX_LOG_GAIN)), [G]);
    const baseStd = slots.map((s) => {
      const rule = OUTPUT_RULES[enc.slots[s]!.role];
      return rule.kind === 'standardized' ? rule.std(enc.slots[s]!) : 1;
    });
    const std = tf.mul(gains, tf.tensor1d(baseStd)); // [G]
    const batched = (codesOf: tf.Tensor2D, maps: tf.Tensor3D) => tf.matMul(tf.tile(tf.expandDims(codesOf, 0), [G, 1, 1]), maps);
    const firstCodes = codesOf(first, provenance);
    const a = batched(codes.indexed(view.rows, firstCodes.rows), u); // [G, rows, r]
    const bc = batched(codes.indexed(view.cols, firstCodes.cols), vc); // [G, cols, r]
    const b = taps === 1 ? bc : tf.reshape(tf.mul(tf.expandDims(bc, 2), tf.expandDims(batched(codes.tap(view.kH, view.kW), vt), 1)), [G, view.cols * taps, r]);
    if (view.rows * view.cols * taps === 1) {
      const single = tf.mul(tf.reshape(tf.matMul(a, b, false, true), [G]), std);
      slots.forEach((s, g) => values.set(enc.slots[s]!.id, tf.slice(single, [g], [1])));
      continue;
    }
    // standardizedFactors, per slot of the batch.
    const mean = tf.sum(tf.mul(tf.mean(a, 1), tf.mean(b, 1)), 1); // [G]
    const second = tf.div(tf.sum(tf.mul(tf.matMul(a, a, true, false), tf.matMul(b, b, true, false)), [1, 2]), view.rows * view.cols * taps);
    const variance = tf.relu(tf.sub(second, tf.square(mean)));
    const coef = tf.div(std, tf.sqrt(tf.add(variance, 1e-12))); // [G]
    const scaledA = tf.mul(a, tf.reshape(coef, [G, 1, 1]));
    groups.push({ slots, a: scaledA as tf.Tensor3D, b: b as tf.Tensor3D, shift: tf.neg(tf.mul(mean, coef)) as tf.Tensor1D });
  }
  return { vectors, groups, values };
}

const P_DIM = CHANNEL_CODE_DIM;

/** Φ(0..n)ᵀΦ(0..n)/n and the mean code of the first n channels, cached per n. */
const prefixStats = new Map<number, { gram: Float32Array; mean: Float32Array }>();
/**
 * The float64 sums over the first n channels behind each cached prefix (the Gram's upper triangle
 * only): a longer prefix continues from the longest shorter one instead of starting over (ResNet-50
 * asks for 3, 64, 128, …, 2,048 channels). The sums are the same: each entry still adds its channels'
 * products in index order.
 */
const prefixSums = new Map<number, { g: Float64Array; m: Float64Array }>();

/** Adds channels [from, to) to the sums: the mean, and the Gram's entries with b ≥ a (it is symmetric). */
function accumulateCodes(codes: Float32Array, rows: Iterable<number>, g: Float64Array, m: Float64Array): void {
  for (const i of rows) {
    const row = codes.subarray(i * P_DIM, (i + 1) * P_DIM);
    for (let a = 0; a < P_DIM; a++) {
      const ra = row[a]!;
      m[a]! += ra;
      for (let b = a; b < P_DIM; b++) g[a * P_DIM + b]! += ra * row[b]!;
    }
  }
}

/** The stats from the sums of n channels: the upper triangle mirrored (x·y and y·x are the same double). */
function statsOfSums(g: Float64Array, m: Float64Array, n: number): { gram: Float32Array; mean: Float32Array } {
  const gram = new Float32Array(P_DIM * P_DIM);
  for (let a = 0; a < P_DIM; a++) {
    for (let b = a; b < P_DIM; b++) gram[a * P_DIM + b] = gram[b * P_DIM + a] = g[a * P_DIM + b]! / n;
  }
  return { gram, mean: Float32Array.from(m, (v) => v / n) };
}

function* range(from: number, to: number): Iterable<number> {
  for (let i = from; i < to; i++) yield i;
}

function channelPrefixStats(n: number): { gram: Float32Array; mean: Float32Array } {
  let st = prefixStats.get(n);
  if (!st) {
    let start = 0;
    for (const k of prefixSums.keys()) if (k <= n && k > start) start = k;
    const from = prefixSums.get(start);
    const g = from ? from.g.slice() : new Float64Array(P_DIM * P_DIM), m = from ? from.m.slice() : new Float64Array(P_DIM);
    accumulateCodes(channelCodes(n), range(start, n), g, m);
    prefixSums.set(n, { g, m });
    st = statsOfSums(g, m, n);
    prefixStats.set(n, st);
  }
  return st;
}

/** Φᵀ·Φ/n and the mean code of the channels 0..n-1, or of the channel indices `indices` (n of them). */
function channelSetStats(n: number, indices?: Int32Array): { gram: Float32Array; mean: Float32Array } {
  if (!indices) return channelPrefixStats(n);
  const g = new Float64Array(P_DIM * P_DIM), m = new Float64Array(P_DIM);
  accumulateCodes(channelCodes(maxOf(indices) + 1), indices, g, m);
  return statsOfSums(g, m, n);
}

function tapStats(kH: number, kW: number): { gram: Float32Array; mean: Float32Array } {
  const T = TAP_CODE_DIM, n = kH * kW, codes = tapCodes(kH, kW);
  const gram = new Float32Array(T * T), mean = new Float32Array(T);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < T; a++) {
      mean[a]! += codes[i * T + a]! / n;
      for (let b = 0; b < T; b++) gram[a * T + b]! += (codes[i * T + a]! * codes[i * T + b]!) / n;
    }
  }
  return { gram, mean };
}

interface WeightPlan {
  slots: number[];
  views: MatrixView[];
  maxRows: number;
  maxCols: number;
  /** Row of the [maxRows·S, r] product per A row, slot-major. */
  rowIdx: Int32Array;
  /** Slot (0..S-1) of every A row. */
  rowSeg: Int32Array;
  rowSizes: number[];
  /** Row of the [maxCols·S, r] channel product per B row; row of the [taps·S + 1, r] tap product (last: ones). */
  colIdx: Int32Array;
  tapIdx: Int32Array;
  colSizes: number[];
  tapTable: Float32Array;
  totalTaps: number;
  gramRows: Float32Array;
  meanRows: Float32Array;
  gramCols: Float32Array;
  meanCols: Float32Array;
  gramTaps: Float32Array;
  meanTaps: Float32Array;
  /** 1 where the slot has more than one tap (a tap factor), else 0. */
  tapMask: Float32Array;
  /** 1 for single-element weights (not standardized, as in the per-slot form). */
  unitMask: Float32Array;
  baseStd: Float32Array;
}

interface VectorPlan {
  slots: number[];
  maxN: number;
  idx: Int32Array;
  scale: Float32Array;
  base: Float32Array;
  sizes: number[];
}

interface DecodePlan {
  weights: WeightPlan;
  vectors: VectorPlan;
}

/** Plans per encoding, one cache per code convention. */
const plans = { identity: new WeakMap<GraphEncoding, DecodePlan>(), provenance: new WeakMap<GraphEncoding, DecodePlan>() };

function buildPlan(enc: GraphEncoding, provenance: boolean): DecodePlan {
  const wSlots: number[] = [], vSlots: number[] = [];
  enc.slots.forEach((slot, s) => (OUTPUT_RULES[slot.role].kind === 'residual' ? vSlots : wSlots).push(s));

  // Vectors.
  const vViews = vSlots.map((s) => matrixView(enc.slots[s]!));
  const Sv = vSlots.length;
  const maxN = Math.max(1, ...vViews.map((v, j) => codeCount(v.rows, codesOf(enc.slots[vSlots[j]!]!, provenance).rows)));
  const vTotal = vViews.reduce((a, v) => a + v.rows, 0);
  const vIdx = new Int32Array(vTotal), vScale = new Float32Array(vTotal), vBase = new Float32Array(vTotal);
  let o = 0;
  vSlots.forEach((s, j) => {
    const rule = OUTPUT_RULES[enc.slots[s]!.role];
    if (rule.kind !== 'residual') throw new Error('unreachable');
    const rowCodes = codesOf(enc.slots[s]!, provenance).rows;
    for (let i = 0; i < vViews[j]!.rows; i++, o++) {
      vIdx[o] = (rowCodes ? rowCodes[i]! : i) * Sv + j;
      vScale[o] = rule.scale;
      vBase[o] = rule.base;
    }
  });

  // Weights.
  const S = wSlots.length, P = P_DIM, T = TAP_CODE_DIM;
  const views = wSlots.map((s) => matrixView(enc.slots[s]!));
  const wSpecs = wSlots.map((s) => enc.slots[s]!);
  const maxRows = Math.max(1, ...views.map((v, j) => codeCount(v.rows, codesOf(wSpecs[j]!, provenance).rows)));
  const maxCols = Math.max(1, ...views.map((v, j) => codeCount(v.cols, codesOf(wSpecs[j]!, provenance).cols)));
  const tapOffset = new Map<string, number>();
  const tapChunks: Float32Array[] = [];
  let totalTaps = 0;
  for (const v of views) {
    const key = `${v.kH}x${v.kW}`;
    if (v.kH * v.kW > 1 && !tapOffset.has(key)) {
      tapOffset.set(key, totalTaps);
      tapChunks.push(tapCodes(v.kH, v.kW));
      totalTaps += v.kH * v.kW;
    }
  }
  const tapTable = new Float32Array(Math.max(1, totalTaps) * T);
  let t0 = 0;
  for (const c of tapChunks) { tapTable.set(c, t0); t0 += c.length; }
  const tapRows = Math.max(1, totalTaps);
  const onesRow = tapRows * S;
  const rowSizes = views.map((v) => v.rows);
  const colSizes = views.map((v) => v.cols * v.kH * v.kW);
  const rowIdx = new Int32Array(rowSizes.reduce((a, b) => a + b, 0));
  const rowSeg = new Int32Array(rowIdx.length);
  const colIdx = new Int32Array(colSizes.reduce((a, b) => a + b, 0));
  const tapIdx = new Int32Array(colIdx.length);
  const gramRows = new Float32Array(S * P * P), meanRows = new Float32Array(S * P);
  const gramCols = new Float32Array(S * P * P), meanCols = new Float32Array(S * P);
  const gramTaps = new Float32Array(S * T * T), meanTaps = new Float32Array(S * T);
  const tapMask = new Float32Array(S), unitMask = new Float32Array(S), baseStd = new Float32Array(S);
  let ro = 0, co = 0;
  views.forEach((v, j) => {
    const slot = enc.slots[wSlots[j]!]!;
    const rule = OUTPUT_RULES[slot.role];
    if (rule.kind !== 'standardized') throw new Error('unreachable');
    baseStd[j] = rule.std(slot);
    const taps = v.kH * v.kW;
    unitMask[j] = v.rows * v.cols * taps === 1 ? 1 : 0;
    const { rows: rowCodes, cols: colCodes } = codesOf(slot, provenance);
    for (let i = 0; i < v.rows; i++, ro++) { rowIdx[ro] = (rowCodes ? rowCodes[i]! : i) * S + j; rowSeg[ro] = j; }
    const tOff = taps > 1 ? tapOffset.get(`${v.kH}x${v.kW}`)! : -1;
    for (let c = 0; c < v.cols; c++) {
      const code = colCodes ? colCodes[c]! : c;
      for (let t = 0; t < taps; t++, co++) {
        colIdx[co] = code * S + j;
        tapIdx[co] = taps > 1 ? (tOff + t) * S + j : onesRow;
      }
    }
    const rs = channelSetStats(v.rows, rowCodes), cs = channelSetStats(v.cols, colCodes);
    gramRows.set(rs.gram, j * P * P); meanRows.set(rs.mean, j * P);
    gramCols.set(cs.gram, j * P * P); meanCols.set(cs.mean, j * P);
    if (taps > 1) {
      const ts = tapStats(v.kH, v.kW);
      gramTaps.set(ts.gram, j * T * T); meanTaps.set(ts.mean, j * T);
      tapMask[j] = 1;
    }
  });
  return {
    weights: { slots: wSlots, views, maxRows, maxCols, rowIdx, rowSeg, rowSizes, colIdx, tapIdx, colSizes, tapTable, totalTaps: tapRows,
      gramRows, meanRows, gramCols, meanCols, gramTaps, meanTaps, tapMask, unitMask, baseStd },
    vectors: { slots: vSlots, maxN, idx: vIdx, scale: vScale, base: vBase, sizes: vViews.map((v) => v.rows) },
  };
}

function planOf(enc: GraphEncoding, provenance: boolean): DecodePlan {
  const cache = provenance ? plans.provenance : plans.identity;
  let plan = cache.get(enc);
  if (!plan) {
    plan = buildPlan(enc, provenance);
    cache.set(enc, plan);
  }
  return plan;
}

/**
 * Every vector slot's values, concatenated in `v.slots` order (v.sizes each): one matMul
 * Φ(0..maxN)·[w₁ … w_S], one gather, one affine map. `e` holds the embeddings of all slots.
 */
function batchedVectorValues(ghn: GhnModel, e: tf.Tensor2D, v: VectorPlan, enc: GraphEncoding): tf.Tensor1D {
  const Sv = v.slots.length, P = P_DIM;
  const ev = gatherRows(e, Int32Array.from(v.slots));
  const maps = decoderMaps(ghn, ev, 'vector', enc, v.slots); // [Sv, P]
  const phi = tf.tensor2d(channelCodes(v.maxN), [v.maxN, P]);
  const all = tf.reshape(tf.matMul(phi, tf.transpose(maps)), [v.maxN * Sv]); // [i·Sv + j]
  const raw = tf.reshape(gatherRows(tf.reshape(all, [v.maxN * Sv, 1]) as tf.Tensor2D, v.idx), [v.idx.length]);
  return tf.add(tf.mul(raw, tf.tensor1d(v.scale)), tf.tensor1d(v.base)) as tf.Tensor1D;
}

/** [S, K·r] maps → [K, S·r] with column block s holding slot s's K×r matrix. */
function stackMaps(maps: tf.Tensor, S: number, K: number, r: number): tf.Tensor2D {
  return tf.reshape(tf.transpose(tf.reshape(maps, [S, K, r]), [1, 0, 2]), [K, S * r]);
}

/** Xᵀ·G·X for a batch: X [S, K, r], G [S, K, K] → [S, r, r]. */
function batchedGram(x: tf.Tensor3D, g: tf.Tensor3D): tf.Tensor3D {
  return tf.matMul(tf.transpose(x, [0, 2, 1]), tf.matMul(g, x));
}

/** μ·X for a batch: μ [S, K], X [S, K, r] → [S, r]. */
function batchedMean(mu: tf.Tensor2D, x: tf.Tensor3D): tf.Tensor2D {
  return tf.sum(tf.mul(tf.expandDims(mu, 2), x), 1);
}

/**
 * Every slot's value in its canonical shape, keyed by slot id. Differentiable with respect to the
 * GHN's variables. Runs inside the caller's tidy. Batched over slots (see the file comment); the
 * same function as decodeSlotsPerSlot up to float rounding. With `stored`, values come in each
 * slot's stored shape and layout instead: a transposed 2-D slot is produced as B·Aᵀ directly (a
 * transpose of the small factors, not of the product: wasm transposes run at memory speed at best).
 */
export function decodeSlots(ghn: GhnModel, enc: GraphEncoding, nodes: tf.Tensor2D, options: { stored?: boolean } = {}): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  if (enc.slots.length === 0) return out;
  const plan = planOf(enc, usesProvenance(ghn));
  const r = ghn.config.rank;
  const P = P_DIM, T = TAP_CODE_DIM;
  const e = embedSlots(ghn, enc, nodes);
  const { weights: w, vectors: v } = plan;

  if (v.slots.length) {
    const Sv = v.slots.length;
    const values = batchedVectorValues(ghn, e, v, enc);
    // Slices, not tf.split: the wasm SplitV copies the whole input out of the heap once per part.
    let offset = 0;
    v.slots.forEach((s, j) => {
      const part = Sv === 1 ? values : tf.slice(values, [offset], [v.sizes[j]!]);
      offset += v.sizes[j]!;
      const slot = enc.slots[s]!;
      out.set(slot.id, tf.reshape(part, (options.stored ? slot.storedShape : slot.shape) as number[]));
    });
  }

  if (w.slots.length) {
    const S = w.slots.length;
    const ew = gatherRows(e, Int32Array.from(w.slots));
    const rowMaps = decoderMaps(ghn, ew, 'rows', enc, w.slots); // [S, P·r]
    const colMaps = decoderMaps(ghn, ew, 'cols', enc, w.slots); // [S, P·r]
    const tapMaps = decoderMaps(ghn, ew, 'taps', enc, w.slots); // [S, T·r]
    // Learned per-tensor gain around the fixed He std (see decodeSlotsPerSlot).
    const gains = tf.reshape(tf.exp(tf.mul(tf.tanh(decoderMaps(ghn, ew, 'gain', enc, w.slots)), MAX_LOG_GAIN)), [S]);

    // A rows and B rows of every slot, concatenated slot by slot.
    const phiRows = tf.tensor2d(channelCodes(w.maxRows), [w.maxRows, P]);
    const aTable = tf.reshape(tf.matMul(phiRows, stackMaps(rowMaps, S, P, r)), [w.maxRows * S, r]);
    const a1 = gatherRows(aTable as tf.Tensor2D, w.rowIdx, true); // [Σrows, r+1], last column 1 // [Σrows, r]
    const phiCols = tf.tensor2d(channelCodes(w.maxCols), [w.maxCols, P]);
    const cTable = tf.reshape(tf.matMul(phiCols, stackMaps(colMaps, S, P, r)), [w.maxCols * S, r]);
    const tapCodesT = tf.tensor2d(w.tapTable, [w.totalTaps, T]);
    const tTable = tf.concat([tf.reshape(tf.matMul(tapCodesT, stackMaps(tapMaps, S, T, r)), [w.totalTaps * S, r]), tf.ones([1, r])], 0);
    // [Σcols·taps, r+1]: both factors carry a column of ones, so their product does too.
    const bAug = tf.mul(gatherRows(cTable as tf.Tensor2D, w.colIdx, true), gatherRows(tTable as tf.Tensor2D, w.tapIdx, true)) as tf.Tensor2D;

    // Mean and second moment of every A·Bᵀ from r×r Grams.
    const U = tf.reshape(rowMaps, [S, P, r]) as tf.Tensor3D;
    const Vc = tf.reshape(colMaps, [S, P, r]) as tf.Tensor3D;
    const Vt = tf.reshape(tapMaps, [S, T, r]) as tf.Tensor3D;
    const mask2 = tf.tensor2d(w.tapMask, [S, 1]);
    const inv2 = tf.sub(1, mask2);
    const meanBt = tf.add(tf.mul(batchedMean(tf.tensor2d(w.meanTaps, [S, T]), Vt), mask2), inv2);
    const mean = tf.sum(tf.mul(tf.mul(batchedMean(tf.tensor2d(w.meanRows, [S, P]), U), batchedMean(tf.tensor2d(w.meanCols, [S, P]), Vc)), meanBt), 1); // [S]
    const mask3 = tf.reshape(mask2, [S, 1, 1]);
    const gramT = tf.add(tf.mul(batchedGram(Vt, tf.tensor3d(w.gramTaps, [S, T, T])), mask3), tf.reshape(inv2, [S, 1, 1]));
    const second = tf.sum(tf.mul(tf.mul(batchedGram(U, tf.tensor3d(w.gramRows, [S, P, P])), batchedGram(Vc, tf.tensor3d(w.gramCols, [S, P, P]))), gramT), [1, 2]);
    const variance = tf.relu(tf.sub(second, tf.square(mean)));
    const std = tf.mul(gains, tf.tensor1d(w.baseStd));
    const unit = tf.tensor1d(w.unitMask);
    const notUnit = tf.sub(1, unit);
    // Single-element weights are only scaled (as in the per-slot form): coef = std, no mean shift.
    const coef = tf.add(tf.mul(tf.div(std, tf.sqrt(tf.add(variance, 1e-12))), notUnit), tf.mul(std, unit));
    const shift = tf.mul(tf.neg(tf.mul(mean, notUnit)), coef);
    // Per-row multiplier [coef ×r, shift]: aAug = [A·coef, shift] with no concat of the big factor.
    const multipliers = tf.concat([tf.tile(tf.expandDims(coef, 1), [1, r]), tf.expandDims(shift, 1)], 1) as tf.Tensor2D; // [S, r+1]
    const aAug = tf.mul(a1, gatherRows(multipliers, w.rowSeg));
    const bAugT = tf.transpose(bAug);
    let ra = 0, cb = 0;
    w.slots.forEach((s, j) => {
      const slot = enc.slots[s]!;
      const aj = S === 1 ? aAug : tf.slice(aAug, [ra, 0], [w.rowSizes[j]!, r + 1]);
      if (options.stored && slot.layout === 'transposed') {
        const bj = S === 1 ? bAug : tf.slice(bAug, [cb, 0], [w.colSizes[j]!, r + 1]);
        out.set(slot.id, tf.reshape(tf.matMul(bj as tf.Tensor2D, tf.transpose(aj) as tf.Tensor2D), slot.storedShape as number[]));
      } else {
        const bj = S === 1 ? bAugT : tf.slice(bAugT, [0, cb], [r + 1, w.colSizes[j]!]);
        out.set(slot.id, tf.reshape(tf.matMul(aj as tf.Tensor2D, bj as tf.Tensor2D), (options.stored ? slot.storedShape : slot.shape) as number[]));
      }
      ra += w.rowSizes[j]!;
      cb += w.colSizes[j]!;
    });
  }
  return out;
}
