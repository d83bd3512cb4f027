/**
 * The GHN: a GHN-3-style transformer over all ops of a graph at once. Structure enters in
 * parallel, through in/out-degree embeddings, the constant-norm features (which include depth)
 * and a learned per-head attention bias indexed by the (forward, backward) shortest-path bucket of
 * each node pair. No node-by-node recurrence: one pass of L pre-LN blocks.
 *
 * Parameters live in named tf.Variables (`variables`), initialized deterministically from
 * `config.seed`; the decoder's weights are part of the same set (see decoder.ts).
 */
import * as tf from '../engine/tfjs-core.js';
import { OP_KINDS, PARAM_ROLES } from '../graph/vocabulary.js';
import { createRng, gaussian } from '../util/random.js';
import { CHANNEL_CODE_DIM, TAP_CODE_DIM } from './codes.js';
import type { GhnConfig } from './config.js';
import { FEATURE_DIM, MAX_DEGREE, PAIR_BUCKETS, type GraphEncoding } from './encoding.js';

export { DEFAULT_GHN_CONFIG, type GhnConfig } from './config.js';

/** Shape of every variable, by name, for a config. One table: init, save and load all read it. */
export function variableShapes(c: GhnConfig): Map<string, number[]> {
  const d = c.hidden;
  const shapes = new Map<string, number[]>([
    ['embed.kind', [OP_KINDS.length, d]],
    ['embed.features', [FEATURE_DIM, d]],
    ['embed.in_degree', [MAX_DEGREE + 1, d]],
    ['embed.out_degree', [MAX_DEGREE + 1, d]],
  ]);
  for (let l = 0; l < c.layers; l++) {
    const p = `layer${l}.`;
    shapes.set(`${p}ln1.gamma`, [d]).set(`${p}ln1.beta`, [d]);
    shapes.set(`${p}attn.qkv`, [d, 3 * d]).set(`${p}attn.out`, [d, d]);
    shapes.set(`${p}attn.bias`, [PAIR_BUCKETS, c.heads]);
    shapes.set(`${p}ln2.gamma`, [d]).set(`${p}ln2.beta`, [d]);
    shapes.set(`${p}mlp.w1`, [d, 2 * d]).set(`${p}mlp.b1`, [2 * d]);
    shapes.set(`${p}mlp.w2`, [2 * d, d]).set(`${p}mlp.b2`, [d]);
  }
  shapes.set('final.gamma', [d]).set('final.beta', [d]);
  shapes.set('slot.role', [PARAM_ROLES.length, d]);
  shapes.set('slot.w1', [d, 2 * d]).set('slot.b1', [2 * d]).set('slot.w2', [2 * d, d]);
  shapes.set('slot.gamma', [d]).set('slot.beta', [d]);
  shapes.set('decoder.rows', [d, CHANNEL_CODE_DIM * c.rank]);
  shapes.set('decoder.cols', [d, CHANNEL_CODE_DIM * c.rank]);
  shapes.set('decoder.taps', [d, TAP_CODE_DIM * c.rank]);
  shapes.set('decoder.vector', [d, CHANNEL_CODE_DIM]);
  shapes.set('decoder.gain', [d, 1]);
  // Last, so the initial values of everything above do not depend on this option.
  if (c.classifierMaps) for (const map of CLASSIFIER_MAPS) shapes.set(`decoder.${map}.classifier`, shapes.get(`decoder.${map}`)!);
  if (c.latentDim) shapes.set('latent.proj', [c.latentDim, d]);
  return shapes;
}

/** Decoder maps that have classifier-specific additions when `classifierMaps` is set. */
export const CLASSIFIER_MAPS = ['rows', 'cols', 'taps', 'vector', 'gain'] as const;
export type DecoderMap = (typeof CLASSIFIER_MAPS)[number];

type InitRule = 'zeros' | 'ones' | 'unit' | 'fan_in' | 'small';

/** Initialization by name suffix: LN gains 1, biases 0, embeddings N(0, 1), matrices N(0, 1/fan_in). */
function initRule(name: string): InitRule {
  if (name.endsWith('gamma')) return 'ones';
  if (name.endsWith('beta') || /\.b\d$/.test(name) || name.endsWith('attn.bias') || name === 'decoder.gain' || name.endsWith('.classifier')) return 'zeros';
  if (name.startsWith('embed.') && name !== 'embed.features') return 'unit';
  if (name === 'slot.role') return 'unit';
  // Small but not zero: at P = 0 two samples are the same network, and a disagreement between them has no gradient.
  if (name === 'latent.proj') return 'small';
  return 'fan_in';
}

function initialValue(name: string, shape: number[], rng: () => number): Float32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  const rule = initRule(name);
  if (rule === 'ones') out.fill(1);
  if (rule === 'unit' || rule === 'fan_in' || rule === 'small') {
    const std = rule === 'unit' ? 1 : (rule === 'small' ? LATENT_INIT_SCALE : 1) / Math.sqrt(shape[0]!);
    for (let i = 0; i < size; i++) out[i] = gaussian(rng) * std;
  }
  return out;
}

/** latent.proj starts at this fraction of a fan-in init: samples differ a little, the prediction barely moves. */
const LATENT_INIT_SCALE = 0.1;

/** tfjs variable names are global: each model instance gets its own prefix. */
let instances = 0;

export class GhnModel {
  readonly variables = new Map<string, tf.Variable>();

