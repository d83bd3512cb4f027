import * as tf from '@tensorflow/tfjs-core';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadFashionMnist } from '../src/data/fashion-mnist.js';
import { initBackend } from '../src/engine/backend.js';
import { encodeGraph, type GraphEncoding } from '../src/ghn/encoding.js';
import { drawLatent } from '../src/ghn/latent.js';
import { DEFAULT_GHN_CONFIG, GhnModel } from '../src/ghn/model.js';
import { predictParameters, predictParametersAsync, predictStoredTensors } from '../src/ghn/predict-params.js';
import { loadGhn } from '../src/ghn/serialize.js';
import { buildGraph } from '../src/graph/build.js';
import { jensenShannon, stepLatents } from '../src/meta-training/diversity.js';
import { replaySegments, replayTraining } from '../src/meta-training/replay.js';
import { trainGhn } from '../src/meta-training/train.js';
import { readModelFile } from '../src/onnx/index.js';

const LATENT = { ...DEFAULT_GHN_CONFIG, latentDim: 8 };

async function fixtureEncoding(file: string): Promise<GraphEncoding> {
  return encodeGraph(buildGraph(await readModelFile(file)));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('latent GHN', () => {
  before(async () => {
    await initBackend();
  });

  it('a latent grown onto a GHN keeps its prediction without a draw; a draw moves the body, never the classifier', async () => {
    const base = new GhnModel(DEFAULT_GHN_CONFIG);
    const values = new Map([...base.variables].map(([name, v]) => [name, v.dataSync() as Float32Array]));
    const grown = new GhnModel(LATENT, values);
    assert.deepEqual(grown.variables.get('latent.proj')!.shape, [8, DEFAULT_GHN_CONFIG.hidden]);
    for (const file of ['fixtures/resnet_small.eval13.onnx', 'fixtures/vit_small.preserve13.onnx']) {
      const enc = await fixtureEncoding(file);
      const plain = predictParameters(base, enc);
      const none = await predictParametersAsync(grown, enc);
      const [za, zb] = stepLatents(enc, 8, 1, 0, 0);
      const [a, b] = [await predictParametersAsync(grown, enc, za), await predictParametersAsync(grown, enc, zb)];
      let moved = 0;
      for (const slot of enc.slots) {
        const p = plain.get(slot.id)!;
        assert.ok(maxAbsDiff(none.get(slot.id)!, p) <= 1e-5 * Math.max(1, ...p.map(Math.abs)), `${file} ${slot.id}: no draw, same prediction`);
        const d = maxAbsDiff(a.get(slot.id)!, b.get(slot.id)!);
        if (slot.isClassifier) assert.equal(d, 0, `${file} ${slot.id}: the classifier has z = 0`);
        else if (d > 0) moved++;
        assert.ok(a.get(slot.id)!.every(Number.isFinite));
      }
      assert.ok(moved >= enc.slots.filter((s) => !s.isClassifier).length * 0.9, `${file}: ${moved} body slots moved by the draw`);
      // The differentiable path (meta-training) predicts what the forward path does.
      const viaTape = tf.tidy(() => [...predictStoredTensors(grown, enc, za)].map(([id, t]) => [id, t.dataSync() as Float32Array] as const));
      for (const [id, v] of viaTape) assert.ok(maxAbsDiff(v, a.get(id)!) <= 1e-4 * Math.max(1, ...v.map(Math.abs)), `${file} ${id}`);
    }
    base.dispose();
    grown.dispose();
  });

  it('draws are reproducible per seed and differ between seeds', () => {
    const a = drawLatent(5, 8, 3), b = drawLatent(5, 8, 3), c = drawLatent(5, 8, 4);
    assert.deepEqual(a.values, b.values);
    assert.notDeepEqual(a.values, c.values);
    const mean = a.values.reduce((s, v) => s + v, 0) / a.values.length;
    assert.ok(Math.abs(mean) < 0.5);
  });

  it('Jensen–Shannon: 0 for the same outputs, symmetric, at most ln 2', () => {
    const x = tf.randomNormal([16, 10], 0, 3, 'float32', 1);
    const y = tf.randomNormal([16, 10], 0, 3, 'float32', 2);
    assert.ok(Math.abs(jensenShannon(x, x).dataSync()[0]!) < 1e-6);
    const [xy, yx] = [jensenShannon(x, y).dataSync()[0]!, jensenShannon(y, x).dataSync()[0]!];
    assert.ok(Math.abs(xy - yx) < 1e-6 && xy > 0.01);
    // Two confident networks that never agree: the bound.
    const onehot = (k: number) => tf.mul(tf.oneHot(tf.tensor1d([k, k], 'int32'), 10), 60);
    assert.ok(Math.abs(jensenShannon(onehot(1), onehot(2)).dataSync()[0]! - Math.LN2) < 1e-4);
    tf.dispose([x, y]);
  });

  it('meta-training with the diversity objective trains only the latent, raises the disagreement, and replays bit for bit', async () => {
    const data = loadFashionMnist({ dir: 'fixtures/fashion-mnist', split: 'train', limit: 256 });
    const checkpointPath = join(mkdtempSync(join(tmpdir(), 'ghn-latent-')), 'c.ghn');
    const run = { data, valEvery: 0, checkpointPath };
    const plain = await trainGhn({ ...run, recipe: { steps: 2, metaBatch: 2, images: 8, poolSize: 3, warmupSteps: 1, lr: 1e-3, ghn: LATENT } });
    const before = new Map([...plain.model.variables].map(([n, v]) => [n, v.dataSync().slice()]));
    const diverse = await trainGhn({
      ...run, recipe: { steps: 7, diversity: 2, trainVariables: ['latent.'] }, extend: { lr: 3e-2, warmupSteps: 1 }, resume: true, stopAtStep: 6,
    });
    for (const [name, v] of diverse.model.variables) {
      if (name === 'latent.proj') assert.notDeepEqual(v.dataSync(), before.get(name), 'the latent is trained');
      else assert.deepEqual(v.dataSync(), before.get(name), `${name} is not trained`);
    }
    const js = diverse.history.map((p) => p.disagreement!);
    assert.ok(js.every((d) => Number.isFinite(d) && d > 0), `disagreement logged: ${js}`);
    assert.ok(js[js.length - 1]! > js[0]!, `disagreement rises under weight 2 at lr 3e-2: ${js}`);
    assert.equal(diverse.recipe.tails![0]!.diversity, 2);
    assert.deepEqual(replaySegments(diverse.recipe).map((s) => [s.from, s.diversity, s.trainVariables]), [[0, undefined, undefined], [2, 2, ['latent.']]]);
    const replayPath = join(mkdtempSync(join(tmpdir(), 'ghn-latent-replay-')), 'r.ghn');
    // From the header, as `ghn train --replay` reads it: the run stopped at 6 of its schedule's 7 steps.
    const recorded = loadGhn(checkpointPath).header.recipe as typeof diverse.recipe;
    const replayed = await replayTraining(recorded, { data, valEvery: 0, checkpointPath: replayPath });
    assert.equal(replayed.stepsDone, 6);
    assert.equal(loadGhn(replayPath).hash, loadGhn(checkpointPath).hash, 'the replay is bit-identical');
    await assert.rejects(trainGhn({ data, valEvery: 0, workers: 2, recipe: { steps: 1, diversity: 1, ghn: LATENT } }), /one process/);
    [plain, diverse, replayed].forEach((r) => r.model.dispose());
  });
});
