/**
 * Where predicted networks lose accuracy: for test-split architectures, the test accuracy of the
 * predicted parameters (BN on batch statistics, as `ghn eval`) next to a least-squares linear head
 * fitted on the same network's classifier-input features (ridge to one-hot targets on training
 * images, features standardized), for predicted and for default-init parameters. A probe far above
 * the predicted accuracy means the features carry the classes and the predicted classifier does not
 * read them. A diagnostic, not an evaluation protocol (the probe is trained on data).
 *
 *   npx tsx scripts/probe-ghn-features.ts [--ghn models/ghn-fmnist.ghn] [--archs 12] [--train-images 3000] [--test-images 1000]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { loadFashionMnist, type Dataset } from '../src/data/index.js';
import { initBackend } from '../src/engine/backend.js';
import { GraphExecutor } from '../src/engine/executor.js';
import { encodeGraph } from '../src/ghn/encoding.js';
import { predictParameters } from '../src/ghn/predict-params.js';
import { loadGhn } from '../src/ghn/serialize.js';
import { buildGraph } from '../src/graph/build.js';
import type { OnnxModel } from '../src/onnx/types.js';
import { architectureSeed, sampleArchitecture } from '../src/space/sample.js';
import { untieSharedInitializers } from '../src/fine-tuning/untie.js';

const { values } = parseArgs({ options: {
  ghn: { type: 'string', default: 'models/ghn-fmnist.ghn' }, archs: { type: 'string', default: '12' },
  'train-images': { type: 'string', default: '3000' }, 'test-images': { type: 'string', default: '1000' },
} });
const BATCH = 500;
const trainCount = Number(values['train-images']), testCount = Number(values['test-images']);
await initBackend();
const ghn = loadGhn(values.ghn!).model;
const train = loadFashionMnist({ split: 'train' }), test = loadFashionMnist({ split: 'test' });

/** Classifier-input features [n, d] (row-major) and the network's own accuracy, batch-statistics BN. */
function features(executor: GraphExecutor, value: string, data: Dataset, n: number, params?: Map<string, tf.Tensor>) {
  const size = data.shape.reduce((a, b) => a * b, 1);
  const chunks: Float32Array[] = [];
  let correct = 0, d = 0;
  for (let start = 0; start < n; start += BATCH) {
    tf.tidy(() => {
      const x = tf.tensor(data.images.subarray(start * size, (start + BATCH) * size), [BATCH, ...data.shape]);
      let feature: tf.Tensor | undefined;
      const logits = executor.run(x, { params, training: true, onValue: (name, v) => {
        if (name === value) feature = tf.keep(tf.reshape(v, [BATCH, -1]));
        return undefined;
      } }).outputs[0]!;
      const predicted = tf.argMax(logits, 1).dataSync();
      for (let i = 0; i < BATCH; i++) if (predicted[i] === data.labels[start + i]) correct++;
      d = feature!.shape[1]!;
      chunks.push(feature!.dataSync() as Float32Array);
      feature!.dispose();
    });
  }
  const f = new Float32Array(n * d);
  chunks.forEach((c, k) => f.set(c, k * BATCH * d));
  return { f, d, accuracy: correct / n };
}

