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
 */
import * as tf from '@tensorflow/tfjs';
import type { ParamRole } from '../graph/vocabulary.js';
import { CHANNEL_CODE_DIM, CodeTensors, TAP_CODE_DIM } from './codes.js';
import type { GraphEncoding, SlotSpec } from './encoding.js';
import { layerNorm, type GhnModel } from './model.js';
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

/** Largest channel index any slot of the graph needs a code for. */
export function maxCodeIndex(enc: GraphEncoding): number {
  let m = 1;
  for (const s of enc.slots) {
    const v = matrixView(s);
    m = Math.max(m, v.rows, v.cols);
  }
  return m;
}

/** Slot embeddings [slots, hidden]: LN(s + MLP(s)), s = op embedding + role embedding. */
function embedSlots(ghn: GhnModel, enc: GraphEncoding, nodes: tf.Tensor2D): tf.Tensor2D {
  const ops = tf.gather(nodes, tf.tensor1d(Int32Array.from(enc.slots, (s) => s.opIndex), 'int32'));
  const roles = tf.gather(ghn.v('slot.role'), tf.tensor1d(Int32Array.from(enc.slots, (s) => s.roleId), 'int32'));
  const s = tf.add(ops, roles) as tf.Tensor2D;
  const inner = tf.relu(tf.add(tf.matMul(s, ghn.v('slot.w1') as tf.Tensor2D), ghn.v('slot.b1')));
  return layerNorm(tf.add(s, tf.matMul(inner as tf.Tensor2D, ghn.v('slot.w2') as tf.Tensor2D)), ghn.v('slot.gamma'), ghn.v('slot.beta'));
}

/**
 * Standardized A·Bᵀ scaled to `std`, as one product: the scale is folded into A and the mean
 * subtraction into one extra rank ([A·c, −m·c]·[B, 1]ᵀ), so no pass over the full tensor is added.
 */
function standardizedProduct(a: tf.Tensor2D, b: tf.Tensor2D, std: tf.Tensor): tf.Tensor2D {
  const rows = a.shape[0], cols = b.shape[0];
  if (rows * cols === 1) return tf.mul(tf.matMul(a, b, false, true), std);
  const mean = tf.sum(tf.mul(tf.mean(a, 0), tf.mean(b, 0)));
  const second = tf.div(tf.sum(tf.mul(tf.matMul(a, a, true, false), tf.matMul(b, b, true, false))), rows * cols);
  const variance = tf.relu(tf.sub(second, tf.square(mean)));
  const coef = tf.div(std, tf.sqrt(tf.add(variance, 1e-12)));
  const scaledA = tf.concat([tf.mul(a, coef), tf.mul(tf.fill([rows, 1], -1), tf.mul(mean, coef))], 1);
  const augmentedB = tf.concat([b, tf.ones([cols, 1])], 1);
  return tf.matMul(scaledA, augmentedB, false, true);
}

/**
 * Every slot's value in its canonical shape, keyed by slot id. Differentiable with respect to the
 * GHN's variables. Runs inside the caller's tidy.
 */
export function decodeSlots(ghn: GhnModel, enc: GraphEncoding, nodes: tf.Tensor2D): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  if (enc.slots.length === 0) return out;
  const r = ghn.config.rank;
  const P = CHANNEL_CODE_DIM;
  // Code tensors belong to the caller's tidy/gradient scope: the backward pass still reads them.
  const codes = new CodeTensors(maxCodeIndex(enc));
  {
    const e = embedSlots(ghn, enc, nodes);
    const rowMaps = tf.matMul(e, ghn.v('decoder.rows') as tf.Tensor2D); // [S, P·r]
    const colMaps = tf.matMul(e, ghn.v('decoder.cols') as tf.Tensor2D); // [S, P·r]
    const tapMaps = tf.matMul(e, ghn.v('decoder.taps') as tf.Tensor2D); // [S, T·r]
    const vectorMaps = tf.matMul(e, ghn.v('decoder.vector') as tf.Tensor2D); // [S, P]
    // Learned per-tensor gain around the fixed He std, exp(MAX_LOG_GAIN·tanh(·)) ∈ [0.22, 4.5]; its
    // head starts at zero, so an untrained GHN gives exactly the He std. It lets the GHN shrink
    // residual branches of norm-free networks, which a fixed He scale makes explode with depth.
    const gains = tf.exp(tf.mul(tf.tanh(tf.matMul(e, ghn.v('decoder.gain') as tf.Tensor2D)), MAX_LOG_GAIN)); // [S, 1]
    enc.slots.forEach((slot, s) => {
      const view = matrixView(slot);
      const rule = OUTPUT_RULES[slot.role];
      let value: tf.Tensor;
      if (rule.kind === 'residual') {
        const w = tf.reshape(tf.slice(vectorMaps, [s, 0], [1, P]), [P, 1]) as tf.Tensor2D;
        const raw = tf.matMul(codes.channelSlice(view.rows), w as tf.Tensor2D);
        value = tf.add(tf.mul(raw, rule.scale), rule.base);
      } else {
        const u = tf.reshape(tf.slice(rowMaps, [s, 0], [1, P * r]), [P, r]) as tf.Tensor2D;
        const vc = tf.reshape(tf.slice(colMaps, [s, 0], [1, P * r]), [P, r]) as tf.Tensor2D;
        const vt = tf.reshape(tf.slice(tapMaps, [s, 0], [1, TAP_CODE_DIM * r]), [TAP_CODE_DIM, r]) as tf.Tensor2D;
        const taps = view.kH * view.kW;
        const a = tf.matMul(codes.channelSlice(view.rows), u);
        const bc = tf.matMul(codes.channelSlice(view.cols), vc); // [cols, r]
        const bt = tf.matMul(codes.tap(view.kH, view.kW), vt); // [taps, r]
        const b = taps === 1 ? bc : tf.reshape(tf.mul(tf.expandDims(bc, 1), tf.expandDims(bt, 0)), [view.cols * taps, r]);
        const std = tf.mul(tf.reshape(tf.slice(gains, [s, 0], [1, 1]), []), rule.std(slot));
        value = standardizedProduct(a as tf.Tensor2D, b as tf.Tensor2D, std);
      }
      out.set(slot.id, tf.reshape(value, slot.shape as number[]));
    });
  }
  return out;
}
