import * as tf from '@tensorflow/tfjs-core';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadFashionMnist } from '../src/data/fashion-mnist.js';
import { initBackend } from '../src/engine/backend.js';
import { encodeGraph, DISTANCE_BUCKETS, FEATURE_DIM, type GraphEncoding } from '../src/ghn/encoding.js';
import { DEFAULT_GHN_CONFIG, GhnModel } from '../src/ghn/model.js';
import { targetVariance } from '../src/ghn/output-scale.js';
import { predictInitializerTensors, predictParameters, predictParametersAsync, predictSlotTensors } from '../src/ghn/predict-params.js';
import { loadGhn, saveGhn } from '../src/ghn/serialize.js';
import { scheduledLr, trainGhn, DEFAULT_RECIPE } from '../src/meta-training/train.js';
import { ArchitecturePool } from '../src/meta-training/arch-pool.js';
import { drawArchitectures } from '../src/meta-training/meta-batch.js';
import { replaySegments, replayTraining } from '../src/meta-training/replay.js';
import { decodeSlots, decodeSlotsPerSlot } from '../src/ghn/decoder.js';
import { buildGraph } from '../src/graph/build.js';
import { readModelFile } from '../src/onnx/index.js';
import { architectureSeed, sampleArchitecture } from '../src/space/sample.js';
import { untieSharedInitializers } from '../src/fine-tuning/untie.js';

const FIXTURES = readdirSync('fixtures').filter((f) => f.endsWith('.eval13.onnx')).map((f) => join('fixtures', f));

async function fixtureEncoding(file: string): Promise<GraphEncoding> {
  return encodeGraph(buildGraph(await readModelFile(file)));
}

function sampledEncoding(index: number): GraphEncoding {
  const arch = sampleArchitecture(architectureSeed('test', index));
  const model = { proto: arch.model };
  untieSharedInitializers(model);
  return encodeGraph(buildGraph(model));
}

function moments(values: Float32Array): { mean: number; variance: number } {
  let sum = 0, sq = 0;
  for (const v of values) { sum += v; sq += v * v; }
  const mean = sum / values.length;
  return { mean, variance: sq / values.length - mean * mean };
}

/** Every weight tensor within ±25% of its He variance; every slot predicted, finite, of its stored size. */
function checkInitScale(ghn: GhnModel, enc: GraphEncoding, label: string): number {
  const predicted = predictParameters(ghn, enc);
  let checked = 0;
  for (const slot of enc.slots) {
    const values = predicted.get(slot.id);
    assert.ok(values, `${label}: slot ${slot.id} not predicted`);
    assert.equal(values.length, slot.storedShape.reduce((a, b) => a * b, 1), `${label}: ${slot.id} size`);
    assert.ok(values.every(Number.isFinite), `${label}: ${slot.id} has non-finite values`);
    const target = targetVariance(slot);
    if (target === undefined || values.length < 2) continue;
    const { variance } = moments(values);
    assert.ok(Math.abs(variance / target - 1) <= 0.25, `${label}: ${slot.id} (${slot.role} [${slot.shape}]) variance ${variance} vs ${target}`);
    checked++;
  }
  return checked;
}

