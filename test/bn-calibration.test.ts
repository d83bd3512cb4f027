/**
 * Calibration of models that keep their BatchNorms (real PyTorch 1.13 preserve-mode exports, made
 * into a temp dir by test/bn-calibration-models.py). On ImageNet-size inputs the noise batch used
 * to be one image, whose BN statistics leave out how a deep channel's mean varies between images:
 * the predicted model amplified every new image's deviations through each BN (logit std ~60 on
 * this model, 123–976 on six torchvision models). The pass now runs at least MIN_NOISE_IMAGES
 * images, in several passes whose BN statistics are merged.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../src/api/inspect.js';
import { predict } from '../src/api/predict.js';
import { buildGraph } from '../src/graph/index.js';
import { writeParameters } from '../src/graph/write-parameters.js';
import { readFloat32, type OnnxModel } from '../src/onnx/index.js';
import { calibrate, DEFAULT_STD_BAND, MIN_NOISE_IMAGES } from '../src/predict/calibrate.js';
import { createRng, gaussian } from '../src/util/random.js';

const ROOT = path.resolve(import.meta.dirname, '..');
let dir = '';

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-bn-calibration-'));
  execFileSync('/usr/bin/python3', [path.join(ROOT, 'test/bn-calibration-models.py'), dir, '224'], { stdio: ['ignore', 'ignore', 'pipe'] });
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function std(values: Float32Array): number {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
}

test('a predicted BN-preserving mobilenet_v3_small (3×224×224) has logits of sane scale on new noise images', async () => {
  const output = path.join(dir, 'mobilenet_v3_small.ghn.onnx');
  const result = await predict(loadModel(path.join(dir, 'mobilenet_v3_small.224.onnx')), { output, validate: false });
  assert.equal(result.report.calibration?.data, 'standard-normal noise');
  assert.ok(result.report.calibration!.batch >= MIN_NOISE_IMAGES, `calibrated on ${result.report.calibration!.batch} images`);
  assert.ok(result.report.calibration!.passes > 1, 'the batch runs in several passes at this input size');
  // Eight standard-normal images the calibration never saw, through the written model (running statistics).
  const shape = [8, 3, 224, 224];
  const rng = createRng(12345);
  const x = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => gaussian(rng));
  const session = await ort.InferenceSession.create(output);
  try {
    const logits = (await session.run({ input: new ort.Tensor('float32', x, shape) })).logits!.data as Float32Array;
    assert.ok(logits.every(Number.isFinite));
    const s = std(logits);
    // The band caps the calibration batch's logits at std 10; unseen images may land somewhat above
    // it, not an order of magnitude (one-image calibration: ~60).
    assert.ok(s > DEFAULT_STD_BAND.low && s <= 2 * DEFAULT_STD_BAND.high, `logit std ${s.toFixed(2)}`);
  } finally {
    await session.release();
  }
});

/** Running mean and variance of every BatchNormalization in `model`, by node order. */
function runningStatistics(model: OnnxModel): Float32Array[] {
  const inits = new Map((model.proto.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  return (model.proto.graph?.node ?? []).filter((n) => n.opType === 'BatchNormalization')
    .flatMap((n) => [3, 4].map((k) => readFloat32(inits.get(n.input![k]!)!, model)));
}

async function calibrated(passValues?: number) {
  const model = loadModel(path.join(dir, 'tiny_bn.onnx'));
  const graph = buildGraph(model);
  const inits = new Map((model.proto.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  // The export's own (PyTorch default) weights: the merge is about statistics, not about the GHN.
  const tensors = new Map([...graph.slots.values()].map((s) => [s.id, readFloat32(inits.get(s.initializer)!, model).slice()]));
  const written = writeParameters(graph, tensors);
  const report = await calibrate(graph, written, tensors, passValues ? { passValues } : {});
  return { report, statistics: runningStatistics(written.model) };
}

test('BN statistics merged over several passes equal those of one pass over the same images', async () => {
  const whole = await calibrated();
  // 10 images of 3×16×16 per pass.
  const split = await calibrated(10 * 3 * 16 * 16);
  assert.equal(whole.report.passes, 1);
  assert.equal(whole.report.batch, split.report.batch);
  assert.equal(split.report.passes, Math.ceil(split.report.batch / 10));
  assert.equal(whole.report.batchNorms, 1);
  // The one BN follows the first conv, so its inputs do not depend on how the batch is split.
  assert.equal(whole.report.minScale, split.report.minScale);
  assert.equal(whole.report.maxScale, split.report.maxScale);
  assert.equal(whole.statistics.length, 2);
  whole.statistics.forEach((expected, k) => {
    const actual = split.statistics[k]!;
    assert.equal(actual.length, expected.length);
    expected.forEach((e, c) => assert.ok(Math.abs(actual[c]! - e) <= 1e-4 * Math.max(1, Math.abs(e)), `statistic ${k} channel ${c}: ${actual[c]} vs ${e}`));
  });
  // And they are the batch's, not PyTorch's initial ones (mean 0, variance 1).
  assert.ok(whole.statistics[0]!.some((m) => Math.abs(m) > 1e-3));
});
