import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { GhnError } from '../src/errors.js';
import { choleskyQrTf, tfQrAvailable } from '../src/postprocess/cholesky-qr-tf.js';
import { correlationStd, MAX_EXACT_PAIRS } from '../src/postprocess/correlation.js';
import { choleskyInverse, choleskyQrOrt } from '../src/postprocess/cholesky-qr-ort.js';
import { diversify, diversifyAsync, type DiversifySlot } from '../src/postprocess/diversify.js';
import { addGaussianNoise } from '../src/postprocess/gaussian-noise.js';
import { releaseOrtLinalg } from '../src/postprocess/ort-linalg.js';
import { thinQr } from '../src/postprocess/qr.js';
import { createRng, gaussian } from '../src/util/random.js';

function randomMatrix(length: number, seed: number, scale = 1): Float64Array {
  const rng = createRng(seed);
  const out = new Float64Array(length);
  for (let i = 0; i < length; i++) out[i] = scale * gaussian(rng);
  return out;
}

/** max |AᵀA − I| for a row-major m×n A (columns orthonormal?). */
function columnOrthogonalityError(a: ArrayLike<number>, m: number, n: number): number {
  let worst = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let s = 0;
      for (let k = 0; k < m; k++) s += a[k * n + i] * a[k * n + j];
      worst = Math.max(worst, Math.abs(s - (i === j ? 1 : 0)));
    }
  }
  return worst;
}

/** Row-major GHN-2 style weight: `rows`×`cols` made of copies of one block×block tile. */
function tiled(rows: number, cols: number, block: number, seed: number): Float32Array {
  const tile = randomMatrix(block * block, seed, Math.sqrt(2 / cols));
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = tile[(r % block) * block + (c % block)];
  return out;
}