describe('ghn', () => {
  before(async () => { await initBackend(); });

  it('encodes a graph: unit feature pairs, symmetric distance buckets, classifier slots', async () => {
    const enc = await fixtureEncoding('fixtures/resnet_small.eval13.onnx');
    assert.equal(enc.features.length, enc.numOps * FEATURE_DIM);
    for (let i = 0; i < enc.features.length; i += 2) {
      assert.ok(Math.abs(enc.features[i]! ** 2 + enc.features[i + 1]! ** 2 - 1) < 1e-6);
    }
    const n = enc.numOps;
    const unreachable = DISTANCE_BUCKETS - 1;
    for (let i = 0; i < n; i++) {
      assert.equal(enc.pairBuckets[i * n + i], 0, 'a node is at distance 0 from itself both ways');
      for (let j = 0; j < n; j++) {
        const ij = enc.pairBuckets[i * n + j]!, ji = enc.pairBuckets[j * n + i]!;
        // (forward, backward) of i→j is (backward, forward) of j→i.
        assert.equal(Math.floor(ij / DISTANCE_BUCKETS), ji % DISTANCE_BUCKETS);
      }
    }
    // The input op reaches every op forward and none backward.
    const input = Array.from(enc.kindIds).indexOf(0);
    assert.ok(Array.from({ length: n }, (_, j) => enc.pairBuckets[input * n + j]! % DISTANCE_BUCKETS).slice(1).every((b) => b === unreachable || b === 0));
    const classifier = enc.slots.filter((s) => s.isClassifier);
    assert.deepEqual(classifier.map((s) => s.role).sort(), ['linear.bias', 'linear.weight']);
    assert.deepEqual(classifier.find((s) => s.role === 'linear.weight')!.shape, [10, 64]);
  });

  it('untrained GHN predicts He-variance weights for 100 sampled architectures (3 GHN seeds)', () => {
    const ghns = [1, 2, 3].map((seed) => new GhnModel({ ...DEFAULT_GHN_CONFIG, seed }));
    let checked = 0;
    for (let i = 0; i < 100; i++) {
      let enc: GraphEncoding;
      try {
        enc = sampledEncoding(i);
      } catch {
        continue; // an architecture the importer rejects is the graph tests' concern
      }
      checked += checkInitScale(ghns[i % 3]!, enc, `test arch ${i}`);
    }
    assert.ok(checked > 500, `only ${checked} weight tensors checked`);
    ghns.forEach((g) => g.dispose());
  });

  it('untrained GHN predicts He-variance weights for every fixture', async () => {
    const ghn = new GhnModel({ ...DEFAULT_GHN_CONFIG, seed: 7 });
    for (const file of FIXTURES) checkInitScale(ghn, await fixtureEncoding(file), file);
    ghn.dispose();
  });

  it('vector roles start at their defaults plus a small residual', async () => {
    const ghn = new GhnModel(DEFAULT_GHN_CONFIG);
    const enc = await fixtureEncoding('fixtures/convnext_small.eval13.onnx');
    const predicted = predictParameters(ghn, enc);
    const byRole = (role: string) => enc.slots.filter((s) => s.role === role).map((s) => moments(predicted.get(s.id)!));
    for (const m of byRole('norm.scale')) assert.ok(Math.abs(m.mean - 1) < 0.1 && m.variance < 0.05 && m.variance > 1e-5);
    for (const m of byRole('layer_scale')) assert.ok(Math.abs(m.mean - 0.1) < 0.03 && m.variance > 1e-7);
    for (const m of byRole('conv.bias')) assert.ok(Math.abs(m.mean) < 0.05 && m.variance < 0.01);
    ghn.dispose();
  });

  it('stored layout: transposed slots hold the transpose of the canonical prediction', async () => {
    const ghn = new GhnModel(DEFAULT_GHN_CONFIG);
    const enc = await fixtureEncoding('fixtures/vit_small.eval13.onnx');
    const slot = enc.slots.find((s) => s.layout === 'transposed')!;
    assert.ok(slot, 'vit_small has MatMul weights stored [in, out]');
    const stored = predictParameters(ghn, enc).get(slot.id)!;
    const canonical = tf.tidy(() => predictSlotTensors(ghn, enc).get(slot.id)!.dataSync());
    const [out, inn] = slot.shape as [number, number];
    assert.deepEqual([...slot.storedShape], [inn, out]);
    for (const [o, i] of [[0, 0], [1, 2], [out - 1, inn - 1]] as const) {
      assert.ok(Math.abs(stored[i * out + o]! - canonical[o * inn + i]!) < 1e-6);
    }
    ghn.dispose();
  });

  it('differentiable prediction: every GHN variable receives a finite gradient through the executor', async () => {
    const { GraphExecutor } = await import('../src/engine/executor.js');
    const model = await readModelFile('fixtures/mobilenet_small.eval13.onnx');
    const enc = encodeGraph(buildGraph(model));
    const ghn = new GhnModel(DEFAULT_GHN_CONFIG);
    const executor = new GraphExecutor(model);
    const x = tf.randomNormal([4, 1, 28, 28], 0, 1, 'float32', 3);
    const { value, grads } = tf.variableGrads(() => {
      const logits = executor.run(x, { params: predictInitializerTensors(ghn, enc), training: true }).outputs[0]!;
      return tf.mean(tf.square(logits)) as tf.Scalar;
    }, [...ghn.variables.values()]);
    assert.ok(Number.isFinite(value.dataSync()[0]!));
    const norms = Object.entries(grads).map(([name, g]) => [name, Math.sqrt(tf.sum(tf.square(g)).dataSync()[0]!)] as const);
    assert.equal(norms.length, ghn.variables.size);
    for (const [name, norm] of norms) assert.ok(Number.isFinite(norm), `${name} gradient not finite`);
    assert.ok(norms.filter(([, n]) => n > 0).length > ghn.variables.size * 0.8, 'most variables get a gradient');
    executor.dispose();
    ghn.dispose();
  });

  for (const channelProvenance of [false, true]) it(`batched decoder equals the per-slot reference on every fixture (canonical and stored layout${channelProvenance ? ', channel provenance' : ''})`, async () => {
    const ghn = new GhnModel({ ...DEFAULT_GHN_CONFIG, seed: 11, classifierMaps: true, channelProvenance });
    // Give the zero-initialized gain head and classifier maps values, so they are exercised too.
    for (const [name, v] of ghn.variables) {
      if (name === 'decoder.gain' || name.endsWith('.classifier')) v.assign(tf.randomNormal(v.shape, 0, name === 'decoder.gain' ? 0.3 : 0.3 / Math.sqrt(v.shape[0]!), 'float32', 4));
    }
    for (const file of FIXTURES) {
      const enc = await fixtureEncoding(file);
      tf.tidy(() => {
        const nodes = ghn.embedNodes(enc);
        const batched = decodeSlots(ghn, enc, nodes), stored = decodeSlots(ghn, enc, nodes, { stored: true });
        const reference = decodeSlotsPerSlot(ghn, enc, nodes);
        for (const slot of enc.slots) {
          const a = batched.get(slot.id)!, b = reference.get(slot.id)!;
          assert.deepEqual(a.shape, [...slot.shape], `${file}: ${slot.id} shape`);
          assert.deepEqual(stored.get(slot.id)!.shape, [...slot.storedShape], `${file}: ${slot.id} stored shape`);
          const scale = tf.max(tf.abs(b)).dataSync()[0]! + 1e-12;
          assert.ok(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]! / scale < 1e-4, `${file}: ${slot.id} differs from the reference`);
        }
      });
    }
    ghn.dispose();
  });

  for (const channelProvenance of [false, true]) it(`predictParametersAsync (batched factors, onnxruntime products) equals predictParameters on every fixture${channelProvenance ? ' (channel provenance)' : ''}`, async () => {
    const ghn = new GhnModel({ ...DEFAULT_GHN_CONFIG, seed: 12, classifierMaps: true, channelProvenance });
    for (const [name, v] of ghn.variables) {
      if (name === 'decoder.gain' || name.endsWith('.classifier')) v.assign(tf.randomNormal(v.shape, 0, name === 'decoder.gain' ? 0.3 : 0.3 / Math.sqrt(v.shape[0]!), 'float32', 5));
    }
    for (const file of FIXTURES) {
      const enc = await fixtureEncoding(file);
      const reference = predictParameters(ghn, enc), fast = await predictParametersAsync(ghn, enc);
      assert.deepEqual([...fast.keys()], [...reference.keys()], `${file}: slots`);
      for (const [id, values] of reference) {
        const got = fast.get(id)!;
        assert.equal(got.length, values.length, `${file}: ${id} length`);
        let scale = 1e-12, worst = 0;
        for (let i = 0; i < values.length; i++) {
          scale = Math.max(scale, Math.abs(values[i]!));
          worst = Math.max(worst, Math.abs(values[i]! - got[i]!));
        }
        assert.ok(worst / scale < 1e-5, `${file}: ${id} differs by ${worst / scale}`);
      }
    }
    ghn.dispose();
  });

  it('classifier maps grown onto a GHN keep its predictions exactly, and then train the classifier only', async () => {
    const base = new GhnModel(DEFAULT_GHN_CONFIG);
    const values = new Map([...base.variables].map(([name, v]) => [name, v.dataSync() as Float32Array]));
    const grown = new GhnModel({ ...DEFAULT_GHN_CONFIG, classifierMaps: true }, values);
    for (const file of ['fixtures/resnet_small.eval13.onnx', 'fixtures/vit_small.preserve13.onnx']) {
      const enc = await fixtureEncoding(file);
      const a = predictParameters(base, enc), b = predictParameters(grown, enc);
      for (const [id, v] of a) assert.deepEqual(b.get(id), v, `${file} ${id}`);
      // A change in a classifier map moves the classifier's slots and nothing else.
      const map = grown.variables.get('decoder.rows.classifier')!;
      map.assign(tf.randomNormal(map.shape, 0, 0.1, 'float32', 3));
      const c = predictParameters(grown, enc);
      const classifier = new Set(enc.slots.filter((s) => s.isClassifier).map((s) => s.id));
      assert.ok(classifier.size > 0);
      for (const [id, v] of a) {
        if (classifier.has(id) && enc.slots.find((s) => s.id === id)!.role === 'linear.weight') assert.notDeepEqual(c.get(id), v, id);
        if (!classifier.has(id)) assert.deepEqual(c.get(id), v, id);
      }
      map.assign(tf.zerosLike(map));
    }
    base.dispose();
    grown.dispose();
  });

  it('save/load round-trips exactly, with a stable sha256 id, in a few MB', async () => {
    const ghn = new GhnModel({ ...DEFAULT_GHN_CONFIG, seed: 5 });
    const dir = mkdtempSync(join(tmpdir(), 'ghn-'));
    const path = join(dir, 'm.ghn');
    const hash = saveGhn(path, ghn, { metrics: { note: 'test' } });
    assert.match(hash, /^[0-9a-f]{64}$/);
    assert.ok(statSync(path).size < 5e6);
    const loaded = loadGhn(path);
    assert.equal(loaded.hash, hash);
    assert.deepEqual(loaded.header.metrics, { note: 'test' });
    const enc = await fixtureEncoding('fixtures/cnn_small.eval13.onnx');
    const a = predictParameters(ghn, enc), b = predictParameters(loaded.model, enc);
    for (const [id, values] of a) assert.deepEqual(b.get(id), values);
    ghn.dispose();
    loaded.model.dispose();
  });

  it('the training pool keeps the most recently used architectures and rebuilds evicted ones identically', () => {
    const pool = new ArchitecturePool('train', 1_000_000, 0, 2);
    const first = pool.get(0)!;
    assert.equal(pool.get(0), first, 'cached');
    const second = pool.get(1)!;
    pool.get(0); // 0 is now the most recently used, so 2 evicts 1
    pool.get(2);
    assert.equal(pool.get(0), first);
    const rebuilt = pool.get(1)!;
    assert.notEqual(rebuilt, second, 'evicted and rebuilt');
    assert.equal(rebuilt.id, second.id);
    assert.deepEqual(rebuilt.encoding.slots.map((s) => s.shape), second.encoding.slots.map((s) => s.shape));
    pool.dispose();
  });

  it('an architecture marked unusable is never drawn again', () => {
    const pool = new ArchitecturePool('train', 1_000_000, 0, 8, false);
    const before = drawArchitectures(pool, 3, 1, 5);
    pool.markUnusable(before[1]!);
    const after = drawArchitectures(pool, 3, 1, 5);
    assert.equal(after.length, 3);
    assert.ok(!after.includes(before[1]!));
    assert.deepEqual([after[0], after[1]], [before[0], before[2]], 'the other draws keep their order');
    pool.dispose();
  });

  it('meta-training is deterministic for a seed, with finite losses and gradients', async () => {
    const data = loadFashionMnist({ dir: 'fixtures/fashion-mnist', split: 'train', limit: 256 });
    const recipe = { steps: 2, metaBatch: 2, images: 8, poolSize: 2, warmupSteps: 1, lr: 1e-3 };
    const a = await trainGhn({ recipe, data, valEvery: 0 });
    const b = await trainGhn({ recipe, data, valEvery: 0 });
    assert.deepEqual(a.history.map((p) => p.loss), b.history.map((p) => p.loss));
    assert.ok(a.history.every((p) => Number.isFinite(p.loss) && p.gradNorm > 0));
    a.model.dispose();
    b.model.dispose();
  });

  it('data-parallel meta-training (this process and children) gives the serial run bit for bit', async () => {
    const data = loadFashionMnist({ dir: 'fixtures/fashion-mnist', split: 'train', limit: 256 });
    const recipe = { steps: 3, metaBatch: 3, images: 8, poolSize: 4, warmupSteps: 1, lr: 1e-3 };
    const serial = await trainGhn({ recipe, data, valEvery: 0 });
    const two = await trainGhn({ recipe, data, valEvery: 0, workers: 2 });
    const three = await trainGhn({ recipe, data, valEvery: 0, workers: 3 });
    for (const run of [two, three]) {
      assert.deepEqual(run.history.map((p) => [p.loss, p.gradNorm, p.acc]), serial.history.map((p) => [p.loss, p.gradNorm, p.acc]));
      for (const [name, v] of serial.model.variables) assert.deepEqual(run.model.variables.get(name)!.dataSync(), v.dataSync(), name);
    }
    [serial, two, three].forEach((r) => r.model.dispose());
  });

  it('a run resumed from its checkpoint continues exactly as an uninterrupted one', async () => {
    const data = loadFashionMnist({ dir: 'fixtures/fashion-mnist', split: 'train', limit: 256 });
    const recipe = { steps: 3, metaBatch: 2, images: 8, poolSize: 2, warmupSteps: 1, lr: 1e-3 };
    const straight = await trainGhn({ recipe, data, valEvery: 0 });
    const checkpointPath = join(mkdtempSync(join(tmpdir(), 'ghn-resume-')), 'c.ghn');
    const first = await trainGhn({ recipe, data, valEvery: 0, checkpointPath, checkpointEvery: 1, maxMinutes: 0 });
    assert.equal(first.stepsDone, 1, 'maxMinutes 0 stops after one step');
    const resumed = await trainGhn({ recipe, data, valEvery: 0, checkpointPath, resume: true });
    assert.equal(resumed.stepsDone, 3);
    assert.deepEqual([...first.history, ...resumed.history].map((p) => p.loss), straight.history.map((p) => p.loss));
    [straight, first, resumed].forEach((r) => r.model.dispose());
  });

  it('a recorded chain of extensions, one cut short, replays from nothing to the same weights', async () => {
    const data = loadFashionMnist({ dir: 'fixtures/fashion-mnist', split: 'train', limit: 256 });
    const checkpointPath = join(mkdtempSync(join(tmpdir(), 'ghn-chain-')), 'c.ghn');
    const run = { data, valEvery: 0, checkpointPath };
    // Base 0→2; a tail to 6 stopped at 4 (as a run out of time would); a continuation from there to 7.
    const chain = [
      await trainGhn({ ...run, recipe: { steps: 2, metaBatch: 1, images: 8, poolSize: 2, warmupSteps: 1, lr: 1e-3 } }),
      await trainGhn({ ...run, recipe: { steps: 6, images: 4, poolSize: 3 }, extend: { lr: 5e-4, warmupSteps: 1 }, resume: true, stopAtStep: 4 }),
      await trainGhn({ ...run, recipe: { steps: 7 }, resume: true }),
    ];
    const recorded = chain[2]!.recipe;
    assert.deepEqual(replaySegments(recorded).map((s) => [s.from, s.stopAt, s.scheduleEnd, s.metaBatch, s.images, s.poolSize]),
      [[0, 2, 2, 1, 8, 2], [2, 4, 6, 1, 4, 3], [4, 7, 7, 1, 4, 3]], 'segments, the cut-short one\'s schedule end recovered from the lr it left');
    const replayPath = join(mkdtempSync(join(tmpdir(), 'ghn-replay-')), 'r.ghn');
    const replayed = await replayTraining(recorded, { data, valEvery: 0, checkpointPath: replayPath });
    assert.equal(replayed.stepsDone, 7);
    assert.deepEqual(replayed.recipe, recorded, 'the same recipe, tails included');
    const [original, again] = [loadGhn(checkpointPath), loadGhn(replayPath)];
    for (const [name, v] of original.model.variables) assert.deepEqual(again.model.variables.get(name)!.dataSync(), v.dataSync(), name);
    assert.equal(again.hash, original.hash, 'bit-identical file');
    [...chain, replayed].forEach((r) => r.model.dispose());
    [original, again].forEach((l) => l.model.dispose());
  });

  it('a run continued from a GHN without a dataset record (the shipped one) keeps none, so it still serves every model', async () => {
    const data = loadFashionMnist({ dir: 'fixtures/fashion-mnist', split: 'train', limit: 256 });
    const recipe = { steps: 1, metaBatch: 1, images: 8, poolSize: 2, warmupSteps: 1, lr: 1e-3 };
    const checkpointPath = join(mkdtempSync(join(tmpdir(), 'ghn-legacy-')), 'c.ghn');
    const first = await trainGhn({ recipe, data, valEvery: 0, checkpointPath });
    assert.equal(first.recordsDataset, true);
    assert.equal(loadGhn(checkpointPath).header.dataset?.name, 'fashion-mnist');
    // As the shipped GHN was written: no record.
    saveGhn(checkpointPath, first.model, { recipe: { ...first.recipe, stepsDone: 1 } });
    const continued = await trainGhn({ recipe: { steps: 2 }, data, valEvery: 0, checkpointPath, resume: true });
    assert.equal(continued.stepsDone, 2);
    assert.equal(continued.recordsDataset, false);
    assert.equal(loadGhn(checkpointPath).header.dataset, undefined);
    [first, continued].forEach((r) => r.model.dispose());
  });

  it('a resume with more steps than the saved schedule continues on a new cosine tail', async () => {
    const data = loadFashionMnist({ dir: 'fixtures/fashion-mnist', split: 'train', limit: 256 });
    const recipe = { steps: 1, metaBatch: 1, images: 8, poolSize: 2, warmupSteps: 1, lr: 1e-3 };
    const checkpointPath = join(mkdtempSync(join(tmpdir(), 'ghn-extend-')), 'c.ghn');
    const first = await trainGhn({ recipe, data, valEvery: 0, checkpointPath });
    assert.equal(first.stepsDone, 1);
    const extended = await trainGhn({ recipe: { steps: 4, images: 4 }, extend: { lr: 5e-4, warmupSteps: 1 }, data, valEvery: 0, checkpointPath, resume: true });
    assert.equal(extended.stepsDone, 4);
    assert.deepEqual(extended.recipe.tails, [{ from: 1, lr: 5e-4, warmupSteps: 1, metaBatch: 1, images: 4, poolSize: 2 }]);
    assert.deepEqual(extended.history.map((p) => p.step), [2, 3, 4]);
    assert.equal(extended.history[0]!.lr, 5e-4, 'warm-up of one step reaches the tail peak');
    assert.ok(extended.history[2]!.lr < 5e-4 && extended.history[2]!.lr > 0, 'then the cosine decays');
    assert.equal(loadGhn(checkpointPath).header.recipe!.stepsDone, 4);
    // Before the tail, the schedule is the original one.
    assert.equal(scheduledLr(extended.recipe, 0), scheduledLr({ ...DEFAULT_RECIPE, ...recipe }, 0));
    [first, extended].forEach((r) => r.model.dispose());
  });
});
