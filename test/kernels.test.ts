/**
 * ghn's wasm kernels and fused ops against the pure-JS cpu backend (the reference), on random
 * inputs: the same function runs on both backends and outputs/gradients must agree to 1e-4
 * relative (max abs difference / max abs reference).
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import {
  batchNormTrain, channelAffine, columnSums, conv2dBackpropFilter, conv2dBackpropInput, convGeometry, depthwiseBackpropFilter,
  depthwiseBackpropInput, groupedConv2d, layerNorm,
} from '../src/engine/kernels/index.js';
import { rowBroadcastPlan } from '../src/engine/kernels/row-broadcast.js';
import { asMatrixTranspose } from '../src/engine/kernels/transpose-kernel.js';

const TOL = 1e-4;

/** Deterministic pseudo-random values in [-1, 1). */
function randoms(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

interface Result { shape: number[]; values: Float32Array }

/** Runs f on a backend; f receives fresh tensors built from the same data each time. */
function runOn(backend: 'cpu' | 'wasm', f: () => tf.Tensor | tf.Tensor[]): Result[] {
  assert.ok(tf.setBackend(backend));
  // Read values outside tidy: tidy walks a returned container element by element.
  const outs = tf.tidy(() => { const out = f(); return Array.isArray(out) ? out : [out]; });
  const results = outs.map((t) => ({ shape: t.shape, values: t.dataSync() as Float32Array }));
  tf.dispose(outs);
  return results;
}

function relError(actual: Float32Array, expected: Float32Array): number {
  let maxDiff = 0, maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  return maxDiff / (maxRef || 1);
}

/** f on wasm vs f on cpu: same shapes, values within TOL. Returns the wasm results. */
function agree(label: string, f: () => tf.Tensor | tf.Tensor[]): Result[] {
  const ref = runOn('cpu', f);
  const got = runOn('wasm', f);
  assert.equal(got.length, ref.length, label);
  got.forEach((g, i) => {
    assert.deepEqual(g.shape, ref[i]!.shape, `${label} output ${i} shape`);
    assert.ok(!g.values.some(Number.isNaN), `${label} output ${i} has NaN`);
    const err = relError(g.values, ref[i]!.values);
    assert.ok(err <= TOL, `${label} output ${i}: relative error ${err.toExponential(2)} > ${TOL}`);
  });
  return got;
}

function tensor(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(randoms(size(shape), seed), shape);
}

/** A loss whose gradient is a non-uniform dy: Σ sin(y)·c, so every dy entry differs. */
function weightedSum(y: tf.Tensor): tf.Scalar {
  return tf.sum(tf.mul(tf.sin(y), tensor(y.shape, 99))) as tf.Scalar;
}

before(async () => {
  await initBackend('wasm');
  tf.setBackend('cpu'); // make sure cpu is initialized too
  await tf.ready();
});

type PadCase = 'same' | 'valid' | number[][];
interface ConvCase { batch: number; hw: [number, number]; cin: number; cout: number; k: [number, number]; stride: number; pad: PadCase }

const convCases: ConvCase[] = [
  { batch: 1, hw: [9, 9], cin: 3, cout: 5, k: [3, 3], stride: 1, pad: 'same' },
  { batch: 3, hw: [9, 8], cin: 3, cout: 5, k: [3, 3], stride: 2, pad: 'same' },
  { batch: 3, hw: [10, 7], cin: 4, cout: 7, k: [3, 3], stride: 2, pad: 'valid' },
  { batch: 1, hw: [11, 11], cin: 5, cout: 6, k: [5, 5], stride: 2, pad: [[0, 0], [1, 2], [2, 0], [0, 0]] },
  { batch: 3, hw: [8, 8], cin: 7, cout: 3, k: [1, 1], stride: 2, pad: 'valid' },
  { batch: 1, hw: [6, 6], cin: 1, cout: 8, k: [3, 2], stride: 1, pad: 'valid' },
  { batch: 3, hw: [7, 7], cin: 16, cout: 9, k: [3, 3], stride: 1, pad: [[0, 0], [1, 1], [1, 1], [0, 0]] },
  // Stride 1 with C_in < C_out: the filter gradient with dy as the conv input and x as the filter.
  { batch: 2, hw: [8, 9], cin: 4, cout: 9, k: [3, 3], stride: 1, pad: 'same' },
  { batch: 3, hw: [7, 6], cin: 5, cout: 8, k: [3, 2], stride: 1, pad: 'valid' },
  { batch: 2, hw: [9, 9], cin: 6, cout: 10, k: [5, 5], stride: 1, pad: [[0, 0], [2, 1], [0, 2], [0, 0]] },
  { batch: 2, hw: [5, 5], cin: 30, cout: 40, k: [1, 1], stride: 1, pad: 'valid' },
  // Strided and C_in ≥ C_out: x as the conv input, channels along the width.
  { batch: 2, hw: [9, 11], cin: 8, cout: 4, k: [3, 3], stride: 2, pad: 'same' },
  { batch: 2, hw: [8, 8], cin: 7, cout: 7, k: [2, 2], stride: 2, pad: 'valid' },
  { batch: 2, hw: [7, 7], cin: 30, cout: 12, k: [1, 1], stride: 2, pad: 'valid' },
  { batch: 1, hw: [6, 9], cin: 9, cout: 3, k: [2, 4], stride: 3, pad: [[0, 0], [2, 0], [1, 3], [0, 0]] },
];

describe('conv2d gradients on wasm match cpu', () => {
  for (const c of convCases) {
    test(`B${c.batch} ${c.hw.join('×')}×${c.cin}→${c.cout} k${c.k.join('×')} s${c.stride} ${JSON.stringify(c.pad)}`, () => {
      agree('conv2d grads', () => {
        const x = tensor([c.batch, ...c.hw, c.cin], 1) as tf.Tensor4D;
        const w = tensor([...c.k, c.cin, c.cout], 2) as tf.Tensor4D;
        const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          weightedSum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad as 'same')))([x, w]);
        return [dx!, dw!];
      });
    });
  }
});

