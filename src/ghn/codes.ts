/**
 * Fixed (not learned) constant-norm codes of tensor indices, the φ/ψ of the low-rank decoder.
 *
 * - Channel codes: one pseudo-random unit vector per channel index, the same for every layer, so
 *   output channel i of one layer and input channel i of the next receive the same code and the
 *   GHN can coordinate them. Random unit vectors are near-orthogonal, which keeps rows of a
 *   predicted matrix diverse (sinusoidal codes make neighbouring channels nearly parallel).
 * - Tap codes: the kernel offset (dy, dx), normalized to [-1, 1] per axis, encoded as
 *   [cos(πu/2), sin(πu/2), cos(πu), sin(πu)] per axis (norm 2 for every tap), so spatially
 *   smooth filters are easy to express and any kernel size shares the same code space.
 */
import * as tf from '../engine/tfjs-core.js';
import { createRng, deriveSeed, gaussian } from '../util/random.js';

export const CHANNEL_CODE_DIM = 32;
export const TAP_CODE_DIM = 8;
const CHANNEL_CODE_SEED = 0x6c0de5;

let channelTable = new Float32Array(0);
let channelTableRows = 0;

function growChannelTable(rows: number): void {
  if (rows <= channelTableRows) return;
  const capacity = Math.max(rows, channelTableRows * 2, 256);
  const next = new Float32Array(capacity * CHANNEL_CODE_DIM);
  next.set(channelTable);
  for (let i = channelTableRows; i < capacity; i++) {
    const rng = createRng(deriveSeed(CHANNEL_CODE_SEED, i));
    let norm = 0;
    const row = next.subarray(i * CHANNEL_CODE_DIM, (i + 1) * CHANNEL_CODE_DIM);
    for (let k = 0; k < CHANNEL_CODE_DIM; k++) {
      row[k] = gaussian(rng);
      norm += row[k]! * row[k]!;
    }
    const inv = 1 / Math.sqrt(norm);
    for (let k = 0; k < CHANNEL_CODE_DIM; k++) row[k]! *= inv;
  }
  channelTable = next;
  channelTableRows = capacity;
}

/** Codes of channel indices 0..count-1, [count, CHANNEL_CODE_DIM] row-major. */
export function channelCodes(count: number): Float32Array {
  growChannelTable(count);
  return channelTable.subarray(0, count * CHANNEL_CODE_DIM);
}

/** Codes of the taps of a kH×kW kernel in row-major tap order, [kH·kW, TAP_CODE_DIM]. */
export function tapCodes(kH: number, kW: number): Float32Array {
  const out = new Float32Array(kH * kW * TAP_CODE_DIM);
  const offset = (i: number, k: number) => (k > 1 ? (2 * i) / (k - 1) - 1 : 0);
  for (let y = 0; y < kH; y++) {
    for (let x = 0; x < kW; x++) {
      const row = (y * kW + x) * TAP_CODE_DIM;
      [offset(y, kH), offset(x, kW)].forEach((u, axis) => {
        const base = row + axis * 4;
        out[base] = Math.cos((Math.PI * u) / 2);
        out[base + 1] = Math.sin((Math.PI * u) / 2);
        out[base + 2] = Math.cos(Math.PI * u);
        out[base + 3] = Math.sin(Math.PI * u);
      });
    }
  }
  return out;
}

/**
 * Per-prediction cache of code tensors: one channel-code tensor covering the largest index a graph
 * needs (sliced per slot) and one tap-code tensor per kernel shape. Create it inside the tidy or
 * gradient scope of the prediction: that scope frees the tensors once the backward pass is done.
 */
export class CodeTensors {
  private readonly taps = new Map<string, tf.Tensor2D>();
  readonly channels: tf.Tensor2D;

  constructor(maxIndex: number) {
    this.channels = tf.tensor2d(channelCodes(Math.max(1, maxIndex)), [Math.max(1, maxIndex), CHANNEL_CODE_DIM]);
  }

  /** Channel codes 0..count-1. */
  channelSlice(count: number): tf.Tensor2D {
    return count === this.channels.shape[0] ? this.channels : tf.slice(this.channels, [0, 0], [count, CHANNEL_CODE_DIM]);
  }

  /** Codes of the channel indices `indices`, or of 0..count-1 when there are none. */
  indexed(count: number, indices?: Int32Array): tf.Tensor2D {
    return indices ? tf.gather(this.channels, tf.tensor1d(indices, 'int32')) : this.channelSlice(count);
  }

  tap(kH: number, kW: number): tf.Tensor2D {
    const key = `${kH}x${kW}`;
    let t = this.taps.get(key);
    if (!t) {
      t = tf.tensor2d(tapCodes(kH, kW), [kH * kW, TAP_CODE_DIM]);
      this.taps.set(key, t);
    }
    return t;
  }
}
