/**
 * The executor against onnxruntime-node on every committed fixture export (all variants), batch 2,
 * random inputs. Running-statistics BN, except the TRAINING-form exports, which onnxruntime runs with
 * batch statistics, so the executor runs them with `training: true`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { initBackend } from '../src/engine/backend.js';
import { GraphExecutor } from '../src/engine/executor.js';
import { GhnError } from '../src/errors.js';
import { readModelFile } from '../src/onnx/index.js';
import { createRng, gaussian } from '../src/util/random.js';

interface ManifestEntry { file: string; kind: string; variant?: string; input?: number[] }
const manifest = JSON.parse(readFileSync('fixtures/manifest.json', 'utf8')) as { files: ManifestEntry[] };
const exports = manifest.files.filter((f) => f.kind === 'onnx');

/** max |diff| / std(reference): the error relative to the output's own scale. */
function relativeError(reference: Float32Array, got: Float32Array): number {
  assert.equal(got.length, reference.length);
  let mean = 0;
  for (const v of reference) mean += v / reference.length;
  let variance = 0;
  for (const v of reference) variance += (v - mean) ** 2 / reference.length;
  let maxDiff = 0;
  for (let i = 0; i < reference.length; i++) maxDiff = Math.max(maxDiff, Math.abs(reference[i] - got[i]));
  return maxDiff / Math.max(1e-6, Math.sqrt(variance));
}

function randomInput(shape: number[], seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => gaussian(rng));
}

async function compareWithOrt(file: string, batch: number, training: boolean): Promise<number> {
  const model = readModelFile(file);
  const executor = new GraphExecutor(model);
  const session = await ort.InferenceSession.create(file);
  try {
    const dims = model.proto.graph!.input!.find((i) => i.name === executor.inputNames[0])!.type!.tensorType!.shape!.dim!;
    const shape = [batch, ...dims.slice(1).map((d) => Number(d.dimValue))];
    const data = randomInput(shape, 7);
    const reference = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, shape) });
    const input = tf.tensor(data, shape);
    const { outputs } = executor.run(input, { training });
    const got = outputs[0].dataSync() as Float32Array;
    assert.deepEqual(outputs[0].shape, reference[session.outputNames[0]].dims.map(Number));
    tf.dispose([input, ...outputs]);
    return relativeError(reference[session.outputNames[0]].data as Float32Array, got);
  } finally {
    executor.dispose();
    await session.release();
  }
}

test('setup: wasm backend', async () => {
  await initBackend('wasm');
});

for (const entry of exports) {
  const training = entry.variant === 'training13';
  test(`${entry.file} matches onnxruntime (batch 2${training ? ', batch-statistics BN' : ''})`, async () => {
    // Two-sample batch statistics are ill-conditioned for BN over [N, C] (misc_small's BatchNorm1d):
    // a larger batch keeps the comparison about the executor, not about float rounding.
    const batch = training && entry.file.startsWith('misc_small') ? 8 : 2;
    const err = await compareWithOrt(`fixtures/${entry.file}`, batch, training);
    assert.ok(err <= 1e-4, `relative error ${err.toExponential(2)}`);
  });
}

test('external-data export matches onnxruntime', async () => {
  const err = await compareWithOrt('fixtures/external/resnet_small.preserve13.onnx', 2, false);
  assert.ok(err <= 1e-4, `relative error ${err.toExponential(2)}`);
});

const LARGE = 'fixtures/large/resnet18.preserve13.onnx';
test('torchvision resnet18 (if exported) matches onnxruntime', { skip: !existsSync(LARGE) }, async () => {
  const err = await compareWithOrt(LARGE, 1, false);
  assert.ok(err <= 1e-4, `relative error ${err.toExponential(2)}`);
});

test('an unknown operator is a GhnError naming the op and node', () => {
  const model = readModelFile('fixtures/cnn_small.eval13.onnx');
  const node = model.proto.graph!.node![1];
  node.opType = 'FancyActivation';
  assert.throws(() => new GraphExecutor(model), (e: unknown) =>
    e instanceof GhnError && e.kind === 'unsupported' && e.message.includes('operator FancyActivation') && e.message.includes(node.name!));
});

test('supplied params replace initializers and change the output', () => {
  const model = readModelFile('fixtures/cnn_small.eval13.onnx');
  const executor = new GraphExecutor(model);
  const x = tf.tensor(randomInput([2, 1, 28, 28], 3), [2, 1, 28, 28]);
  const gemm = model.proto.graph!.node!.find((n) => n.opType === 'Gemm')!;
  const biasName = gemm.input![2];
  const bias = executor.initializer(biasName)!;
  const base = executor.run(x).outputs[0];
  const shifted = tf.add(bias, 1);
  const moved = executor.run(x, { params: new Map([[biasName, shifted]]) }).outputs[0];
  // The classifier bias shifts every logit by exactly 1.
  const diff = tf.sub(moved, base);
  assert.ok(Math.abs(diff.min().dataSync()[0] - 1) < 1e-5 && Math.abs(diff.max().dataSync()[0] - 1) < 1e-5);
  tf.dispose([x, base, shifted, moved, diff]);
  executor.dispose();
});

test('params naming something other than a float initializer is a usage error', () => {
  const model = readModelFile('fixtures/cnn_small.eval13.onnx');
  const executor = new GraphExecutor(model);
  const x = tf.zeros([1, 1, 28, 28]);
  assert.throws(() => executor.run(x, { params: new Map([['no_such_weight', x]]) }), (e: unknown) => e instanceof GhnError && e.kind === 'usage');
  x.dispose();
  executor.dispose();
});
