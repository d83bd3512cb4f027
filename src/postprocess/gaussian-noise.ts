/**
 * Seeded standard-normal noise for whole weight tensors (tens of millions of values per model):
 * the ziggurat method (Marsaglia & Tsang 2000, 128 layers). About 98.8% of draws cost one 32-bit
 * random integer, a table lookup and a multiply; Box–Muller needs a log, a square root and two
 * trigonometric calls per pair. The layer index and the value come from different bits of the
 * integer (low 7 bits vs the upper 25), which avoids the correlation of the original recipe.
 */
import type { Rng } from '../util/random.js';

const LAYERS = 128;
/** Right edge of the base strip and the area of every layer, for 128 layers. */
const R = 3.442619855899;
const AREA = 9.91256303526217e-3;
/** The value part of the draw is a signed 25-bit integer. */
const SCALE = 2 ** 24;

const kn = new Int32Array(LAYERS);
const wn = new Float64Array(LAYERS);
const fn = new Float64Array(LAYERS);
{
  let dn = R;
  let tn = dn;
  const q = AREA / Math.exp(-0.5 * dn * dn);
  kn[0] = Math.floor((dn / q) * SCALE);
  kn[1] = 0;
  wn[0] = q / SCALE;
  wn[LAYERS - 1] = dn / SCALE;
  fn[0] = 1;
  fn[LAYERS - 1] = Math.exp(-0.5 * dn * dn);
  for (let i = LAYERS - 2; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(AREA / dn + Math.exp(-0.5 * dn * dn)));
    kn[i + 1] = Math.floor((dn / tn) * SCALE);
    tn = dn;
    fn[i] = Math.exp(-0.5 * dn * dn);
    wn[i] = dn / SCALE;
  }
}

/** The mulberry32 output for a state (the state advances by 0x6d2b79f5 per draw). */
function mulberry32(state: number): number {
  let t = Math.imul(state ^ (state >>> 15), state | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}

const STEP = 0x6d2b79f5;
/** Maps a 32-bit draw to (0, 1]: safe for log. */
const unit = (bits: number): number => (bits + 1) / 4294967296;

/** Σx and Σx² of an array. */
export interface Moments {
  sum: number;
  sumSquares: number;
}

/**
 * target[i] += sigma · N(0, 1) for every element, drawing from `rng` (uniform on [0, 1), 32-bit
 * resolution). Returns the moments of the result, gathered in the same pass (a caller that needs
 * the standard deviation saves a pass over tens of MB).
 */
export function addGaussianNoise(target: Float64Array, sigma: number, rng: Rng): Moments {
  let sum = 0, sumSquares = 0;
  // A local mulberry32 stream seeded from `rng`, its state a plain local: a state captured by a
  // closure lives in a context object and costs a heap number per draw (~3× slower).
  let state = (rng() * 4294967296) >>> 0;
  for (let i = 0; i < target.length; i++) {
    state = (state + STEP) | 0;
    const bits = mulberry32(state);
    const hz = bits >> 7; // signed 25-bit value (the sign comes from the top bit)
    const iz = bits & (LAYERS - 1);
    // The fast path's value, kept unless the draw falls outside its layer's rectangle (~1.2%).
    // |hz| without a branch: a sign test is mispredicted on every other draw (2× slower overall).
    let value = hz * wn[iz]!;
    if (((hz ^ (hz >> 31)) - (hz >> 31)) >= kn[iz]!) {
      value = slowDraw(hz, iz, state);
      state = slowState;
    }
    const x = target[i]! + sigma * value;
    target[i] = x;
    sum += x;
    sumSquares += x * x;
  }
  return { sum, sumSquares };
}

/** The stream's state after the last slowDraw, whose extra draws advance it. */
let slowState = 0;

/** The ziggurat's slow path for a rejected first draw (hz, iz): the wedge of a layer, or the tail beyond R. */
function slowDraw(hz: number, iz: number, state: number): number {
  for (;;) {
    const x = hz * wn[iz]!;
    if (iz === 0) {
      let tx: number, ty: number;
      do {
        state = (state + STEP) | 0;
        tx = -Math.log(unit(mulberry32(state))) / R;
        state = (state + STEP) | 0;
        ty = -Math.log(unit(mulberry32(state)));
      } while (ty + ty < tx * tx);
      slowState = state;
      return hz > 0 ? R + tx : -R - tx;
    }
    state = (state + STEP) | 0;
    if (fn[iz]! + unit(mulberry32(state)) * (fn[iz - 1]! - fn[iz]!) < Math.exp(-0.5 * x * x)) {
      slowState = state;
      return x;
    }
    state = (state + STEP) | 0;
    const bits = mulberry32(state);
    hz = bits >> 7;
    iz = bits & (LAYERS - 1);
    if ((hz < 0 ? -hz : hz) < kn[iz]!) {
      slowState = state;
      return hz * wn[iz]!;
    }
  }
}