function std(values: ArrayLike<number>): number {
  let mean = 0;
  for (let i = 0; i < values.length; i++) mean += values[i];
  mean /= values.length;
  let s = 0;
  for (let i = 0; i < values.length; i++) s += (values[i] - mean) ** 2;
  return Math.sqrt(s / values.length);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

describe('thinQr', () => {
  const shapes: [number, number][] = [[1, 1], [5, 5], [40, 7], [130, 67], [97, 97], [300, 256]];
  for (const method of ['auto', 'householder'] as const) {
    for (const [m, n] of shapes) {
      it(`${method} ${m}×${n}: orthonormal Q, upper R with diag ≥ 0, Q·R = A`, () => {
        const a = randomMatrix(m * n, m * 1000 + n);
        const { q, r } = thinQr(a, m, n, { method, computeR: true });
        assert.ok(r !== null);
        assert.ok(columnOrthogonalityError(q, m, n) < 1e-12);
        for (let i = 0; i < n; i++) {
          assert.ok(r[i * n + i] >= 0, `diag R[${i}] = ${r[i * n + i]}`);
          for (let j = 0; j < i; j++) assert.equal(r[i * n + j], 0);
        }
        let worst = 0;
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let k = 0; k <= j; k++) s += q[i * n + k] * r[k * n + j];
            worst = Math.max(worst, Math.abs(s - a[i * n + j]));
          }
        }
        assert.ok(worst < 1e-11, `reconstruction error ${worst}`);
      });
    }
  }

  it('the sign convention makes Q unique: CholeskyQR and Householder agree', () => {
    const a = randomMatrix(200 * 60, 7);
    const fast = thinQr(a, 200, 60);
    const reference = thinQr(a, 200, 60, { method: 'householder' });
    assert.equal(fast.algorithm, 'cholesky');
    assert.equal(reference.algorithm, 'householder');
    assert.ok(maxAbsDiff(fast.q, reference.q) < 1e-12);
  });

  it('column-major layout gives the transpose layout of the row-major result', () => {
    const m = 30, n = 9;
    const rowMajor = randomMatrix(m * n, 11);
    const colMajor = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) colMajor[j * m + i] = rowMajor[i * n + j];
    const a = thinQr(rowMajor, m, n).q;
    const b = thinQr(colMajor, m, n, { layout: 'column-major' }).q;
    let worst = 0;
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) worst = Math.max(worst, Math.abs(a[i * n + j] - b[j * m + i]));
    assert.ok(worst < 1e-14);
  });

  it('float32 input: Q rounded to float32 is orthonormal to 1e-5', () => {
    const m = 1152, n = 128;
    const a = Float32Array.from(randomMatrix(m * n, 5, 0.05));
    const q32 = Float32Array.from(thinQr(a, m, n).q);
    assert.ok(columnOrthogonalityError(q32, m, n) < 1e-5);
  });

  it('ill-conditioned input takes the second CholeskyQR pass and stays orthonormal', () => {
    const m = 400, n = 50;
    // A = U·diag(σ)·Vᵀ with σ over 5 decades: cond = 1e5, beyond one CholeskyQR pass at 1e-9.
    // (Scaling columns alone would not do: CholeskyQR is insensitive to column scaling.)
    const u = thinQr(randomMatrix(m * n, 13), m, n).q;
    const v = thinQr(randomMatrix(n * n, 14), n, n).q;
    const a = new Float64Array(m * n);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += u[i * n + k] * 10 ** (-5 * k / (n - 1)) * v[j * n + k];
        a[i * n + j] = s;
      }
    }
    const result = thinQr(a, m, n, { computeR: true });
    assert.equal(result.algorithm, 'cholesky2');
    assert.ok(columnOrthogonalityError(result.q, m, n) < 1e-12);
    const reference = thinQr(a, m, n, { method: 'householder' });
    assert.ok(maxAbsDiff(result.q, reference.q) < 1e-6);
  });

  it('exactly rank-deficient input falls back to Householder and Q is still orthonormal', () => {
    const a = tiled(512, 256, 64, 3);
    const { q, algorithm } = thinQr(a, 512, 256);
    assert.equal(algorithm, 'householder');
    assert.ok(columnOrthogonalityError(q, 512, 256) < 1e-12);
  });

  it('rejects wide matrices and wrong lengths', () => {
    assert.throws(() => thinQr(new Float64Array(6), 2, 3), GhnError);
    assert.throws(() => thinQr(new Float64Array(5), 3, 2), GhnError);
  });
});

describe('correlationStd', () => {
  function exact(w: Float64Array, rows: number, cols: number): number {
    const corr: number[] = [];
    const z = (r: number) => {
      const row = Array.from(w.subarray(r * cols, (r + 1) * cols));
      const mean = row.reduce((s, v) => s + v, 0) / cols;
      const d = row.map((v) => v - mean);
      const norm = Math.sqrt(d.reduce((s, v) => s + v * v, 0));
      return d.map((v) => v / norm);
    };
    const rowsZ = Array.from({ length: rows }, (_, r) => z(r));
    for (let i = 0; i < rows; i++) for (let j = 0; j < rows; j++) corr.push(rowsZ[i].reduce((s, v, k) => s + v * rowsZ[j][k], 0));
    const mean = corr.reduce((s, v) => s + v, 0) / corr.length;
    return Math.sqrt(corr.reduce((s, v) => s + (v - mean) ** 2, 0) / (corr.length - 1));
  }

  it('matches torch.std(torch.corrcoef(W)) computed over every entry', () => {
    const w = randomMatrix(20 * 15, 21);
    // Correlate some rows so the value is not just the diagonal's contribution.
    for (let k = 0; k < 15; k++) w[15 + k] = w[k] + 0.3 * w[15 + k];
    assert.ok(Math.abs(correlationStd(w, 20, 15, createRng(0)) - exact(w, 20, 15)) < 1e-12);
  });

  it('estimates from sampled pairs within 10% for every seed, unbiased within 2%, when there are many rows', () => {
    const rows = 200, cols = 30;
    assert.ok((rows * (rows - 1)) / 2 > MAX_EXACT_PAIRS);
    const w = randomMatrix(rows * cols, 22);
    const truth = exact(w, rows, cols);
    const estimates = Array.from({ length: 20 }, (_, seed) => correlationStd(w, rows, cols, createRng(seed)));
    for (const estimate of estimates) assert.ok(Math.abs(estimate - truth) / truth < 0.1, `${estimate} vs ${truth}`);
    const mean = estimates.reduce((a, b) => a + b, 0) / estimates.length;
    assert.ok(Math.abs(mean - truth) / truth < 0.02, `mean ${mean} vs ${truth}`);
  });

  it('constant rows count as uncorrelated instead of producing NaN', () => {
    const w = randomMatrix(4 * 6, 23);
    w.fill(0.5, 0, 6);
    assert.ok(Number.isFinite(correlationStd(w, 4, 6, createRng(0))));
    assert.equal(correlationStd(new Float64Array(6), 1, 6, createRng(0)), 0);
  });
});

