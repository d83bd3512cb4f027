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

test('ghn finetune refits the head by default (the report says on how many images); --head-refit 0 turns it off; bad values are one-line errors', async () => {
  const { spawnSync } = await import('node:child_process');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-refit-'));
  const ghn = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8', timeout: 300_000 });
  const common = ['finetune', 'fixtures/mlp.eval13.onnx', '--data-dir', DIR, '--steps', '4', '--test-limit', '300', '--json'];
  const on = ghn(...common, '-o', path.join(tmp, 'on.onnx'));
  assert.equal(on.status, 0, on.stderr);
  const report = JSON.parse(on.stdout);
  const subset = loadFashionMnist({ dir: DIR, split: 'train' }).count;
  assert.equal(report.headRefit.images, Math.min(8192, subset));
  assert.ok(Math.abs(report.testAccuracy - report.ortAccuracy) <= 0.01, JSON.stringify(report));
  const off = ghn(...common, '-o', path.join(tmp, 'off.onnx'), '--head-refit', '0');
  assert.equal(off.status, 0, off.stderr);
  assert.equal(JSON.parse(off.stdout).headRefit, undefined);
  for (const bad of [['--head-refit', '1'], ['--head-refit', 'x'], ['--head-refit', '0', '--head-refit-every', '5'], ['--head-refit-every', '0']]) {
    const r = ghn(...common, '-o', path.join(tmp, 'bad.onnx'), ...bad);
    assert.equal(r.status, 64, `${bad.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^ghn: --head-refit[^\n]*\n$/);
    assert.ok(!fs.existsSync(path.join(tmp, 'bad.onnx')));
  }
});

test("optimizer and lr 'auto': LAMB 3e-3 for a ghn predict output, AdamW 1e-3 for PyTorch's export; the report says which", async () => {
  const { predict } = await import('../src/api/predict.js');
  const { finetuneModel } = await import('../src/api/finetune.js');
  const train = loadFashionMnist({ dir: DIR, split: 'train', limit: 500 });
  const raw = 'fixtures/mlp.eval13.onnx';
  const predicted = (await predict(raw)).onnx;
  const common = { train, steps: 2, optimizer: 'auto' as const, lr: 'auto' as const };
  const fromPrediction = (await finetuneModel(predicted, common)).report;
  assert.equal(fromPrediction.optimizer, 'lamb');
  assert.equal(fromPrediction.lr, 3e-3);
  assert.equal(fromPrediction.start, 'ghn-prediction');
  const fromExport = (await finetuneModel(raw, common)).report;
  assert.equal(fromExport.optimizer, 'adamw');
  assert.equal(fromExport.lr, 1e-3);
  assert.equal(fromExport.start, 'other');
  const told = (await finetuneModel(predicted, { ...common, optimizer: 'adamw', lr: 2e-4 })).report;
  assert.deepEqual([told.optimizer, told.lr, told.start], ['adamw', 2e-4, undefined]);
  // An optimizer told, the rate auto: AdamW's rate even from a prediction.
  assert.equal((await finetuneModel(predicted, { ...common, optimizer: 'adamw' })).report.lr, 1e-3);
});
