/**
 * Diagnostic for the classifier fit (src/predict/fit-head.ts): on each benchmark export, the
 * features the default prediction's classifier reads, and the test accuracy of other fits of the
 * same linear head — ridge on more images, standardized features, a multinomial logistic refit.
 * Tells which change to the fit would lift what `ghn predict` writes.
 *   npx tsx scripts/probe-head-fit.ts [--dir fixtures/benchmark] [--models a,b] [--train 4096] [--test 2000]
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { predict } from '../src/api/predict.js';
import { loadFashionMnistImages } from '../src/data/index.js';
import { buildGraph } from '../src/graph/index.js';
import { decodeModel } from '../src/onnx/index.js';
import { classifierHead, featuresAndLogits, type LabeledImages } from '../src/predict/fit-head.js';
import { ridgeRegression } from '../src/predict/ridge-regression.js';

const { values } = parseArgs({ options: {
  dir: { type: 'string', default: 'fixtures/benchmark' }, models: { type: 'string', default: '' },
  train: { type: 'string', default: '4096' }, test: { type: 'string', default: '2000' }, variant: { type: 'string', default: 'preserve13' }, 'default-init': { type: 'boolean', default: false },
} });
const trainCount = Number(values.train), testCount = Number(values.test);
const index = JSON.parse(fs.readFileSync(path.join(values.dir!, 'index.json'), 'utf8')) as { models: { name: string; files: Record<string, { file: string }> }[] };
const wanted = values.models ? values.models.split(',') : undefined;

function labeled(split: 'train' | 'test', limit: number): LabeledImages {
  const d = loadFashionMnistImages({ split, limit });
  return { data: d.images, labels: d.labels, count: d.count, shape: d.shape, classes: d.classes, source: d.name };
}
const train = labeled('train', trainCount), test = labeled('test', testCount);

function slice(f: Float32Array, dims: number, n: number): Float32Array { return f.subarray(0, n * dims); }

function acc(features: Float32Array, dims: number, labels: Int32Array, w: Float64Array, mean: Float64Array, k: number): number {
  const n = labels.length;
  let correct = 0;
  const z = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    z.fill(0);
    for (let j = 0; j < dims; j++) { const f = features[i * dims + j]! - mean[j]!; if (f) for (let c = 0; c < k; c++) z[c]! += f * w[j * k + c]!; }
    let best = 0; for (let c = 1; c < k; c++) if (z[c]! > z[best]!) best = c;
    if (best === labels[i]) correct++;
  }
  return correct / n;
}

async function ridge(features: Float32Array, dims: number, labels: Int32Array, n: number, k: number, rel: number) {
  const targets = new Float64Array(n * k).fill(-1 / k);
  for (let i = 0; i < n; i++) targets[i * k + labels[i]!]! += 1;
  return ridgeRegression({ features: slice(features, dims, n), samples: n, dims, targets, outputs: k, relativeRidge: rel, center: true });
}

/** Per-feature standardization, folded back into weights. */
function standardized(features: Float32Array, dims: number, n: number): { f: Float32Array; sd: Float64Array } {
  const mean = new Float64Array(dims), sq = new Float64Array(dims);
  for (let i = 0; i < n; i++) for (let j = 0; j < dims; j++) { const v = features[i * dims + j]!; mean[j]! += v; sq[j]! += v * v; }
  const sd = new Float64Array(dims);
  for (let j = 0; j < dims; j++) { mean[j]! /= n; sd[j] = Math.sqrt(Math.max(sq[j]! / n - mean[j]! ** 2, 0)) + 1e-6; }
  const f = new Float32Array(n * dims);
  for (let i = 0; i < n; i++) for (let j = 0; j < dims; j++) f[i * dims + j] = features[i * dims + j]! / sd[j]!;
  return { f, sd };
}

