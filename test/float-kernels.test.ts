/**
 * The WebAssembly float kernels give the JS loops' results bit for bit: the scale on lengths around
 * the 4-float step and the 1 MiB window, the first non-finite index wherever it lies (a window's
 * first or last value, the scalar tail), with the largest finite float and subnormals left alone,
 * and the default-init mix (mix-kernel.ts) against the general path's draws from createRng.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mixSlot } from '../src/postprocess/default-init.js';
import { mixUsesWebAssembly } from '../src/postprocess/mix-kernel.js';
import { firstNonFinite, scaleInPlace, usesWebAssembly } from '../src/predict/float-kernels.js';
import { createRng, gaussian } from '../src/util/random.js';

const WINDOW = 1 << 18;
const LENGTHS = [0, 1, 3, 4, 5, 17, WINDOW - 1, WINDOW, WINDOW + 3, 2 * WINDOW + 7];

function randomArray(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => gaussian(rng) * 10 ** (4 * rng() - 2));
}

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('float kernels', () => {
  it('run in WebAssembly SIMD on Node 20 (the module validates)', () => {
    assert.equal(usesWebAssembly(), true);
    assert.equal(mixUsesWebAssembly(), true);
  });

  it('scaleInPlace gives the JS loop\'s bits', () => {
    for (const n of LENGTHS) {
      for (const scale of [Math.fround(0.37219), Math.fround(1e-3), 1e3, Math.fround(1.0000001), Math.fround(7.5e-2), 0.1 /* not a float32: the JS loop */]) {
        const values = randomArray(n, n + 1);
        const expected = values.slice();
        for (let i = 0; i < expected.length; i++) expected[i]! *= scale;
        scaleInPlace(values, scale);
        assert.ok(bits(values).equals(bits(expected)), `length ${n}, scale ${scale}`);
      }
    }
  });

  it('scaleInPlace works on a view inside a larger buffer and leaves the rest alone', () => {
    const whole = randomArray(WINDOW + 40, 9);
    const before = whole.slice();
    const view = whole.subarray(5, WINDOW + 30);
    scaleInPlace(view, 0.5);
    for (let i = 0; i < whole.length; i++) {
      const inside = i >= 5 && i < WINDOW + 30;
      assert.equal(whole[i], inside ? Math.fround(before[i]! * 0.5) : before[i], `index ${i}`);
    }
  });

  it('firstNonFinite finds the first ±Infinity or NaN, and -1 for finite arrays', () => {
    for (const n of LENGTHS) {
      const values = randomArray(n, 2 * n + 3);
      assert.equal(firstNonFinite(values), -1, `finite, length ${n}`);
      if (n === 0) continue;
      const positions = [...new Set([0, n - 1, Math.min(n - 1, WINDOW - 1), Math.min(n - 1, WINDOW), n >> 1, n - 2 < 0 ? 0 : n - 2])];
      for (const at of positions) {
        for (const bad of [Infinity, -Infinity, NaN]) {
          const copy = values.slice();
          copy[at] = bad;
          if (at + 1 < n) copy[n - 1] = NaN; // a later one does not hide the first
          assert.equal(firstNonFinite(copy), at, `length ${n}, ${bad} at ${at}`);
        }
      }
    }
  });

  it('firstNonFinite leaves the largest float, subnormals, zeros and negative zero alone', () => {
    const values = Float32Array.of(3.4028234663852886e38, -3.4028234663852886e38, 1.4e-45, -1.4e-45, 0, -0, 1.1754942e-38, 5);
    assert.equal(firstNonFinite(values), -1);
  });

  it('the uniform-fan-in mix gives the bits of (1 − t)·p + t·fround((2u − 1)·bound) with u from createRng', () => {
    for (const n of [1, 3, 4, 5, 7, WINDOW - 1, WINDOW, WINDOW + 5, 2 * WINDOW + 3]) {
      for (const [t, bound, seed] of [[0.2, 0.05, 1], [0.5, 1 / Math.sqrt(27), 12345], [0.2, 0.0123, 0xffffffff], [1, 3, 7]] as const) {
        const p = randomArray(n, n + seed);
        const rng = createRng(seed);
        const expected = Float32Array.from(p, (v) => (1 - t) * v + t * Math.fround((2 * rng() - 1) * bound));
        const mixed = mixSlot(p, t, { rule: { kind: 'uniform-fan-in' }, bound }, seed);
        assert.ok(bits(mixed).equals(bits(expected)), `length ${n}, t ${t}, seed ${seed}`);
      }
    }
  });
});