describe('depthwise conv gradients on wasm match cpu', () => {
  const cases = [
    { batch: 1, hw: [9, 9], c: 3, m: 1, k: 3, stride: 1, pad: 'same' as PadCase },
    { batch: 3, hw: [10, 9], c: 5, m: 1, k: 3, stride: 2, pad: 'same' as PadCase },
    { batch: 3, hw: [9, 9], c: 4, m: 2, k: 3, stride: 2, pad: 'valid' as PadCase },
    { batch: 1, hw: [12, 12], c: 7, m: 1, k: 5, stride: 2, pad: [[0, 0], [2, 1], [1, 2], [0, 0]] as PadCase },
  ];
  for (const c of cases) {
    test(`B${c.batch} ${c.hw.join('×')}×${c.c} m${c.m} k${c.k} s${c.stride} ${JSON.stringify(c.pad)}`, () => {
      agree('depthwise grads', () => {
        const x = tensor([c.batch, ...c.hw, c.c], 3) as tf.Tensor4D;
        const w = tensor([c.k, c.k, c.c, c.m], 4) as tf.Tensor4D;
        const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          weightedSum(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad as 'same')))([x, w]);
        return [dx!, dw!];
      });
    });
  }
});

/**
 * Dilated convs: tfjs-core's own gradients refuse dilations, so check ghn's backprop functions by
 * the adjoint identities ⟨dy, conv(x, w)⟩ = ⟨bpFilter(x, dy), w⟩ = ⟨bpInput(dy, w), x⟩, with the
 * cpu backend's forward conv as the reference, and the same functions on wasm against cpu.
 */