describe('diversify', () => {
  // A small CNN in topological order: stem conv, BN, conv, BN, 1-D bias, classifier.
  const slots: DiversifySlot[] = [
    { id: 'conv1.w', role: 'conv.weight', shape: [16, 3, 3, 3], isClassifier: false },
    { id: 'bn1.scale', role: 'norm.scale', shape: [16], isClassifier: false },
    { id: 'conv2.w', role: 'conv.weight', shape: [32, 16, 3, 3], isClassifier: false },
    { id: 'conv3.w', role: 'conv.weight', shape: [64, 32, 1, 1], isClassifier: false },
    { id: 'conv3.b', role: 'conv.bias', shape: [64], isClassifier: false },
    { id: 'fc.w', role: 'linear.weight', shape: [10, 64], isClassifier: true },
    { id: 'fc.b', role: 'linear.bias', shape: [10], isClassifier: true },
  ];
  function makeTensors(seed: number): Map<string, Float32Array> {
    const tensors = new Map<string, Float32Array>();
    slots.forEach((slot, i) => {
      const size = slot.shape.reduce((a, b) => a * b, 1);
      tensors.set(slot.id, Float32Array.from(randomMatrix(size, seed * 100 + i, 0.1)));
    });
    return tensors;
  }

  it('orthogonalizes every ≥ 2-D non-classifier weight; leaves 1-D and the classifier untouched', () => {
    const input = makeTensors(1);
    const { tensors, report } = diversify(input, slots, { seed: 1, keepScale: false });
    assert.equal(report.processed, 3);
    assert.equal(report.skipped, 4);
    for (const id of ['bn1.scale', 'conv3.b', 'fc.w', 'fc.b']) assert.equal(tensors.get(id), input.get(id));
    // conv1: W_mat 16×27 is wide → rows orthonormal; conv3: 64×32 is tall → columns orthonormal.
    const conv1 = tensors.get('conv1.w')!;
    const conv1T = new Float32Array(27 * 16);
    for (let r = 0; r < 16; r++) for (let c = 0; c < 27; c++) conv1T[c * 16 + r] = conv1[r * 27 + c];
    assert.ok(columnOrthogonalityError(conv1T, 27, 16) < 1e-5);
    assert.ok(columnOrthogonalityError(tensors.get('conv3.w')!, 64, 32) < 1e-5);
  });

  it('keepScale restores the pre-QR standard deviation; without it the element variance is 1/rows', () => {
    const input = makeTensors(2);
    const kept = diversify(input, slots, { seed: 3, noise: 0 }).tensors.get('conv2.w')!;
    const raw = diversify(input, slots, { seed: 3, noise: 0, keepScale: false }).tensors.get('conv2.w')!;
    assert.ok(Math.abs(std(kept) / std(input.get('conv2.w')!) - 1) < 1e-5);
    // 32×144 wide → tall 144×32 with orthonormal columns: Σ w² = 32 over 4608 values.
    const meanSquare = raw.reduce((s, v) => s + v * v, 0) / raw.length;
    assert.ok(Math.abs(meanSquare - 1 / 144) < 1e-6);
  });

  it('is deterministic for a seed; other seeds give other noise', () => {
    const input = makeTensors(3);
    const options = { noise: 1e-2, orthogonalize: false };
    const a = diversify(input, slots, { ...options, seed: 5 }).tensors.get('conv2.w')!;
    const b = diversify(input, slots, { ...options, seed: 5 }).tensors.get('conv2.w')!;
    const c = diversify(input, slots, { ...options, seed: 6 }).tensors.get('conv2.w')!;
    assert.deepEqual(a, b);
    assert.ok(maxAbsDiff(a, c) > 1e-4);
    const full = (seed: number) => diversify(input, slots, { seed }).tensors.get('conv3.w')!;
    assert.deepEqual(full(9), full(9));
    assert.ok(maxAbsDiff(full(9), full(10)) > 0);
  });

  it('respects fromLayer (counted over ≥ 2-D weights)', () => {
    const input = makeTensors(4);
    const { tensors, report } = diversify(input, slots, { seed: 1, fromLayer: 2 });
    assert.equal(report.processed, 1);
    assert.equal(tensors.get('conv1.w'), input.get('conv1.w'));
    assert.equal(tensors.get('conv2.w'), input.get('conv2.w'));
    assert.notEqual(tensors.get('conv3.w'), input.get('conv3.w'));
    assert.ok(maxAbsDiff(tensors.get('conv3.w')!, input.get('conv3.w')!) > 1e-3);
    // A weight's noise is the same whichever weights before it are processed.
    const all = diversify(input, slots, { seed: 1, fromLayer: 0 }).tensors;
    assert.deepEqual(all.get('conv3.w'), tensors.get('conv3.w'));
  });

  it('noise has std β·std(corrcoef(W_mat)) and scales linearly with β', () => {
    const input = makeTensors(5);
    const w = input.get('conv2.w')!;
    const expectedUnit = correlationStd(Float64Array.from(w), 32, 144, createRng(0));
    const delta = (beta: number) => {
      const out = diversify(input, slots, { seed: 2, noise: beta, orthogonalize: false }).tensors.get('conv2.w')!;
      return Float64Array.from(out, (v, i) => v - w[i]);
    };
    const small = delta(0.01);
    const large = delta(0.04);
    assert.ok(Math.abs(std(small) / (0.01 * expectedUnit) - 1) < 0.05, `${std(small)} vs ${0.01 * expectedUnit}`);
    // Same seed → same normals: the perturbation is exactly proportional to β (up to float32 rounding of W + δ).
    for (let i = 0; i < small.length; i++) assert.ok(Math.abs(large[i] - 4 * small[i]) < 1e-6);
    const off = diversify(input, slots, { seed: 2, noise: 0, orthogonalize: false });
    assert.equal(off.report.processed, 0);
    assert.equal(off.tensors.get('conv2.w'), w);
  });

  it('GHN-2 tiled weight (512×256 of 32 copies of a 64×64 block): noise + QR give full rank, all singular values 1', () => {
    const slot: DiversifySlot = { id: 'w', role: 'conv.weight', shape: [512, 256, 1, 1], isClassifier: false };
    const input = new Map([['w', tiled(512, 256, 64, 8)]]);
    const out = diversify(input, [slot], { seed: 4, keepScale: false }).tensors.get('w')!;
    // W_mat is tall (512×256): orthonormal columns ⇔ every singular value is 1 ⇔ rank 256.
    assert.ok(columnOrthogonalityError(out, 512, 256) < 1e-5);
    // The copies are gone: rows 0 and 64 were identical and are now different.
    assert.ok(maxAbsDiff(out.subarray(0, 256), out.subarray(64 * 256, 65 * 256)) > 1e-3);
  });

  it('handles weights stored transposed ([in, out]) like their canonical form', () => {
    const canonical: DiversifySlot = { id: 'w', role: 'linear.weight', shape: [24, 40], isClassifier: false };
    const stored: DiversifySlot = { ...canonical, layout: 'transposed' };
    const w = Float32Array.from(randomMatrix(24 * 40, 31));
    const wT = new Float32Array(40 * 24);
    for (let r = 0; r < 24; r++) for (let c = 0; c < 40; c++) wT[c * 24 + r] = w[r * 40 + c];
    const a = diversify(new Map([['w', w]]), [canonical], { seed: 1 }).tensors.get('w')!;
    const b = diversify(new Map([['w', wT]]), [stored], { seed: 1 }).tensors.get('w')!;
    let worst = 0;
    for (let r = 0; r < 24; r++) for (let c = 0; c < 40; c++) worst = Math.max(worst, Math.abs(a[r * 40 + c] - b[c * 24 + r]));
    assert.equal(worst, 0);
  });

  it('rejects missing or mis-sized tensors and bad options', () => {
    const slot: DiversifySlot = { id: 'w', role: 'conv.weight', shape: [4, 2, 3, 3], isClassifier: false };
    assert.throws(() => diversify(new Map(), [slot]), GhnError);
    assert.throws(() => diversify(new Map([['w', new Float32Array(5)]]), [slot]), GhnError);
    assert.throws(() => diversify(new Map([['w', new Float32Array(72)]]), [slot], { noise: -1 }), GhnError);
    assert.throws(() => diversify(new Map([['w', new Float32Array(72)]]), [slot], { fromLayer: 1.5 }), GhnError);
  });
});