/** Multinomial logistic regression by full-batch Adam from a ridge start (weights [dims, k] on centered features). */
function logistic(features: Float32Array, dims: number, labels: Int32Array, n: number, k: number, w0: Float64Array, mean: Float64Array, iters: number, l2: number): Float64Array {
  // Start: the ridge logits scaled by the best temperature ≈ 1/scale of the ridge margins; find by trying a few.
  const w = Float64Array.from(w0);
  const b = new Float64Array(k);
  const lr = 0.01;
  const mW = new Float64Array(w.length), vW = new Float64Array(w.length), mB = new Float64Array(k), vB = new Float64Array(k);
  // temperature for the start
  let bestT = 1, bestLoss = Infinity;
  for (const t of [1, 2, 4, 8, 16, 32, 64]) {
    let loss = 0; const z = new Float64Array(k);
    for (let i = 0; i < n; i += 4) {
      z.fill(0);
      for (let j = 0; j < dims; j++) { const f = features[i * dims + j]! - mean[j]!; if (f) for (let c = 0; c < k; c++) z[c]! += f * w[j * k + c]! * t; }
      const m = Math.max(...z); let s = 0; for (let c = 0; c < k; c++) s += Math.exp(z[c]! - m);
      loss += m + Math.log(s) - z[labels[i]!]!;
    }
    if (loss < bestLoss) { bestLoss = loss; bestT = t; }
  }
  for (let q = 0; q < w.length; q++) w[q]! *= bestT;
  const scaleOfW = Math.sqrt(w.reduce((a, v) => a + v * v, 0) / w.length) || 1;
  const gW = new Float64Array(w.length), gB = new Float64Array(k), z = new Float64Array(k);
  for (let it = 1; it <= iters; it++) {
    gW.fill(0); gB.fill(0);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < k; c++) z[c] = b[c]!;
      const row = i * dims;
      for (let j = 0; j < dims; j++) { const f = features[row + j]! - mean[j]!; if (f) for (let c = 0; c < k; c++) z[c]! += f * w[j * k + c]!; }
      let m = -Infinity; for (let c = 0; c < k; c++) m = Math.max(m, z[c]!);
      let s = 0; for (let c = 0; c < k; c++) { z[c] = Math.exp(z[c]! - m); s += z[c]!; }
      for (let c = 0; c < k; c++) z[c] = z[c]! / s - (c === labels[i] ? 1 : 0);
      for (let c = 0; c < k; c++) gB[c]! += z[c]! / n;
      for (let j = 0; j < dims; j++) { const f = (features[row + j]! - mean[j]!) / n; if (f) for (let c = 0; c < k; c++) gW[j * k + c]! += f * z[c]!; }
    }
    for (let q = 0; q < w.length; q++) gW[q]! += l2 * w[q]!;
    const step = lr * scaleOfW;
    const b1 = 0.9, b2 = 0.999, c1 = 1 - b1 ** it, c2 = 1 - b2 ** it;
    for (let q = 0; q < w.length; q++) { mW[q] = b1 * mW[q]! + (1 - b1) * gW[q]!; vW[q] = b2 * vW[q]! + (1 - b2) * gW[q]! ** 2; w[q]! -= step * (mW[q]! / c1) / (Math.sqrt(vW[q]! / c2) + 1e-12); }
    for (let c = 0; c < k; c++) { mB[c] = b1 * mB[c]! + (1 - b1) * gB[c]!; vB[c] = b2 * vB[c]! + (1 - b2) * gB[c]! ** 2; b[c]! -= lr * (mB[c]! / c1) / (Math.sqrt(vB[c]! / c2) + 1e-12); }
  }
  return w;
}

const rows: string[] = [];
const header = ['model', 'dims', 'r1k', 'r2k', 'r4k', 'r8k', 'r4k λ.001', 'r4k λ.1', 'std1k', 'std4k', 'logit1k', 'logit4k', 'probe s'];
console.log(header.join('\t'));
const sums = new Map<string, number[]>();
for (const m of index.models) {
  if (wanted && !wanted.includes(m.name)) continue;
  const file = path.join(values.dir!, m.files[values.variant!]!.file);
  // --default-init: the features of the export as written (PyTorch's default init), for the baseline.
  const model = values['default-init'] ? decodeModel(fs.readFileSync(file)) : decodeModel((await predict(file, {})).onnx);
  const graph = buildGraph(model);
  const head = classifierHead(graph, 10);
  if (!head) { console.log(`${m.name}\t(no fitted head)`); continue; }
  const t0 = performance.now();
  let tr, te;
  try { tr = await featuresAndLogits(model, head, train); te = await featuresAndLogits(model, head, test); } catch (e) { console.log(`${m.name}\t(${(e as Error).message})`); continue; }
  const d = tr.dims, k = 10;
  const out: Record<string, number | undefined> = {};
  const evalR = async (key: string, n: number, rel: number) => {
    if (n > trainCount || Math.min(n, d) > 4096) return;
    const s = await ridge(tr.features, d, train.labels, n, k, rel);
    out[key] = acc(te.features, d, test.labels, s.weights, s.mean, k);
    return s;
  };
  await evalR('r1k', 1024, 0.01); await evalR('r2k', 2048, 0.01);
  const s4 = await evalR('r4k', 4096, 0.01); await evalR('r8k', 8192, 0.01);
  await evalR('r4k λ.001', 4096, 0.001); await evalR('r4k λ.1', 4096, 0.1);
  for (const [key, n] of [['std1k', 1024], ['std4k', 4096]] as const) {
    if (n > trainCount || Math.min(n, d) > 4096) continue;
    const { f, sd } = standardized(tr.features, d, n);
    const s = await ridge(f, d, train.labels, n, k, 0.01);
    const w = Float64Array.from(s.weights); const mean = Float64Array.from(s.mean);
    for (let j = 0; j < d; j++) { for (let c = 0; c < k; c++) w[j * k + c]! /= sd[j]!; mean[j]! *= sd[j]!; }
    out[key] = acc(te.features, d, test.labels, w, mean, k);
  }
  if (d <= 2048) {
    for (const [key, n] of [['logit1k', 1024], ['logit4k', 4096]] as const) {
      if (n > trainCount) continue;
      const s = await ridge(tr.features, d, train.labels, n, k, 0.01);
      const w = logistic(tr.features, d, train.labels, n, k, s.weights, s.mean, 150, 1e-4);
      out[key] = acc(te.features, d, test.labels, w, s.mean, k);
    }
  }
  void s4;
  const line = [m.name, String(d), ...header.slice(2, -1).map((h) => (out[h] === undefined ? '-' : (100 * out[h]!).toFixed(1))), ((performance.now() - t0) / 1000).toFixed(1)];
  for (const h of header.slice(2, -1)) if (out[h] !== undefined) { const a = sums.get(h) ?? []; a.push(out[h]!); sums.set(h, a); }
  console.log(line.join('\t'));
  rows.push(line.join('\t'));
}
console.log(['mean', '', ...header.slice(2, -1).map((h) => { const a = sums.get(h); return a ? `${(100 * a.reduce((x, y) => x + y, 0) / a.length).toFixed(1)} (${a.length})` : '-'; })].join('\t'));