describe('dilated conv backprop (adjoint identities)', () => {
  const cases = [
    { batch: 2, hw: [11, 11], cin: 3, cout: 4, k: 3, stride: 1, dil: 2, pad: 'same' as const, depthwise: false },
    { batch: 1, hw: [13, 12], cin: 5, cout: 3, k: 3, stride: 2, dil: 2, pad: 'valid' as const, depthwise: false },
    { batch: 3, hw: [10, 10], cin: 4, cout: 4, k: 3, stride: 1, dil: 3, pad: 'same' as const, depthwise: true },
    { batch: 2, hw: [12, 12], cin: 3, cout: 6, k: 3, stride: 1, dil: 2, pad: 'valid' as const, depthwise: true },
  ];
  for (const c of cases) {
    test(`${c.depthwise ? 'depthwise' : 'conv'} ${c.hw.join('×')}×${c.cin}→${c.cout} s${c.stride} d${c.dil} ${c.pad}`, () => {
      const wShape = c.depthwise ? [c.k, c.k, c.cin, c.cout / c.cin] : [c.k, c.k, c.cin, c.cout];
      const run = () => {
        const x = tensor([c.batch, ...c.hw, c.cin], 5) as tf.Tensor4D;
        const w = tensor(wShape, 6) as tf.Tensor4D;
        const g = convGeometry(x.shape, w.shape, c.stride, c.dil, c.pad, undefined, c.depthwise);
        const y = tf.engine().runKernel(c.depthwise ? 'DepthwiseConv2dNative' : 'Conv2D', { x, filter: w },
          { strides: c.stride, pad: c.pad, dilations: c.dil, dataFormat: 'NHWC' } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
        const dy = tensor(y.shape, 7) as tf.Tensor4D;
        const dw = c.depthwise ? depthwiseBackpropFilter(x, dy, w.shape, g) : conv2dBackpropFilter(x, dy, g);
        const dx = c.depthwise ? depthwiseBackpropInput(dy, w, x.shape, g) : conv2dBackpropInput(dy, w, x.shape, g);
        return [tf.sum(tf.mul(dy, y)), tf.sum(tf.mul(dw, w)), tf.sum(tf.mul(dx, x)), dw, dx];
      };
      const [yDot, wDot, xDot] = runOn('cpu', run).map((r) => r.values[0]!);
      assert.ok(Math.abs(wDot! - yDot!) <= 1e-4 * Math.abs(yDot!), `filter adjoint ${wDot} vs ${yDot}`);
      assert.ok(Math.abs(xDot! - yDot!) <= 1e-4 * Math.abs(yDot!), `input adjoint ${xDot} vs ${yDot}`);
      agree('dilated backprop', run);
    });
  }
});

describe('groupedConv2d', () => {
  /** Reference: per-group Conv2D kernel calls on channel slices (the kernel accepts stride and dilation together). */
  function reference(x: tf.Tensor4D, w: tf.Tensor4D, groups: number, stride: number, pad: 'same' | 'valid', dil: number): tf.Tensor4D {
    const conv = (a: tf.Tensor, b: tf.Tensor) => (dil === 1
      ? tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad)
      : tf.engine().runKernel('Conv2D', { x: a, filter: b }, { strides: stride, pad, dilations: dil, dataFormat: 'NHWC' } as unknown as tf.NamedAttrMap) as tf.Tensor4D);
    if (groups === 1) return conv(x, w);
    const xs = tf.split(x, groups, 3), ws = tf.split(w, groups, 3);
    return tf.concat(xs.map((xg, g) => conv(xg, ws[g]!)), 3) as tf.Tensor4D;
  }
  const cases = [
    { groups: 1, cin: 4, cout: 6, stride: 2, dil: 1, pad: 'same' as const },
    { groups: 2, cin: 6, cout: 4, stride: 1, dil: 1, pad: 'same' as const },
    { groups: 3, cin: 9, cout: 6, stride: 2, dil: 1, pad: 'valid' as const },
    { groups: 8, cin: 16, cout: 8, stride: 1, dil: 1, pad: 'same' as const },
    { groups: 5, cin: 5, cout: 10, stride: 2, dil: 1, pad: 'same' as const },
    { groups: 5, cin: 5, cout: 5, stride: 1, dil: 2, pad: 'same' as const },
    { groups: 2, cin: 4, cout: 4, stride: 1, dil: 2, pad: 'valid' as const },
    { groups: 4, cin: 4, cout: 8, stride: 2, dil: 2, pad: 'same' as const },
    { groups: 1, cin: 3, cout: 4, stride: 2, dil: 2, pad: 'valid' as const },
  ];
  for (const c of cases) {
    test(`groups ${c.groups}: ${c.cin}→${c.cout} s${c.stride} d${c.dil} ${c.pad}`, () => {
      const build = () => ({
        x: tensor([3, 9, 9, c.cin], 8) as tf.Tensor4D,
        w: tensor([3, 3, c.cin / c.groups, c.cout], 9) as tf.Tensor4D,
      });
      const [ref] = runOn('cpu', () => { const { x, w } = build(); return reference(x, w, c.groups, c.stride, c.pad, c.dil); });
      const [got] = agree('grouped forward', () => { const { x, w } = build(); return groupedConv2d(x, w, c.groups, c.stride, c.pad, c.dil); });
      assert.ok(relError(got!.values, ref!.values) <= TOL, 'matches per-group reference');
      agree('grouped grads', () => {
        const { x, w } = build();
        const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          weightedSum(groupedConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.groups, c.stride, c.pad, c.dil)))([x, w]);
        return [dx!, dw!];
      });
      if (c.dil === 1) {
        // Gradients equal those of the slicing reference (tfjs autodiff) on cpu.
        const refGrads = runOn('cpu', () => {
          const { x, w } = build();
          const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
            weightedSum(reference(a as tf.Tensor4D, b as tf.Tensor4D, c.groups, c.stride, c.pad, 1)))([x, w]);
          return [dx!, dw!];
        });
        const mine = runOn('cpu', () => {
          const { x, w } = build();
          const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
            weightedSum(groupedConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.groups, c.stride, c.pad, 1)))([x, w]);
          return [dx!, dw!];
        });
        mine.forEach((m, i) => assert.ok(relError(m.values, refGrads[i]!.values) <= TOL, `grad ${i} vs reference`));
      }
    });
  }
  test('rejects inconsistent groups', () => {
    tf.setBackend('wasm');
    tf.tidy(() => assert.throws(() => groupedConv2d(tf.zeros([1, 4, 4, 6]), tf.zeros([3, 3, 4, 4]), 4), /groups/));
  });
});