/** Test accuracy of a ridge-regression head fitted on standardized training features (+ bias). */
function linearProbe(fTrain: Float32Array, fTest: Float32Array, d: number): number {
  const mean = new Float64Array(d), std = new Float64Array(d);
  for (let i = 0; i < trainCount; i++) for (let j = 0; j < d; j++) mean[j]! += fTrain[i * d + j]! / trainCount;
  for (let i = 0; i < trainCount; i++) for (let j = 0; j < d; j++) std[j]! += (fTrain[i * d + j]! - mean[j]!) ** 2 / trainCount;
  const D = d + 1;
  const design = (f: Float32Array, n: number) => {
    const out = new Float32Array(n * D);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < d; j++) out[i * D + j] = (f[i * d + j]! - mean[j]!) / (Math.sqrt(std[j]!) + 1e-6);
      out[i * D + d] = 1;
    }
    return tf.tensor2d(out, [n, D]);
  };
  return tf.tidy(() => {
    const xTrain = design(fTrain, trainCount), xTest = design(fTest, testCount);
    const y = tf.oneHot(tf.tensor1d(train.labels.subarray(0, trainCount), 'int32'), 10).toFloat();
    const gram = tf.add(tf.matMul(xTrain, xTrain, true, false), tf.mul(tf.eye(D), 0.1 * trainCount));
    const head = solveSpd(gram.arraySync() as number[][], tf.matMul(xTrain, y, true, false).arraySync() as number[][]);
    const predicted = tf.argMax(tf.matMul(xTest, tf.tensor2d(head)), 1).dataSync();
    let ok = 0;
    for (let i = 0; i < testCount; i++) if (predicted[i] === test.labels[i]) ok++;
    return ok / testCount;
  });
}

/** A⁻¹B for symmetric positive definite A (Cholesky, float64). */
function solveSpd(a: number[][], b: number[][]): number[][] {
  const n = a.length, m = b[0]!.length;
  const l = Array.from({ length: n }, () => new Float64Array(n));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i]![j]!;
      for (let k = 0; k < j; k++) s -= l[i]![k]! * l[j]![k]!;
      l[i]![j] = i === j ? Math.sqrt(s) : s / l[j]![j]!;
    }
  }
  const x = Array.from({ length: n }, () => new Array<number>(m).fill(0));
  for (let c = 0; c < m; c++) {
    const z = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = b[i]![c]!;
      for (let k = 0; k < i; k++) s -= l[i]![k]! * z[k]!;
      z[i] = s / l[i]![i]!;
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = z[i]!;
      for (let k = i + 1; k < n; k++) s -= l[k]![i]! * x[k]![c]!;
      x[i]![c] = s / l[i]![i]!;
    }
  }
  return x;
}

const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
const rows: number[][] = [];
console.log('architecture        features  predicted  probe(predicted)  probe(default init)');
for (let i = 0; rows.length < Number(values.archs) && i < Number(values.archs) * 3; i++) {
  const arch = sampleArchitecture(architectureSeed('test', i, 0));
  const model: OnnxModel = { proto: arch.model };
  untieSharedInitializers(model);
  const graph = buildGraph(model);
  const encoding = encodeGraph(graph);
  const head = graph.headOps()[0];
  if (!head) continue;
  const value = model.proto.graph!.node![head.onnxNodes[0]!]!.input![0]!;
  const predicted = predictParameters(ghn, encoding);
  const executor = new GraphExecutor(model);
  const params = new Map(encoding.slots.map((s) => [s.initializer, tf.tensor(predicted.get(s.id)!, executor.initializer(s.initializer)!.shape)]));
  const [pTrain, pTest] = [features(executor, value, train, trainCount, params), features(executor, value, test, testCount, params)];
  const [dTrain, dTest] = [features(executor, value, train, trainCount), features(executor, value, test, testCount)];
  const row = [pTest.accuracy, linearProbe(pTrain.f, pTest.f, pTrain.d), linearProbe(dTrain.f, dTest.f, dTrain.d)];
  rows.push(row);
  console.log(`${arch.id.padEnd(20)}${String(pTrain.d).padStart(8)}  ${row.map(pct).map((s, k) => s.padStart([9, 16, 19][k]!)).join('  ')}`);
  tf.dispose([...params.values()]);
  executor.dispose();
}
const mean = (k: number) => rows.reduce((a, r) => a + r[k]!, 0) / Math.max(1, rows.length);
console.log(`mean (${rows.length})${' '.repeat(21 - String(rows.length).length)}${[0, 1, 2].map((k) => pct(mean(k)).padStart([9, 16, 19][k]!)).join('  ')}`);
