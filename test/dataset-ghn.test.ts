/**
 * A GHN trained on your own data, end to end through the CLI: `ghn train --data <image folder>`
 * (3×32×32 PNGs written here from the committed Fashion-MNIST subset, each class tinted), then
 * `ghn predict` on a PyTorch export of that shape (calibrated and its classifier fitted on the
 * folder, the folder's normalization in the file, run in onnxruntime-node), the same GHN refusing
 * a 1×28×28 model, `ghn eval` and `ghn finetune` on the folder, and a 2-channel 3-class folder
 * whose space is generated for it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { PNG } from 'pngjs';
import { readNormalization, loadTrainTest, resolveDataset } from '../src/data/index.js';
import { readGhnHeader } from '../src/ghn/serialize.js';
import { readModelFile } from '../src/onnx/index.js';
import { trainAndSave } from '../src/api/ghn-training.js';
import { writeFashionMnistFolder } from '../scripts/make-image-folder.js';
import { onnxCheckErrors } from './readme-blocks.js';

const CLI = path.resolve('src/cli/main.ts');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-dataset-'));
const FOLDER = path.join(tmp, 'tinted32');
const GHN = path.join(tmp, 'tinted.ghn');
const MODEL32 = path.join(tmp, 'cnn32.onnx');

function ghn(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const EXPORT = `
import sys, torch, torch.nn as nn
torch.manual_seed(0)
m = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                  nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                  nn.Flatten(), nn.Linear(32, 10))
m.eval()
torch.onnx.export(m, torch.zeros(1, 3, 32, 32), sys.argv[1], opset_version=13, input_names=['x'], output_names=['y'],
                  dynamic_axes={'x': {0: 'n'}, 'y': {0: 'n'}}, training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
`;

before(() => {
  for (const [split, n] of [['train', 800], ['test', 300]] as const) writeFashionMnistFolder(FOLDER, split, n, { rgb: true, dir: 'fixtures/fashion-mnist' });
  const r = spawnSync('/usr/bin/python3', ['-c', EXPORT, MODEL32], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

describe('ghn train --data <image folder>, then predict', () => {
  it('trains 20 steps on 3×32×32 PNGs and records the folder, its classes and its normalization in the GHN', () => {
    const r = ghn('train', '--data', FOLDER, '--steps', '20', '--eval-archs', '0', '--out', GHN.replace(/\.ghn$/, ''));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /trained on tinted32 \(800 images, 3×32×32, 10 classes\)/);
    // The loss/accuracy curves beside the GHN (issue 20, item 5).
    const plot = GHN.replace(/\.ghn$/, '.training.svg');
    assert.ok(r.stdout.includes(`loss and accuracy plot: ${plot}\n`), r.stdout);
    assert.match(fs.readFileSync(plot, 'utf8'), /^<svg [^>]*>[\s\S]*<title>tinted<\/title>[\s\S]*<\/svg>\s*$/);
    const { dataset, recipe } = readGhnHeader(GHN);
    assert.equal((recipe as { stepsDone: number }).stepsDone, 20);
    assert.ok(dataset);
    assert.deepEqual([dataset.kind, dataset.path, dataset.shape, dataset.classes, dataset.trainImages], ['image-folder', FOLDER, [3, 32, 32], 10, 800]);
    assert.equal(dataset.classNames!.length, 10);
    assert.deepEqual(dataset.normalization, loadTrainTest(resolveDataset(FOLDER), { test: false }).train.normalization);
    assert.equal(dataset.normalization.mean.length, 3);
  });

  it('predicts a 3×32×32 PyTorch export: calibrated and fitted on the folder, its normalization in the file, accurate in onnxruntime', async () => {
    const out = path.join(tmp, 'cnn32.ghn.onnx');
    const r = ghn('predict', MODEL32, '--ghn', GHN, '-o', out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /fitted on \d+ labeled images of tinted32\/train/);
    assert.equal(await onnxCheckErrors([out]), '', 'onnx.checker rejects the written model');
    const written = readModelFile(out);
    const normalization = readNormalization(written.proto)!;
    assert.deepEqual(normalization, readGhnHeader(GHN).dataset!.normalization);
    const options = JSON.parse(written.proto.metadataProps!.find((p) => p.key === 'ghn.options')!.value!);
    assert.equal(options.calibrationData, 'tinted32/train');
    // The folder's test split, normalized as the file says, through onnxruntime: the classes are
    // told apart (chance is 10%; a noise-calibrated model without the fitted classifier is near it).
    const { test } = loadTrainTest(resolveDataset(FOLDER));
    const session = await ort.InferenceSession.create(out);
    const x = new ort.Tensor('float32', test!.images, [test!.count, 3, 32, 32]);
    const y = (await session.run({ [session.inputNames[0]!]: x }))[session.outputNames[0]!]!;
    assert.deepEqual(y.dims, [test!.count, 10]);
    const scores = y.data as Float32Array;
    let correct = 0;
    for (let n = 0; n < test!.count; n++) {
      const row = scores.subarray(n * 10, n * 10 + 10);
      if (row.indexOf(Math.max(...row)) === test!.labels[n]) correct++;
    }
    assert.ok(correct / test!.count > 0.5, `test accuracy ${correct / test!.count}`);
  });

  it('refuses a 1×28×28 model in one line naming both shapes and the shipped GHN that serves it; writes nothing', () => {
    const out = path.join(tmp, 'resnet.ghn.onnx');
    const r = ghn('predict', 'fixtures/resnet_small.preserve13.onnx', '--ghn', GHN, '-o', out);
    assert.notEqual(r.code, 0);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /trained on tinted32 \(3×32×32 images, 10 classes\) and cannot serve .*resnet_small.preserve13.onnx, which takes 1×28×28 images, 10 classes: use models\/ghn-fmnist.ghn \(trained on fashion-mnist, 1×28×28 images, 10 classes\)/);
    assert.ok(!fs.existsSync(out));
  });

  it('refuses a model of the right shape with another class count, and suggests training one when no GHN serves it', () => {
    const model = path.join(tmp, 'cnn32-c5.onnx');
    const r0 = spawnSync('/usr/bin/python3', ['-c', EXPORT.replace('nn.Linear(32, 10)', 'nn.Linear(32, 5)'), model], { encoding: 'utf8' });
    assert.equal(r0.status, 0, r0.stderr);
    const r = ghn('predict', model, '--ghn', GHN, '-o', path.join(tmp, 'c5.onnx'));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr.trim(), /^ghn: .*which takes 3×32×32 images, 5 classes: train a GHN on such data \(`ghn train --data <dataset of 3×32×32 images, 5 classes>`\)$/);
  });

  it('ghn eval uses the GHN\'s own folder; ghn finetune trains on it', () => {
    const e = ghn('eval', '--ghn', GHN, '--archs', '2', '--images', '100', '--finetune-archs', '0', '--json');
    assert.equal(e.code, 0, e.stderr);
    const evaluation = JSON.parse(e.stdout);
    assert.equal(evaluation.data, 'tinted32/test');
    assert.equal(evaluation.archs, 2);
    assert.equal(evaluation.images, 100);
    const other = ghn('eval', '--ghn', GHN, '--data', 'fixtures/fashion-mnist', '--archs', '1', '--finetune-archs', '0');
    assert.equal(other.code, 64);
    assert.match(other.stderr.trim(), /^ghn: .*tinted.ghn was trained on 3×32×32 images, 10 classes \(tinted32\); fashion-mnist\/test has 1×28×28 images, 10 classes$/);
    const tuned = path.join(tmp, 'tuned.onnx');
    const f = ghn('finetune', MODEL32, '--data', FOLDER, '--steps', '5', '--test-limit', '100', '-o', tuned, '--json');
    assert.equal(f.code, 0, f.stderr);
    const report = JSON.parse(f.stdout);
    assert.equal(report.steps, 5);
    assert.ok(report.ortAccuracy >= 0 && report.testAccuracy >= 0);
    const bad = ghn('finetune', MODEL32, '--data', path.join(tmp, 'missing-folder'), '-o', tuned);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr.trim(), /^ghn: dataset not found: .*missing-folder/);
  });

  it('a bad folder fails ghn train in one line and leaves no GHN', () => {
    const dir = path.join(tmp, 'mixed');
    const img = (w: number) => PNG.sync.write(Object.assign(new PNG({ width: w, height: 4 }), {}));
    fs.mkdirSync(path.join(dir, 'a'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'b'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'a', '0.png'), img(4));
    fs.writeFileSync(path.join(dir, 'b', '0.png'), img(6));
    const r = ghn('train', '--data', dir, '--steps', '2', '--eval-archs', '0', '--out', path.join(tmp, 'mixed'));
    assert.equal(r.code, 3);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /one size and channel count/);
    assert.ok(!fs.existsSync(path.join(tmp, 'mixed.ghn')));
  });
});

describe('the space follows the data', () => {
  it('trains on 2-channel 20×20 images with 3 classes: every architecture takes them and gives 3 scores', async () => {
    const dir = path.join(tmp, 'two-channel');
    for (let i = 0; i < 60; i++) {
      const c = i % 3;
      const p = new PNG({ width: 20, height: 20 });
      for (let k = 0; k < 400; k++) p.data.set([60 * c + (k % 20), 0, 0, 100 + 50 * c], 4 * k);
      fs.mkdirSync(path.join(dir, `k${c}`), { recursive: true });
      fs.writeFileSync(path.join(dir, `k${c}`, `${i}.png`), PNG.sync.write(p, { colorType: 4, inputColorType: 6 } as never));
    }
    const result = await trainAndSave({ out: path.join(tmp, 'two'), data: dir, recipe: { steps: 3, metaBatch: 2, images: 8, poolSize: 50 }, evalArchs: 0 });
    assert.deepEqual([result.dataset.shape, result.dataset.classes], [[2, 20, 20], 3]);
    const header = readGhnHeader(path.join(tmp, 'two.ghn'));
    assert.deepEqual(header.dataset!.shape, [2, 20, 20]);
    assert.equal(header.dataset!.normalization.mean.length, 2);
    // The architectures it was trained on were generated for [2, 20, 20] → 3 classes.
    const { ArchitecturePool } = await import('../src/meta-training/arch-pool.js');
    const pool = new ArchitecturePool('train', 4, 0, Infinity, true, { input: [2, 20, 20], classes: 3 });
    try {
      for (let i = 0; i < 4; i++) {
        const arch = pool.get(i);
        if (!arch) continue;
        const g = arch.model.proto.graph!;
        assert.deepEqual(g.input![0]!.type!.tensorType!.shape!.dim!.slice(1).map((d) => Number(d.dimValue)), [2, 20, 20]);
        assert.equal(Number(g.output![0]!.type!.tensorType!.shape!.dim!.at(-1)!.dimValue), 3);
      }
    } finally {
      pool.dispose();
    }
  });
});