describe('BatchMatMul on wasm matches cpu', () => {
  // tfjs-core cannot differentiate a batched × shared-matrix product (gradient shape bug on every
  // backend), so that case checks the forward product only.
  const cases: { a: number[]; b: number[]; ta: boolean; tb: boolean; forwardOnly?: boolean }[] = [
    { a: [17, 33], b: [33, 9], ta: false, tb: false },
    { a: [33, 17], b: [33, 9], ta: true, tb: false },
    { a: [17, 33], b: [9, 33], ta: false, tb: true },
    { a: [33, 17], b: [9, 33], ta: true, tb: true },
    { a: [40, 3], b: [40, 50], ta: true, tb: false }, // weight-gradient shape that packs a instead of b
    { a: [3, 17, 33], b: [33, 9], ta: false, tb: false, forwardOnly: true },
    { a: [3, 17, 33], b: [3, 33, 9], ta: false, tb: false },
    { a: [2, 3, 17, 33], b: [2, 3, 9, 33], ta: false, tb: true },
    { a: [4, 33, 17], b: [4, 33, 9], ta: true, tb: false },
    { a: [1, 5, 7], b: [1, 7, 3], ta: false, tb: false },
    { a: [5, 7], b: [4, 7, 3], ta: false, tb: false, forwardOnly: true },
    { a: [7, 5], b: [2, 2, 3, 7], ta: true, tb: true, forwardOnly: true },
    { a: [1, 1, 7, 5], b: [3, 5, 4], ta: false, tb: false, forwardOnly: true },
    { a: [3, 7, 5], b: [1, 1, 5, 4], ta: false, tb: false, forwardOnly: true },
    // Small entries run in the backend's batched loop, larger ones as one XNNPACK product per entry.
    { a: [4, 6, 7], b: [4, 5, 7], ta: false, tb: true },
    { a: [2, 2, 7, 6], b: [2, 2, 7, 5], ta: true, tb: false },
    { a: [3, 40, 30], b: [3, 30, 20], ta: false, tb: false },
    { a: [2, 30, 40], b: [2, 20, 30], ta: true, tb: true },
  ];
  for (const c of cases) {
    test(`${JSON.stringify(c.a)}${c.ta ? 'ᵀ' : ''} × ${JSON.stringify(c.b)}${c.tb ? 'ᵀ' : ''} and its gradient`, () => {
      agree('matMul', () => {
        const a = tensor(c.a, 10), b = tensor(c.b, 11);
        const y = tf.matMul(a, b, c.ta, c.tb);
        if (c.forwardOnly) return [y];
        const [da, db] = tf.grads((p: tf.Tensor, q: tf.Tensor) => weightedSum(tf.matMul(p, q, c.ta, c.tb)))([a, b]);
        return [y, da!, db!];
      });
    });
  }
});

describe('fused matMul (bias + activation) with transpose flags on wasm matches cpu', () => {
  for (const [ta, tb] of [[false, true], [true, false], [true, true]] as const) {
    test(`transposeA ${ta}, transposeB ${tb}`, () => {
      agree('fused matMul', () => {
        const a = tensor(ta ? [13, 6] : [6, 13], 44), b = tensor(tb ? [5, 13] : [13, 5], 45), bias = tensor([5], 46);
        return [
          tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, transposeA: ta, transposeB: tb, bias, activation: 'relu' }),
          tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, transposeA: ta, transposeB: tb }),
        ];
      });
    });
  }
});