describe('tfjs CholeskyQR path', () => {
  before(async () => { await initBackend('wasm'); });
  after(async () => { await tf.setBackend('wasm'); });

  /** Column-major copy of a row-major m×n matrix. */
  const columnMajor = (a: ArrayLike<number>, m: number, n: number) => {
    const out = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[j * m + i] = a[i * n + j];
    return out;
  };
  /** max |QᵀQ − I| for a column-major m×n Q. */
  const orthogonality = (q: ArrayLike<number>, m: number, n: number) => {
    const rowMajor = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) rowMajor[i * n + j] = q[j * m + i];
    return columnOrthogonalityError(rowMajor, m, n);
  };

  it('is available on wasm and not on the pure-JS cpu backend', async () => {
    assert.equal(tfQrAvailable(), true);
    await tf.setBackend('cpu');
    assert.equal(tfQrAvailable(), false);
    await tf.setBackend('wasm');
  });

  it('well-conditioned input: one float32 pass, orthonormal to 1e-5, same Q (and signs) as the float64 path', () => {
    const m = 1152, n = 128;
    const a = randomMatrix(m * n, 41, 0.05);
    const result = choleskyQrTf(columnMajor(a, m, n), m, n, 2e-5 * Math.sqrt(n));
    assert.ok(result !== null);
    assert.equal(result.passes, 1);
    assert.ok(orthogonality(result.q, m, n) < 1e-5);
    const reference = columnMajor(thinQr(a, m, n).q, m, n);
    // Equal up to float32 rounding only if the sign convention (diag R > 0) is the same.
    assert.ok(maxAbsDiff(result.q, reference) < 1e-5);
  });

  it('square input (cond ~ n) needs the second pass and then matches the float64 path', () => {
    const n = 256;
    const a = randomMatrix(n * n, 42);
    const result = choleskyQrTf(columnMajor(a, n, n), n, n, 2e-5 * Math.sqrt(n));
    assert.ok(result !== null);
    assert.equal(result.passes, 2);
    assert.ok(orthogonality(result.q, n, n) < 1e-5);
    assert.ok(maxAbsDiff(result.q, columnMajor(thinQr(a, n, n).q, n, n)) < 1e-4);
  });

  it('rank-deficient input returns null so the caller falls back to the float64 path', () => {
    const m = 512, n = 256;
    assert.equal(choleskyQrTf(columnMajor(tiled(m, n, 64, 3), m, n), m, n, 1), null);
  });

  it('diversify on wasm agrees with the float64 JS path (random and noisy GHN-2 tiled weights)', async () => {
    const slots: DiversifySlot[] = [
      { id: 'random', role: 'conv.weight', shape: [128, 64, 3, 3], isClassifier: false },
      { id: 'tall', role: 'conv.weight', shape: [512, 128, 1, 1], isClassifier: false },
      { id: 'tiled', role: 'conv.weight', shape: [256, 128, 3, 3], isClassifier: false },
    ];
    const input = new Map<string, Float32Array>([
      ['random', Float32Array.from(randomMatrix(128 * 576, 43, 0.06))],
      ['tall', Float32Array.from(randomMatrix(512 * 128, 44, 0.1))],
      ['tiled', tiled(256, 1152, 64, 45)],
    ]);
    await tf.setBackend('cpu'); // no fast backend: the float64 path
    const reference = diversify(input, slots, { seed: 7, keepScale: false }).tensors;
    await tf.setBackend('wasm');
    const fast = diversify(input, slots, { seed: 7, keepScale: false }).tensors;
    for (const slot of slots) {
      const [rows] = slot.shape;
      const cols = input.get(slot.id)!.length / rows;
      const q = fast.get(slot.id)!;
      assert.ok(maxAbsDiff(q, reference.get(slot.id)!) < 1e-4, slot.id);
      // Orthonormal columns of the tall orientation.
      const tall = rows >= cols ? q : Float32Array.from(columnMajor(q, rows, cols));
      assert.ok(columnOrthogonalityError(tall, Math.max(rows, cols), Math.min(rows, cols)) < 1e-5, slot.id);
    }
  });
});

