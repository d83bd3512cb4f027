/**
 * Closed-form head refit during fine-tuning (src/fine-tuning/head-refit.ts, FinetuneOptions.headRefit):
 * a scrambled head is refitted from the features; with a refit only at evaluations the run itself is
 * unchanged (its trained-head accuracy equals a plain run's); a refit every k steps changes the run
 * from step k on; the written file carries the refitted head (onnxruntime agrees).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFashionMnist } from '../src/data/index.js';
import { initBackend } from '../src/engine/backend.js';
import { GhnError } from '../src/errors.js';
import { evaluateWithOrt } from '../src/fine-tuning/evaluate.js';
import { finetune } from '../src/fine-tuning/finetune.js';
import { labeledImages, refitHead } from '../src/fine-tuning/head-refit.js';
import { buildGraph } from '../src/graph/index.js';
import { encodeModel, readFloat32, readModelFile, replaceTensorData } from '../src/onnx/index.js';
import { classifierHead } from '../src/predict/fit-head.js';

const DIR = 'fixtures/fashion-mnist';

test('setup: wasm backend', async () => {
  await initBackend('wasm');
});

test('refitHead: a negated head is refitted from the features of a trained body (≥ 20 points back), in place', async () => {
  const train = loadFashionMnist({ dir: DIR, split: 'train' });
  const test = loadFashionMnist({ dir: DIR, split: 'test', limit: 500 });
  const trained = (await finetune(readModelFile('fixtures/mlp.eval13.onnx'), { data: train, steps: 60, lr: 3e-3, seed: 1 })).model;
  const good = (await evaluateWithOrt(trained, test)).accuracy;
  const head = classifierHead(buildGraph(trained), 10)!;
  const weight = trained.proto.graph!.initializer!.find((t) => t.name === head.weight.initializer)!;
  // A head that reads the features backwards: the body is good, the head is not.
  replaceTensorData(weight, readFloat32(weight).map((v) => -v));
  const scrambled = (await evaluateWithOrt(trained, test)).accuracy;
  assert.ok(scrambled < good - 0.3, `scrambled ${scrambled} vs trained ${good}`);
  const refit = await refitHead(trained, labeledImages(train, 1000));
  assert.equal(refit?.report.kept, 'fitted');
  assert.deepEqual([...refit!.values.keys()].sort(), [head.weight.initializer, head.bias!.initializer].sort());
  const after = (await evaluateWithOrt(trained, test)).accuracy;
  assert.ok(after > scrambled + 0.2 && after > good - 0.05, `refitted ${after} (scrambled ${scrambled}, trained ${good})`);
});

test('headRefit at evaluations: the run is unchanged, the refitted figure is what the written file gives in onnxruntime', async () => {
  const train = loadFashionMnist({ dir: DIR, split: 'train', limit: 2000 });
  const evalData = loadFashionMnist({ dir: DIR, split: 'test', limit: 300 });
  const model = readModelFile('fixtures/resnet_small.preserve13.onnx');
  const common = { data: train, evalData, steps: 8, batch: 32, lr: 3e-3, seed: 2, bnRecalibrationBatches: 3, evaluateAt: [4, 8] };
  const plain = await finetune(model, common);
  const refitted = await finetune(model, { ...common, headRefit: { images: 1000 } });
  assert.deepEqual(refitted.history, plain.history);
  assert.deepEqual(refitted.checkpoints.map((c) => c.trainedHeadAccuracy), plain.checkpoints.map((c) => c.testAccuracy));
  assert.equal(refitted.headRefit?.images, 1000);
  assert.equal(refitted.headRefit?.kept, 'fitted');
  // 8 steps from PyTorch's init leave a head far from the least-squares one on these features.
  assert.ok(refitted.testAccuracy! > plain.testAccuracy! + 0.05, `refit ${refitted.testAccuracy} vs trained head ${plain.testAccuracy}`);
  const ort = (await evaluateWithOrt(refitted.model, evalData)).accuracy;
  assert.ok(Math.abs(ort - refitted.testAccuracy!) <= 0.01, `ORT ${ort} vs executor ${refitted.testAccuracy}`);
  assert.notDeepEqual(encodeModel(refitted.model), encodeModel(plain.model));
});

test('headRefit every k steps: the run is the plain one up to step k, then goes on from the refitted head', async () => {
  const train = loadFashionMnist({ dir: DIR, split: 'train', limit: 2000 });
  const model = readModelFile('fixtures/mlp.eval13.onnx');
  const common = { data: train, steps: 6, batch: 32, lr: 3e-3, seed: 5 };
  const plain = await finetune(model, common);
  const every = await finetune(model, { ...common, headRefit: { images: 500, every: 3 } });
  assert.deepEqual(every.history.slice(0, 3), plain.history.slice(0, 3));
  assert.notEqual(every.history[3]!.loss, plain.history[3]!.loss);
  assert.ok(every.history[3]!.loss < plain.history[3]!.loss, `loss after the refit ${every.history[3]!.loss} vs ${plain.history[3]!.loss}`);
});

test('headRefit: bad image counts and intervals are usage errors', async () => {
  const train = loadFashionMnist({ dir: DIR, split: 'train', limit: 200 });
  const model = readModelFile('fixtures/mlp.eval13.onnx');
  for (const headRefit of [{ images: 1 }, { images: 1.5 }, { images: 100, every: 0 }]) {
    await assert.rejects(finetune(model, { data: train, steps: 1, headRefit }), (e: unknown) => e instanceof GhnError && e.kind === 'usage');
  }
});