describe('reductions', () => {
  test('sum and mean over leading axes (bias gradients) match cpu', () => {
    agree('leading reductions', () => {
      const x = tensor([3, 5, 7, 6], 12);
      return [tf.sum(x, [0, 1, 2]), tf.mean(x, [0, 1]), tf.sum(x, 0, true), tf.sum(x, [1, 2]), tf.mean(x, -1), tf.sum(x)];
    });
  });
  test('columnSums of 2M rows stays within 1e-5 of a float64 sum', () => {
    tf.setBackend('wasm');
    const m = 1 << 21, c = 3;
    const data = randoms(m * c, 13).map((v) => v + 1); // positive: worst case for drift
    const ref = new Float64Array(c);
    for (let i = 0; i < data.length; i++) ref[i % c] += data[i]!;
    const sums = tf.tidy(() => columnSums(tf.tensor2d(data, [m, c])));
    const got = sums.dataSync();
    sums.dispose();
    for (let k = 0; k < c; k++) assert.ok(Math.abs(got[k]! - ref[k]!) / ref[k]! < 1e-5, `column ${k}: ${got[k]} vs ${ref[k]}`);
  });
});

describe('pooling gradients, gather gradient and tile on wasm match cpu', () => {
  const pools: { hw: number[]; k: number; s: number; pad: 'same' | 'valid' }[] = [
    { hw: [8, 8], k: 2, s: 2, pad: 'valid' },
    { hw: [9, 7], k: 3, s: 2, pad: 'same' },
    { hw: [7, 7], k: 3, s: 1, pad: 'valid' },
    { hw: [9, 10], k: 3, s: 3, pad: 'valid' },
    { hw: [7, 9], k: 2, s: 2, pad: 'valid' },
  ];
  for (const p of pools) {
    test(`max/avg pool grads ${p.hw.join('×')} k${p.k} s${p.s} ${p.pad} (with ties from relu)`, () => {
      agree('pool grads', () => {
        const x = tensor([3, ...p.hw, 5], 14);
        const [dMax] = tf.grads((a: tf.Tensor) => weightedSum(tf.maxPool(tf.relu(a) as tf.Tensor4D, p.k, p.s, p.pad)))([x]);
        // Direct gradient of the pool input, with exact ties (zeros): the first maximum gets dy.
        const [dMaxTies] = tf.grads((a: tf.Tensor) => weightedSum(tf.maxPool(a as tf.Tensor4D, p.k, p.s, p.pad)))([tf.relu(x)]);
        const [dAvg] = tf.grads((a: tf.Tensor) => weightedSum(tf.avgPool(a as tf.Tensor4D, p.k, p.s, p.pad)))([x]);
        return [dMax!, dAvg!, dMaxTies!];
      });
    });
  }
  test('global average pool gradient (window = whole image), odd sizes', () => {
    agree('global avg pool grad', () => [7, 1, 6].flatMap((hw) => {
      const x = tensor([3, hw, hw + 2, 5], 44);
      return tf.grads((a: tf.Tensor) => weightedSum(tf.avgPool(a as tf.Tensor4D, [hw, hw + 2], 1, 'valid')))([x]);
    }));
  });
  test('gather gradient (UnsortedSegmentSum) with repeated indices', () => {
    agree('gather grad', () => {
      const table = tensor([11, 6], 15);
      const ids = tf.tensor2d([[1, 3, 3, 0], [10, 1, 1, 1]], [2, 4], 'int32');
      const [dt] = tf.grads((t: tf.Tensor) => weightedSum(tf.gather(t, ids)))([table]);
      return [dt!, tf.unsortedSegmentSum(tensor([8, 3], 16), tf.tensor1d([0, 2, 2, 5, 1, 0, 4, 2], 'int32'), 6)];
    });
  });
  test('slice', () => {
    agree('slice', () => {
      const x = tensor([4, 5, 6, 7], 40);
      return [
        tf.slice(x, [1, 0, 0, 0], [2, 5, 6, 7]), tf.slice(x, [0, 1, 2, 3], [4, 3, 3, 4]), tf.slice(x, [3, 4, 5, 6], [1, 1, 1, 1]),
        tf.slice(x, [0, 0, 0, 2], [-1, -1, -1, 3]), tf.slice(tensor([9, 12], 41), [2, 4], [5, 4]), tf.slice(tensor([10], 42), [3], [4]),
        tf.cast(tf.slice(tf.tensor2d([[1, 2, 3], [4, 5, 6]], [2, 3], 'int32'), [0, 1], [2, 2]), 'float32'),
        ...tf.split(tensor([6, 9], 43), 3, 1),
      ];
    });
  });
  test('tile', () => {
    agree('tile', () => [
      tf.tile(tensor([1, 1, 1, 5], 17), [3, 4, 2, 1]),
      tf.tile(tensor([2, 3], 18), [3, 2]),
      tf.tile(tensor([4], 19), [3]),
      tf.tile(tensor([2, 1, 3], 20), [1, 5, 2]),
    ]);
  });
});