/** Row-major rows×cols weight like a GHN's low-rank decoder output: rank `rank` plus a little noise. */
function lowRankPlusNoise(rows: number, cols: number, rank: number, noise: number, seed: number): Float64Array {
  const u = randomMatrix(rows * rank, seed, 1 / Math.sqrt(rank));
  const v = randomMatrix(rank * cols, seed + 1, Math.sqrt(2 / cols));
  const e = randomMatrix(rows * cols, seed + 2, noise);
  const w = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let k = 0; k < rank; k++) {
      const uik = u[i * rank + k];
      for (let j = 0; j < cols; j++) w[i * cols + j] += uik * v[k * cols + j];
    }
  }
  for (let i = 0; i < w.length; i++) w[i] += e[i];
  return w;
}

describe('onnxruntime float64 CholeskyQR path', () => {
  after(async () => { await releaseOrtLinalg(); });

  it('recursive Cholesky inverse (order above the JS block size): R⁻¹ with (R⁻¹)ᵀ·G·R⁻¹ = I', async () => {
    const m = 700, n = 300;
    const a = randomMatrix(m * n, 51);
    const g = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < m; k++) s += a[k * n + i] * a[k * n + j];
      g[i * n + j] = s;
    }
    const x = (await choleskyInverse({ data: g, rows: n, cols: n }))!.data;
    let worst = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) worst = Math.max(worst, Math.abs(x[i * n + j]));
    assert.equal(worst, 0); // upper triangular
    // (XᵀGX)_{ij} = δ_ij
    const gx = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) {
      const gik = g[i * n + k];
      for (let j = k; j < n; j++) gx[i * n + j] += gik * x[k * n + j];
    }
    for (let i = 0; i < n; i += 7) for (let j = 0; j < n; j += 5) {
      let s = 0;
      for (let k = 0; k < n; k++) s += x[k * n + i] * gx[k * n + j];
      assert.ok(Math.abs(s - (i === j ? 1 : 0)) < 1e-9, `${i},${j}: ${s}`);
    }
  });

  // n = 128 takes the one-block products, n = 256 the 2×2-blocked ones.
  for (const n of [128, 256]) {
    it(`GHN-like low-rank + noise input 1152×${n} (cond ~1e4, beyond float32): one float64 pass, same Q as Householder`, async () => {
      const m = 1152;
      const a = lowRankPlusNoise(n, m, 32, 2e-5, 52); // row-major n×m = column-major m×n
      const result = await choleskyQrOrt(a, m, n, 2e-6 * Math.sqrt(n));
      assert.ok(result !== null);
      assert.equal(result.passes, 1);
      const reference = thinQr(a, m, n, { layout: 'column-major', method: 'householder' }).q;
      assert.ok(maxAbsDiff(result.q, reference) < 1e-8);
      // The input is not modified (the caller's Householder fallback relies on it).
      assert.deepEqual(a, lowRankPlusNoise(n, m, 32, 2e-5, 52));
    });
  }

  it('exactly rank-deficient input returns null (Householder takes over)', async () => {
    const m = 512, n = 256;
    const rowMajor = tiled(m, n, 64, 53);
    const a = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) a[j * m + i] = rowMajor[i * n + j];
    assert.equal(await choleskyQrOrt(a, m, n, 1e-4), null);
  });

  it('diversifyAsync equals the float64 JS diversify (same noise; wide, tall, transposed and tiled weights)', async () => {
    const slots: DiversifySlot[] = [
      { id: 'wide', role: 'conv.weight', shape: [128, 64, 3, 3], isClassifier: false },
      { id: 'tall', role: 'conv.weight', shape: [512, 128, 1, 1], isClassifier: false },
      { id: 'linearT', role: 'linear.weight', shape: [96, 384], layout: 'transposed', isClassifier: false },
      { id: 'tallT', role: 'linear.weight', shape: [384, 96], layout: 'transposed', isClassifier: false },
      { id: 'ghn', role: 'conv.weight', shape: [256, 128, 3, 3], isClassifier: false },
      { id: 'tiled', role: 'conv.weight', shape: [256, 128, 1, 1], isClassifier: false },
      { id: 'small', role: 'conv.weight', shape: [8, 4, 3, 3], isClassifier: false },
      { id: 'fc', role: 'linear.weight', shape: [10, 128], isClassifier: true },
    ];
    const input = new Map<string, Float32Array>([
      ['wide', Float32Array.from(randomMatrix(128 * 576, 54, 0.06))],
      ['tall', Float32Array.from(randomMatrix(512 * 128, 55, 0.1))],
      ['linearT', Float32Array.from(randomMatrix(96 * 384, 56, 0.05))],
      ['tallT', Float32Array.from(randomMatrix(384 * 96, 57, 0.05))],
      ['ghn', Float32Array.from(lowRankPlusNoise(256, 1152, 32, 0, 58))],
      ['tiled', tiled(256, 128, 64, 59)],
      ['small', Float32Array.from(randomMatrix(8 * 36, 60, 0.2))],
      ['fc', Float32Array.from(randomMatrix(10 * 128, 61, 0.1))],
    ]);
    await tf.setBackend('cpu'); // no fast tfjs backend: diversify runs its float64 JS path
    const reference = diversify(input, slots, { seed: 8 });
    await tf.setBackend('wasm');
    const fast = await diversifyAsync(input, slots, { seed: 8 });
    assert.equal(fast.report.processed, reference.report.processed);
    assert.equal(fast.tensors.get('fc'), input.get('fc'));
    for (const slot of slots) {
      assert.ok(maxAbsDiff(fast.tensors.get(slot.id)!, reference.tensors.get(slot.id)!) < 1e-6, slot.id);
    }
  });

  it('inPlace: the same values, written into the input arrays of the processed weights', async () => {
    const slots: DiversifySlot[] = [
      { id: 'wide', role: 'conv.weight', shape: [128, 64, 3, 3], isClassifier: false },
      { id: 'tallT', role: 'linear.weight', shape: [384, 96], layout: 'transposed', isClassifier: false },
      { id: 'small', role: 'conv.weight', shape: [8, 4, 3, 3], isClassifier: false },
      { id: 'fc', role: 'linear.weight', shape: [10, 128], isClassifier: true },
    ];
    const make = () => new Map<string, Float32Array>([
      ['wide', Float32Array.from(lowRankPlusNoise(128, 576, 32, 0, 63))],
      ['tallT', Float32Array.from(randomMatrix(384 * 96, 64, 0.05))],
      ['small', Float32Array.from(randomMatrix(8 * 36, 65, 0.2))],
      ['fc', Float32Array.from(randomMatrix(10 * 128, 66, 0.1))],
    ]);
    const expected = await diversifyAsync(make(), slots, { seed: 9 });
    const input = make();
    const fc = Float32Array.from(input.get('fc')!);
    const result = await diversifyAsync(input, slots, { seed: 9, inPlace: true });
    for (const slot of slots) {
      assert.equal(result.tensors.get(slot.id), input.get(slot.id), slot.id); // the caller's arrays
      assert.deepEqual(result.tensors.get(slot.id), expected.tensors.get(slot.id), slot.id);
    }
    assert.deepEqual(input.get('fc'), fc); // the classifier is left as predicted
  });
});