  constructor(readonly config: GhnConfig, values?: ReadonlyMap<string, Float32Array>) {
    const shapes = variableShapes(config);
    // A loaded GHN supplies every value: no draw (~30 ms of every predict went to one it threw away).
    // With some values missing every one is drawn, so the stream does not depend on which are given.
    const complete = values !== undefined && [...shapes.keys()].every((name) => values.has(name));
    const rng = complete ? undefined : createRng(config.seed);
    const prefix = `ghn${instances++}`;
    for (const [name, shape] of shapes) {
      const fresh = rng ? initialValue(name, shape, rng) : undefined;
      const value = values?.get(name) ?? fresh!;
      this.variables.set(name, tf.variable(tf.tensor(value, shape), true, `${prefix}/${name}`));
    }
  }

  get parameterCount(): number {
    let n = 0;
    for (const v of this.variables.values()) n += v.size;
    return n;
  }

  v(name: string): tf.Tensor {
    const t = this.variables.get(name);
    if (!t) throw new Error(`GHN variable ${name} missing`);
    return t;
  }

  /** Node embeddings [numOps, hidden] for an encoded graph. Differentiable. */
  embedNodes(enc: GraphEncoding): tf.Tensor2D {
    return tf.tidy(() => {
      const n = enc.numOps;
      let x = gatherRows(this.v('embed.kind') as tf.Tensor2D, enc.kindIds);
      x = tf.add(x, tf.matMul(tf.tensor2d(enc.features, [n, FEATURE_DIM]), this.v('embed.features') as tf.Tensor2D));
      x = tf.add(x, gatherRows(this.v('embed.in_degree') as tf.Tensor2D, enc.inDegree));
      x = tf.add(x, gatherRows(this.v('embed.out_degree') as tf.Tensor2D, enc.outDegree));
            for (let l = 0; l < this.config.layers; l++) {
        const p = `layer${l}.`;
        x = tf.add(x, this.attention(layerNorm(x, this.v(`${p}ln1.gamma`), this.v(`${p}ln1.beta`)), enc.pairBuckets, n, p));
        const h = layerNorm(x, this.v(`${p}ln2.gamma`), this.v(`${p}ln2.beta`));
        const inner = tf.relu(tf.add(tf.matMul(h, this.v(`${p}mlp.w1`) as tf.Tensor2D), this.v(`${p}mlp.b1`)));
        x = tf.add(x, tf.add(tf.matMul(inner, this.v(`${p}mlp.w2`) as tf.Tensor2D), this.v(`${p}mlp.b2`)));
      }
      return layerNorm(x, this.v('final.gamma'), this.v('final.beta')) as tf.Tensor2D;
    });
  }

  private attention(x: tf.Tensor2D, buckets: Int32Array, n: number, p: string): tf.Tensor2D {
    const { hidden: d, heads } = this.config;
    const dh = d / heads;
    const qkv = tf.matMul(x, this.v(`${p}attn.qkv`) as tf.Tensor2D); // [n, 3d]
    const split = (k: number) => tf.transpose(tf.reshape(tf.slice(qkv, [0, k * d], [n, d]), [n, heads, dh]), [1, 0, 2]);
    const [q, k, v] = [split(0), split(1), split(2)]; // [heads, n, dh]
    // Bias per head from the pair-bucket table: [n·n, heads] → [heads, n, n].
    const bias = tf.reshape(tf.transpose(gatherRows(this.v(`${p}attn.bias`) as tf.Tensor2D, buckets)), [heads, n, n]);
    const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)), bias);
    const mixed = tf.matMul(tf.softmax(scores), v); // [heads, n, dh]
    const merged = tf.reshape(tf.transpose(mixed, [1, 0, 2]), [n, d]);
    return tf.matMul(merged, this.v(`${p}attn.out`) as tf.Tensor2D);
  }

  dispose(): void {
    for (const v of this.variables.values()) v.dispose();
    this.variables.clear();
  }
}

/**
 * Rows `idx` of a 2-D table, differentiable. tf.gather on wasm costs ~30 µs per gathered row
 * (measured: 4,000 rows of 32 floats in 114 ms, a slice of the same size in 1 ms), so the forward
 * copies rows in JS; the backward is the UnsortedSegmentSum kernel (a JS loop on wasm).
 * `appendOne` adds a constant column of ones (no gradient) to the result.
 */
export function gatherRows(table: tf.Tensor2D, idx: Int32Array, appendOne = false): tf.Tensor2D {
  const [rows, width] = table.shape;
  const outWidth = appendOne ? width + 1 : width;
  const f = tf.customGrad(((t: tf.Tensor, save: tf.GradSaveFunc) => {
    const src = t.dataSync() as Float32Array;
    const out = new Float32Array(idx.length * outWidth);
    if (width >= 16) {
      for (let i = 0; i < idx.length; i++) {
        out.set(src.subarray(idx[i]! * width, (idx[i]! + 1) * width), i * outWidth);
        if (appendOne) out[i * outWidth + width] = 1;
      }
    } else {
      for (let i = 0, o = 0; i < idx.length; i++) {
        for (let k = 0, j = idx[i]! * width; k < width; k++) out[o++] = src[j + k]!;
        if (appendOne) out[o++] = 1;
      }
    }
    save([]);
    return {
      value: tf.tensor2d(out, [idx.length, outWidth]),
      gradFunc: (dy: tf.Tensor) => tf.unsortedSegmentSum(appendOne ? tf.slice(dy, [0, 0], [-1, width]) : dy, tf.tensor1d(idx, 'int32'), rows),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(table) as tf.Tensor2D;
}

/** Layer normalization over the last axis. */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), gamma), beta) as tf.Tensor2D;
}