describe('Transpose on wasm matches cpu', () => {
  test('matrix transposes are recognized through size-1 axes and merged axes', () => {
    assert.deepEqual(asMatrixTranspose([512, 32], [1, 0]), [512, 32]);
    assert.deepEqual(asMatrixTranspose([4, 64, 5, 4], [2, 3, 0, 1]), [256, 20]);
    assert.deepEqual(asMatrixTranspose([256, 1, 20], [1, 2, 0]), [256, 20]);
    assert.deepEqual(asMatrixTranspose([8, 32, 16], [2, 0, 1]), [256, 16]);
    assert.equal(asMatrixTranspose([8, 32, 16], [0, 2, 1]), undefined);
    assert.equal(asMatrixTranspose([8, 32, 16], [2, 1, 0]), undefined);
    assert.equal(asMatrixTranspose([8, 32], [0, 1]), undefined);
  });
  test('re-split matrix transposes (rows a multiple of 256) and others, float32 and int32', () => {
    agree('transpose', () => [
      tf.transpose(tensor([1024, 16], 50)),
      tf.transpose(tensor([512, 33], 51)),
      tf.transpose(tensor([4, 64, 5, 4], 52), [2, 3, 0, 1]),
      tf.transpose(tensor([8, 32, 16], 53), [2, 0, 1]),
      tf.transpose(tensor([256, 9], 54)),
      tf.transpose(tensor([300, 20], 55)),
      tf.transpose(tensor([2, 3, 4, 5], 56), [3, 1, 0, 2]),
      tf.cast(tf.transpose(tf.cast(tf.mul(tensor([768, 16], 57), 1000), 'int32')), 'float32'),
    ]);
  });
});

describe('elementwise ops with a short row broadcast over rows on wasm match cpu', () => {
  test('widening plans', () => {
    assert.deepEqual(rowBroadcastPlan([64, 28, 28, 16], [16]), { full: 'a', row: 16, rows: 50176, k: 16 });
    assert.deepEqual(rowBroadcastPlan([1, 1, 3], [300, 3]), { full: 'b', row: 3, rows: 300, k: 100 });
    assert.deepEqual(rowBroadcastPlan([26, 5, 4], [5, 4]), { full: 'a', row: 20, rows: 26, k: 13 });
    assert.equal(rowBroadcastPlan([7, 16], [16]), undefined, 'no divisor of 7 makes the row long enough');
    assert.equal(rowBroadcastPlan([64, 16], [64, 1]), undefined, 'a column, not a row');
    assert.equal(rowBroadcastPlan([64, 16], [1]), undefined, 'scalars keep the backend path');
    assert.equal(rowBroadcastPlan([64, 256], [256]), undefined, 'already long');
    assert.equal(rowBroadcastPlan([64, 16], [64, 16]), undefined);
  });
  test('Add, Sub, Multiply, RealDiv in both operand orders, and their gradients', () => {
    agree('row broadcast', () => {
      const x = tensor([32, 5, 2, 16], 60), row = tensor([16], 61), x2 = tensor([90, 3], 62), row2 = tensor([1, 3], 63);
      const positive = tf.add(tf.abs(tensor([16], 64)), 0.5);
      const [dx, drow] = tf.grads((a: tf.Tensor, b: tf.Tensor) => weightedSum(tf.mul(tf.sub(a, b), tf.add(b, a))))([x, row]);
      return [
        tf.add(x, row), tf.sub(x, row), tf.sub(row, x), tf.mul(row, x), tf.div(x, positive), tf.div(positive, tf.add(tf.abs(x), 0.5)),
        tf.sub(x2, row2), tf.sub(row2, x2), tf.add(tensor([7, 16], 65), row), dx!, drow!,
        tf.cast(tf.add(tf.tensor2d([[1, 2], [3, 4], [5, 6]], [3, 2], 'int32'), tf.tensor1d([10, 20], 'int32')), 'float32'),
      ];
    });
  });
});

