/**
 * Fine-tuning on the committed Fashion-MNIST subset: accuracy rises well above chance, the written
 * ONNX file agrees with the executor under onnxruntime, BN running statistics are updated, shared
 * initializers are untied, and the optimizers follow PyTorch's update rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { loadFashionMnist } from '../src/data/index.js';
import { GhnError } from '../src/errors.js';
import { initBackend } from '../src/engine/backend.js';
import { readModelFile, readFloat32, replaceTensorData } from '../src/onnx/index.js';
import type { OnnxModel } from '../src/onnx/types.js';
import { encodeModel } from '../src/onnx/index.js';
import { buildGraph } from '../src/graph/index.js';
import * as ort from 'onnxruntime-node';
import { evaluateWithExecutor, evaluateWithOrt } from '../src/fine-tuning/evaluate.js';
import { GraphExecutor } from '../src/engine/executor.js';
import { countCorrect } from '../src/fine-tuning/loss.js';
import { finetune } from '../src/fine-tuning/finetune.js';
import { createOptimizer, learningRate } from '../src/fine-tuning/optimizers.js';
import { untieSharedInitializers } from '../src/fine-tuning/untie.js';

const DIR = 'fixtures/fashion-mnist';

test('setup: wasm backend', async () => {
  await initBackend('wasm');
});

test('mlp: 40 AdamW steps lift test accuracy far above chance; ORT agrees with the executor', async () => {
  const train = loadFashionMnist({ dir: DIR, split: 'train' });
  const evalData = loadFashionMnist({ dir: DIR, split: 'test', limit: 500 });
  const model = readModelFile('fixtures/mlp.eval13.onnx');
  const before = await evaluateWithOrt(model, evalData);
  let lastStep = 0;
  const r = await finetune(model, { data: train, evalData, steps: 40, batch: 64, lr: 3e-3, optimizer: 'adamw', seed: 3, onProgress: (p) => { lastStep = p.step; } });
  assert.equal(lastStep, 40);
  assert.equal(r.history.length, 40);
  assert.ok(r.testAccuracy! > 0.6, `test accuracy ${r.testAccuracy} (before: ${before.accuracy})`);
  assert.ok(before.accuracy < 0.35, `untrained accuracy ${before.accuracy}`);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(mean(r.history.slice(-10).map((h) => h.loss)) < mean(r.history.slice(0, 5).map((h) => h.loss)) - 0.5);
  const ort = await evaluateWithOrt(r.model, evalData);
  assert.ok(Math.abs(ort.accuracy - r.testAccuracy!) <= 0.01, `ORT ${ort.accuracy} vs executor ${r.testAccuracy}`);
  // The input model is untouched.
  assert.equal((await evaluateWithOrt(model, evalData)).accuracy, before.accuracy);
});

test('resnet_small (BN, shared initializers): running stats written, ORT matches the executor within 1 point', async () => {
  const train = loadFashionMnist({ dir: DIR, split: 'train', limit: 2000 });
  const evalData = loadFashionMnist({ dir: DIR, split: 'test', limit: 300 });
  const model = readModelFile('fixtures/resnet_small.preserve13.onnx');
  const r = await finetune(model, { data: train, evalData, steps: 8, batch: 32, lr: 1e-3, optimizer: 'sgd', seed: 1 });
  const ort = await evaluateWithOrt(r.model, evalData);
  assert.ok(Math.abs(ort.accuracy - r.testAccuracy!) <= 0.01, `ORT ${ort.accuracy} vs executor ${r.testAccuracy}`);
  const graph = r.model.proto.graph!;
  const inits = new Map(graph.initializer!.map((t) => [t.name!, t]));
  // Every BN has its own running statistics, moved away from the fresh 0 / 1.
  const bns = graph.node!.filter((n) => n.opType === 'BatchNormalization');
  assert.ok(bns.length >= 10);
  const meanNames = new Set(bns.map((n) => n.input![3]));
  assert.equal(meanNames.size, bns.length);
  for (const bn of bns) {
    const mean = readFloat32(inits.get(bn.input![3])!, r.model);
    const variance = readFloat32(inits.get(bn.input![4])!, r.model);
    assert.ok(mean.some((v) => Math.abs(v) > 1e-4), `${bn.name}: running mean unchanged`);
    assert.ok(variance.some((v) => Math.abs(v - 1) > 1e-4), `${bn.name}: running var unchanged`);
  }
  assert.ok(!graph.node!.some((n) => n.opType === 'Identity' && inits.has(n.input![0])));
});

test('BN recalibration: running statistics re-estimated for the final weights (stem conv ×10 → mean ×10, variance ×100)', async () => {
  const train = loadFashionMnist({ dir: DIR, split: 'train', limit: 1000 });
  const model = readModelFile('fixtures/resnet_small.preserve13.onnx');
  const graph = model.proto.graph!;
  const stem = graph.node!.find((n) => n.opType === 'Conv')!;
  const bn = graph.node!.find((n) => n.opType === 'BatchNormalization' && n.input![0] === stem.output![0])!;
  const scaled = readModelFile('fixtures/resnet_small.preserve13.onnx');
  const w = scaled.proto.graph!.initializer!.find((t) => t.name === stem.input![1])!;
  replaceTensorData(w, readFloat32(w, scaled).map((v) => v * 10));
  // A negligible learning rate: the weights stay as given, so only the statistics differ between the runs.
  const common = { data: train, steps: 3, batch: 32, lr: 1e-12, optimizer: 'sgd' as const, seed: 2 };
  const stats = (m: OnnxModel) => {
    const inits = new Map(m.proto.graph!.initializer!.map((t) => [t.name!, t]));
    return { mean: readFloat32(inits.get(bn.input![3])!, m), variance: readFloat32(inits.get(bn.input![4])!, m) };
  };
  const base = stats((await finetune(model, common)).model);
  const recal = stats((await finetune(scaled, common)).model);
  const kept = stats((await finetune(scaled, { ...common, bnRecalibrationBatches: 0 })).model);
  for (let c = 0; c < base.mean.length; c++) {
    assert.ok(Math.abs(recal.mean[c]! - 10 * base.mean[c]!) <= 1e-3 * (1 + Math.abs(10 * base.mean[c]!)), `mean[${c}] ${recal.mean[c]} vs 10 × ${base.mean[c]}`);
    assert.ok(Math.abs(recal.variance[c]! / (100 * base.variance[c]!) - 1) < 1e-3, `var[${c}] ${recal.variance[c]} vs 100 × ${base.variance[c]}`);
  }
  // Without recalibration the running average still holds 0.9³ of the file's variance of 1.
  const ratio = kept.variance.map((v, c) => v / (100 * base.variance[c]!));
  assert.ok(ratio.some((r) => Math.abs(r - 1) > 0.05), `running average unexpectedly equals the recalibrated statistics`);
});

test('untie: every parameter slot and every BN running statistic gets its own tensor; outputs unchanged', async () => {
  const model = readModelFile('fixtures/resnet_small.preserve13.onnx');
  const before = buildGraph(model);
  const sharedSlots = [...before.slots.values()].filter((s) => [...before.slots.values()].some((o) => o !== s && o.initializer === s.initializer));
  assert.ok(sharedSlots.length > 0, 'fixture should share initializers between slots');
  const x = new Float32Array(2 * 28 * 28).map((_, i) => Math.sin(i));
  const run = async (m: OnnxModel) => {
    const session = await ort.InferenceSession.create(encodeModel(m));
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x, [2, 1, 28, 28]) });
    return out[session.outputNames[0]!]!.data as Float32Array;
  };
  const expected = await run(model);
  const copies = untieSharedInitializers(model);
  const after = buildGraph(model);
  assert.equal(after.slots.size, before.slots.size);
  const initializers = [...after.slots.values()].map((s) => s.initializer);
  assert.equal(new Set(initializers).size, initializers.length, 'two slots still share a tensor');
  // Copies carry PyTorch's parameter names (the Identity outputs) and map back to their original.
  for (const slot of sharedSlots) assert.ok(copies.get(slot.initializer)!.length >= 2, slot.initializer);
  const graph = model.proto.graph!;
  const runningStats = graph.node!.filter((n) => n.opType === 'BatchNormalization').flatMap((n) => [n.input![3], n.input![4]]);
  assert.equal(new Set(runningStats).size, runningStats.length, 'two BatchNorms share running statistics');
  const names = graph.initializer!.map((t) => t.name);
  assert.equal(new Set(names).size, names.length);
  assert.deepEqual(await run(model), expected);
});

test('optimizers: AdamW and SGD steps equal PyTorch formulas; cosine schedule', () => {
  const p0 = [0.5, -1.0, 2.0];
  const g = [0.1, -0.2, 0.3];
  const run = (kind: 'sgd' | 'adamw', steps: number) => {
    const p = tf.variable(tf.tensor1d(p0));
    const opt = createOptimizer({ kind, lr: 0.1, weightDecay: 0.01, momentum: 0.9 });
    const grad = tf.tensor1d(g);
    for (let i = 0; i < steps; i++) opt.step(new Map([['p', p]]), new Map([['p', grad]]));
    const out = Array.from(p.dataSync());
    opt.dispose(); p.dispose(); grad.dispose();
    return out;
  };
  // AdamW, 2 steps with a constant gradient: bias-corrected m̂ = g, v̂ = g², so each step moves
  // by lr·sign(g) (up to eps) after decoupled decay p·(1 − lr·wd).
  const adam = run('adamw', 2);
  p0.forEach((v, i) => {
    let p = v;
    for (let t = 0; t < 2; t++) p = p * (1 - 0.1 * 0.01) - 0.1 * Math.sign(g[i]) * (Math.abs(g[i]) / (Math.abs(g[i]) + 1e-8));
    assert.ok(Math.abs(adam[i] - p) < 1e-5, `adamw ${adam[i]} vs ${p}`);
  });
  // SGD with momentum 0.9 and L2 decay, PyTorch's rule (buffer starts at the first gradient).
  const sgd = run('sgd', 2);
  p0.forEach((v, i) => {
    let p = v;
    let buf = 0;
    for (let t = 0; t < 2; t++) {
      const d = g[i] + 0.01 * p;
      buf = t === 0 ? d : 0.9 * buf + d;
      p -= 0.1 * buf;
    }
    assert.ok(Math.abs(sgd[i] - p) < 1e-6, `sgd ${sgd[i]} vs ${p}`);
  });
  const cos = { kind: 'adamw' as const, lr: 1, schedule: 'cosine' as const, totalSteps: 10 };
  assert.equal(learningRate(cos, 0), 1);
  assert.ok(Math.abs(learningRate(cos, 5) - 0.5) < 1e-12);
  assert.ok(learningRate(cos, 10) < 1e-12);
});

test('optimizers: LAMB moves each tensor by lr times its norm along AdamW\'s direction; a zero tensor takes the plain step', () => {
  const p0 = [0.5, -1.0, 2.0], g = [0.1, -0.2, 0.3];
  const p = tf.variable(tf.tensor1d(p0));
  const zero = tf.variable(tf.zeros([2]));
  const opt = createOptimizer({ kind: 'lamb', lr: 0.1, weightDecay: 0.01 });
  const grads = new Map([['p', tf.tensor1d(g)], ['zero', tf.tensor1d([0.5, -2])]]);
  opt.step(new Map([['p', p], ['zero', zero]]), grads);
  // Step 1, constant gradient: m̂ = g, v̂ = g², so AdamW's direction is sign(g) (up to eps) plus wd·p.
  const direction = p0.map((v, i) => Math.sign(g[i]!) * Math.abs(g[i]!) / (Math.abs(g[i]!) + 1e-6) + 0.01 * v);
  const norm = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + x * x, 0));
  const trust = norm(p0) / norm(direction);
  const got = Array.from(p.dataSync());
  p0.forEach((v, i) => assert.ok(Math.abs(got[i]! - (v - 0.1 * trust * direction[i]!)) < 1e-5, `lamb ${got[i]} vs ${v - 0.1 * trust * direction[i]!}`));
  assert.ok(Math.abs(norm(got.map((v, i) => v - p0[i]!)) - 0.1 * norm(p0)) < 1e-5, 'the step is lr × ‖p‖');
  // ‖p‖ = 0: trust 1, so the zero tensor moves by lr·sign(g) like AdamW without decay.
  Array.from(zero.dataSync()).forEach((v, i) => assert.ok(Math.abs(v + 0.1 * Math.sign([0.5, -2][i]!)) < 1e-5, `zero[${i}] ${v}`));
  opt.dispose(); p.dispose(); zero.dispose(); tf.dispose([...grads.values()]);
});

test('optimizers: one flat update over all parameters equals per-parameter updates, also when the parameter set changes', () => {
  const shapes: Record<string, number[]> = { w: [3, 2, 2], b: [5], s: [1] };
  const init = (name: string, k: number) => tf.tensor(Array.from({ length: shapes[name]!.reduce((a, d) => a * d, 1) }, (_, i) => Math.sin(3 * i + k)), shapes[name]);
  const grad = (name: string, step: number) => tf.tensor(Array.from({ length: shapes[name]!.reduce((a, d) => a * d, 1) }, (_, i) => Math.cos(i + 7 * step) + 0.1 * step), shapes[name]);
  // Steps 1–3 update all three (one flat group); step 4 only w and s (per-parameter from then on).
  const plan = [['w', 'b', 's'], ['w', 'b', 's'], ['w', 'b', 's'], ['w', 's'], ['w', 'b', 's']];
  for (const kind of ['adamw', 'sgd'] as const) {
    const config = { kind, lr: 0.05, weightDecay: 0.01, momentum: 0.9 };
    const together = createOptimizer(config);
    const params = new Map(Object.keys(shapes).map((n, k) => [n, tf.variable(init(n, k))]));
    // Reference: one optimizer per parameter, stepping only when that parameter has a gradient.
    const alone = new Map(Object.keys(shapes).map((n, k) => [n, { opt: createOptimizer(config), p: tf.variable(init(n, k)) }]));
    plan.forEach((names, step) => {
      const grads = new Map(names.map((n) => [n, grad(n, step)]));
      together.step(params, grads);
      for (const n of names) alone.get(n)!.opt.step(new Map([[n, alone.get(n)!.p]]), new Map([[n, grads.get(n)!]]));
      tf.dispose([...grads.values()]);
    });
    for (const [n, p] of params) {
      const got = p.dataSync(), want = alone.get(n)!.p.dataSync();
      assert.deepEqual(p.shape, shapes[n]);
      got.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-6, `${kind} ${n}[${i}]: ${v} vs ${want[i]}`));
    }
    together.dispose();
    for (const { opt, p } of alone.values()) { opt.dispose(); p.dispose(); }
    for (const p of params.values()) p.dispose();
  }
});

test('evaluateAt: a checkpoint at step k equals a k-step run (re-estimated BN), and leaves the run unchanged', async () => {
  const train = loadFashionMnist({ dir: DIR, split: 'train', limit: 1000 });
  const evalData = loadFashionMnist({ dir: DIR, split: 'test', limit: 300 });
  const model = readModelFile('fixtures/resnet_small.preserve13.onnx');
  // lr high enough that step 3 and step 6 differ; the file's BN statistics are stale from step 1 on.
  const common = { data: train, evalData, batch: 32, lr: 3e-3, seed: 4, bnRecalibrationBatches: 3 };
  const withCheckpoints = await finetune(model, { ...common, steps: 6, evaluateAt: [3, 6, 9] });
  const plain6 = await finetune(model, { ...common, steps: 6 });
  const plain3 = await finetune(model, { ...common, steps: 3 });
  // Step 9 is past the end; the last step's checkpoint is the final evaluation.
  assert.deepEqual(withCheckpoints.checkpoints.map((c) => c.step), [3, 6]);
  assert.equal(withCheckpoints.checkpoints[0]!.testAccuracy, plain3.testAccuracy);
  assert.equal(withCheckpoints.checkpoints[1]!.testAccuracy, withCheckpoints.testAccuracy);
  assert.equal(withCheckpoints.testAccuracy, plain6.testAccuracy);
  assert.notEqual(plain3.testAccuracy, plain6.testAccuracy, 'steps 3 and 6 should differ for the test to mean anything');
  assert.deepEqual(withCheckpoints.history, plain6.history);
  assert.deepEqual(plain6.checkpoints, []);
  // Same weights and running statistics written, bit for bit.
  assert.deepEqual(encodeModel(withCheckpoints.model), encodeModel(plain6.model));
  await assert.rejects(finetune(model, { data: train, steps: 2, evaluateAt: [1] }), (e: unknown) => e instanceof GhnError && e.kind === 'usage');
});

test('evaluateWithExecutor and evaluateWithOrt agree on an untrained BN model', async () => {
  const data = loadFashionMnist({ dir: DIR, split: 'test', limit: 200 });
  const model = readModelFile('fixtures/mobilenet_small.preserve13.onnx');
  const a = await evaluateWithExecutor(model, data, { batch: 100 });
  const b = await evaluateWithOrt('fixtures/mobilenet_small.preserve13.onnx', data);
  assert.equal(a.count, 200);
  assert.ok(Math.abs(a.accuracy - b.accuracy) <= 0.01, `${a.accuracy} vs ${b.accuracy}`);
});

test("evaluateWithExecutor batchNorm 'batch': BN on each batch's statistics; no leaked tensors; a BN-free model is unaffected", async () => {
  const data = loadFashionMnist({ dir: DIR, split: 'test', limit: 200 });
  const model = readModelFile('fixtures/mobilenet_small.preserve13.onnx');
  const executor = new GraphExecutor(model);
  let expected = 0;
  for (let start = 0; start < 200; start += 100) {
    const scores = tf.tidy(() => executor.run(tf.tensor(data.images.subarray(start * 784, (start + 100) * 784), [100, 1, 28, 28]), { training: true })
      .outputs[0]!.dataSync() as Float32Array);
    expected += countCorrect(scores, 10, data.labels, start);
  }
  const before = tf.memory().numTensors;
  const batchStats = await evaluateWithExecutor(executor, data, { batch: 100, batchNorm: 'batch' });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(batchStats.correct, expected);
  const running = await evaluateWithExecutor(executor, data, { batch: 100 });
  assert.notEqual(batchStats.correct, running.correct, 'the fixture has randomized running statistics');
  executor.dispose();
  const mlp = readModelFile('fixtures/mlp.eval13.onnx');
  assert.deepEqual(await evaluateWithExecutor(mlp, data, { batchNorm: 'batch' }), await evaluateWithExecutor(mlp, data));
});

test('a dataset whose images do not fit the model input is a bad-input GhnError', async () => {
  const data = loadFashionMnist({ dir: DIR, split: 'test', limit: 100 });
  const wrong = { ...data, shape: [3, 28, 28] as [number, number, number] };
  await assert.rejects(finetune(readModelFile('fixtures/mlp.eval13.onnx'), { data: wrong, steps: 1 }),
    (e: unknown) => e instanceof GhnError && e.kind === 'bad-input' && /expects images \[1, 28, 28\]/.test(e.message));
});

test('trainable restricts training to the named initializers', async () => {
  const data = loadFashionMnist({ dir: DIR, split: 'train', limit: 640 });
  const model = readModelFile('fixtures/mlp.eval13.onnx');
  const gemms = model.proto.graph!.node!.filter((n) => n.opType === 'Gemm');
  const head = gemms[gemms.length - 1].input![1];
  const r = await finetune(model, { data, steps: 3, batch: 32, trainable: [head], optimizer: 'sgd', lr: 0.1 });
  assert.deepEqual(r.trained, [head]);
  const before = new Map(model.proto.graph!.initializer!.map((t) => [t.name!, readFloat32(t, model)]));
  for (const t of r.model.proto.graph!.initializer!) {
    if (t.dataType !== 1) continue;
    const old = before.get(t.name!)!;
    const now = readFloat32(t, r.model);
    const changed = now.some((v, i) => v !== old[i]);
    assert.equal(changed, t.name === head, `${t.name} ${changed ? 'changed' : 'unchanged'}`);
  }
  await assert.rejects(finetune(model, { data, steps: 1, trainable: ['nope'] }), (e: unknown) => e instanceof GhnError && e.kind === 'usage');
});