describe('gaussian noise (ziggurat)', () => {
  it('is standard normal: moments, tails and quantiles', () => {
    const n = 400_000;
    const x = new Float64Array(n).fill(0.25);
    const moments = addGaussianNoise(x, 1, createRng(11));
    let m1 = 0, m2 = 0, m4 = 0, beyond2 = 0, beyond3 = 0, below = 0;
    for (const v of x) {
      // The returned moments are those of the result, offset included.
      moments.sum -= v;
      moments.sumSquares -= v * v;
      const z = v - 0.25;
      m1 += z; m2 += z * z; m4 += z ** 4;
      if (Math.abs(z) > 2) beyond2++;
      if (Math.abs(z) > 3) beyond3++;
      if (z < -1) below++;
    }
    assert.ok(Math.abs(moments.sum) < 1e-6 && Math.abs(moments.sumSquares) < 1e-6, JSON.stringify(moments));
    assert.ok(Math.abs(m1 / n) < 0.01);
    assert.ok(Math.abs(m2 / n - 1) < 0.01);
    assert.ok(Math.abs(m4 / n - 3) < 0.06);
    assert.ok(Math.abs(beyond2 / n - 0.0455) < 0.002);
    assert.ok(Math.abs(beyond3 / n - 0.0027) < 0.0004);
    assert.ok(Math.abs(below / n - 0.15866) < 0.003);
  });

  it('is reproducible from the seed and adds sigma-scaled values', () => {
    const a = new Float64Array(1000).fill(1);
    const b = new Float64Array(1000).fill(1);
    addGaussianNoise(a, 0.5, createRng(3));
    addGaussianNoise(b, 0.5, createRng(3));
    assert.deepEqual(a, b);
    const c = new Float64Array(1000);
    addGaussianNoise(c, 1, createRng(3));
    for (let i = 0; i < 1000; i++) assert.ok(Math.abs(a[i] - (1 + 0.5 * c[i])) < 1e-15);
  });

  it('the stream for a seed stays what it was (predictions are reproducible across versions)', () => {
    // SHA-256 of 200,000 draws for seed 12345, as the ziggurat generator has always produced them.
    const x = new Float64Array(200_000);
    addGaussianNoise(x, 1, createRng(12345));
    const digest = createHash('sha256').update(new Uint8Array(x.buffer)).digest('hex');
    assert.equal(digest, '6e82c89b456f2cf98c4adcb62f7c28598e897a5a6794146944e18bc38af48070');
  });
});