describe('buffer-sharing Identity and Cast on wasm', () => {
  test('clones and same-dtype casts outlive their source and are not changed by variable updates', () => {
    tf.setBackend('wasm');
    const before = tf.backend().numDataIds();
    const init = tf.tensor1d([1, 2, 3]), update = tf.tensor1d([7, 8, 9]);
    const v = tf.variable(init);
    const c = tf.clone(v);
    const k = tf.cast(v, 'float32');
    v.assign(update);
    tf.dispose([init, update]);
    assert.deepEqual(Array.from(c.dataSync()), [1, 2, 3]);
    assert.deepEqual(Array.from(k.dataSync()), [1, 2, 3]);
    v.dispose();
    assert.deepEqual(Array.from(c.dataSync()), [1, 2, 3], 'still readable after the source is disposed');
    c.dispose();
    assert.deepEqual(Array.from(k.dataSync()), [1, 2, 3]);
    k.dispose();
    assert.equal(tf.backend().numDataIds(), before, 'the shared buffer is freed with its last tensor');
  });
});

describe('channelAffine (x·scale[c] + shift[c]; a 1×1 depthwise convolution on wasm) matches cpu', () => {
  for (const shape of [[5, 9, 11, 16], [3, 10, 10, 48], [700, 7], [2, 64, 33], [4, 1]]) {
    test(`${JSON.stringify(shape)}, with and without shift`, () => {
      const c = shape[shape.length - 1]!;
      agree('channelAffine', () => {
        const x = tensor(shape, 31), scale = tensor([c], 32) as tf.Tensor1D;
        // A shift stored with another shape (the wasm kernel checks the stored bias shape).
        const shift = tf.reshape(tensor([1, c], 33), [c]) as tf.Tensor1D;
        return [channelAffine(x, scale, shift), channelAffine(x, scale)];
      });
    });
  }
});

describe('batchNormTrain', () => {
  /** Reference by autodiff through moments on cpu. */
  function reference(x: tf.Tensor, g: tf.Tensor1D, b: tf.Tensor1D, eps: number) {
    const axes = x.shape.slice(0, -1).map((_, i) => i);
    const { mean, variance } = tf.moments(x, axes);
    return { y: tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), g), b), mean, variance };
  }
  // The last two are big enough for the wasm per-channel broadcast kernels to take over.
  for (const shape of [[3, 5, 5, 7], [1, 4, 4, 16], [6, 9], [8, 12, 12, 16], [4, 7, 7, 33]]) {
    test(`forward, statistics and gradients on ${JSON.stringify(shape)}`, () => {
      const c = shape[shape.length - 1]!;
      const build = () => ({
        x: tf.add(tf.mul(tensor(shape, 21), 3), 2),
        g: tf.add(tensor([c], 22), 1.5) as tf.Tensor1D,
        b: tensor([c], 23) as tf.Tensor1D,
      });
      const ref = runOn('cpu', () => {
        const { x, g, b } = build();
        const r = reference(x, g, b, 1e-5);
        const grads = tf.grads((p: tf.Tensor, q: tf.Tensor, s: tf.Tensor) => weightedSum(reference(p, q as tf.Tensor1D, s as tf.Tensor1D, 1e-5).y))([x, g, b]);
        return [r.y, r.mean, r.variance, ...grads];
      });
      for (const backend of ['cpu', 'wasm'] as const) {
        const got = runOn(backend, () => {
          const { x, g, b } = build();
          const r = batchNormTrain(x, g, b, 1e-5);
          const grads = tf.grads((p: tf.Tensor, q: tf.Tensor, s: tf.Tensor) => weightedSum(batchNormTrain(p, q as tf.Tensor1D, s as tf.Tensor1D, 1e-5).y))([x, g, b]);
          return [r.y, r.mean, r.variance, ...grads];
        });
        got.forEach((r, i) => {
          assert.deepEqual(r.shape, ref[i]!.shape);
          const err = relError(r.values, ref[i]!.values);
          assert.ok(err <= TOL, `${backend} output ${i}: ${err.toExponential(2)}`);
        });
      }
    });
  }
  test('leaves no tensors behind', () => {
    tf.setBackend('wasm');
    const x = tensor([2, 3, 3, 4], 24), g = tf.ones([4]) as tf.Tensor1D, b = tf.zeros([4]) as tf.Tensor1D;
    const before = tf.memory().numTensors;
    const r = batchNormTrain(x, g, b);
    assert.equal(tf.memory().numTensors, before + 3);
    r.y.dispose(); r.mean.dispose(); r.variance.dispose();
    tf.grads((p: tf.Tensor) => batchNormTrain(p, g, b).y.sum() as tf.Scalar)([x]).forEach((t) => t.dispose());
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, g, b]);
  });
});

describe('layerNorm', () => {
  function reference(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), g), b);
  }
  for (const shape of [[3, 7, 9], [5, 16], [2, 2, 2, 33]]) {
    test(`forward and gradients on ${JSON.stringify(shape)}`, () => {
      const d = shape[shape.length - 1]!;
      const build = () => ({ x: tf.mul(tensor(shape, 25), 4), g: tf.add(tensor([d], 26), 1), b: tensor([d], 27) });
      const ref = runOn('cpu', () => {
        const { x, g, b } = build();
        return [reference(x, g, b, 1e-5), ...tf.grads((p: tf.Tensor, q: tf.Tensor, s: tf.Tensor) => weightedSum(reference(p, q, s, 1e-5)))([x, g, b])];
      });
      for (const backend of ['cpu', 'wasm'] as const) {
        const got = runOn(backend, () => {
          const { x, g, b } = build();
          const ln = (p: tf.Tensor, q: tf.Tensor, s: tf.Tensor) => layerNorm(p, q as tf.Tensor1D, s as tf.Tensor1D, 1e-5);
          return [ln(x, g, b), ...tf.grads((p: tf.Tensor, q: tf.Tensor, s: tf.Tensor) => weightedSum(ln(p, q, s)))([x, g, b])];
        });
        got.forEach((r, i) => {
          const err = relError(r.values, ref[i]!.values);
          assert.ok(err <= TOL, `${backend} output ${i}: ${err.toExponential(2)}`);
        });
      }
    });
  }
});

describe('training memory', () => {
  test('tensor and buffer counts are stable over 50 SGD steps of a tiny conv/attention net on wasm', () => {
    tf.setBackend('wasm');
    const w1 = tf.variable(tf.mul(tensor([3, 3, 2, 4], 30), 0.5));
    const w2 = tf.variable(tf.mul(tensor([3, 3, 4, 6], 31), 0.3));
    const gamma = tf.variable(tf.ones([4])), beta = tf.variable(tf.zeros([4]));
    const w3 = tf.variable(tf.mul(tensor([6, 3], 32), 0.3));
    const gamma6 = tf.variable(tf.ones([6])) as tf.Variable<tf.Rank.R1>, beta6 = tf.variable(tf.zeros([6])) as tf.Variable<tf.Rank.R1>;
    const x = tensor([4, 8, 8, 2], 33) as tf.Tensor4D;
    const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 1], 'int32'), 3);
    const params = [w1, w2, gamma, beta, w3, gamma6, beta6];
    const step = () => tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => {
        let h = tf.conv2d(x, w1, 1, 'same');
        h = tf.relu(batchNormTrain(h, gamma, beta).y) as tf.Tensor4D;
        h = tf.maxPool(h, 2, 2, 'valid');
        h = tf.relu(groupedConv2d(h, tf.concat([w2, w2], 2).slice([0, 0, 0, 0], [3, 3, 4, 6]) as tf.Tensor4D, 1, 2, 'same'));
        // A batched product (zero-copy heap views) and a layer norm over the pixels as tokens.
        const tokens = tf.reshape(h, [4, -1, 6]);
        const att = tf.softmax(tf.matMul(tokens, tokens, false, true));
        const mixed = layerNorm(tf.matMul(att, tokens), gamma6, beta6);
        const logits = tf.matMul(tf.mean(mixed, 1) as tf.Tensor2D, w3);
        return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
      }, params);
      for (const p of params) p.assign(tf.sub(p, tf.mul(grads[p.name]!, 0.1)));
      return value.dataSync()[0]!;
    });
    const first = step();
    const count = tf.memory().numTensors;
    const dataIds = tf.backend().numDataIds(); // also counts leaked heap views
    let last = first;
    for (let i = 0; i < 50; i++) last = step();
    assert.equal(tf.memory().numTensors, count, 'no tensors leak per step');
    assert.equal(tf.backend().numDataIds(), dataIds, 'no backend buffers or views leak per step');
    assert.ok(last < first, `loss decreases (${first} → ${last})`);
    tf.dispose([...params, x, labels]);
  });
});
