import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { DatasetSplits, distill, ensembleFigures, evaluateEnsemble, softmaxRows } from '../src/api/ensemble.js';
import { predict } from '../src/api/predict.js';
import { predictSamples, SAMPLE_METADATA_KEY, SAMPLE_MIX, type PredictSamplesResult } from '../src/api/predict-samples.js';
import { FASHION_MNIST_DIR } from '../src/data/fashion-mnist.js';
import { resolveDataset } from '../src/data/sources.js';
import { initBackend } from '../src/engine/backend.js';
import * as tf from '../src/engine/tfjs-core.js';
import { crossEntropy, softCrossEntropy } from '../src/fine-tuning/loss.js';
import { evaluateWithOrt } from '../src/fine-tuning/evaluate.js';
import { buildGraph } from '../src/graph/index.js';
import { decodeModel, readModelFile } from '../src/onnx/index.js';
import { mixWithDefaultInit, sampleDefaultInit } from '../src/postprocess/default-init.js';
import { checkSameStructure, modelStructure } from '../src/predict/validate.js';
import { createRng } from '../src/util/random.js';
import { DEFAULT_GHN_PATH } from '../src/api/predict-options.js';
import { GhnModel } from '../src/ghn/model.js';
import { loadGhn, saveGhn } from '../src/ghn/serialize.js';

const CLI = path.resolve('src/cli/main.ts');
const FIXTURE = 'fixtures/cnn_small.preserve13.onnx';
const hasData = fs.existsSync(path.join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz')) || fs.existsSync(path.join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte'));
const skip = !hasData && 'Fashion-MNIST not installed';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-samples-'));

function ghn(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function metadata(file: string | Uint8Array): Map<string, string> {
  const model = typeof file === 'string' ? readModelFile(file) : decodeModel(file);
  return new Map((model.proto.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
}

function sameTensors(a: Map<string, Float32Array>, b: Map<string, Float32Array>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, x] of a) {
    const y = b.get(name);
    if (!y || y.length !== x.length || x.some((v, i) => v !== y[i])) return false;
  }
  return true;
}

/** Softmax outputs of an ONNX file on images, computed here with its own session. */
async function softmaxOf(file: string, images: Float32Array, count: number, shape: number[], classes: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(file);
  try {
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', images, [count, ...shape]) });
    return softmaxRows(out[session.outputNames[0]!]!.data as Float32Array, classes);
  } finally {
    await session.release();
  }
}

/** The shipped GHN without its latent input: samples then differ only by the default-init mix. */
function plainGhn(): string {
  const { model, header } = loadGhn(DEFAULT_GHN_PATH);
  const values = new Map([...model.variables].filter(([name]) => name !== 'latent.proj').map(([name, v]) => [name, v.dataSync() as Float32Array]));
  const { latentDim: _latent, ...config } = model.config;
  const plain = new GhnModel(config, values);
  const file = path.join(tmp, 'plain.ghn');
  saveGhn(file, plain, { recipe: header.recipe });
  [model, plain].forEach((m) => m.dispose());
  return file;
}

describe('ghn predict --samples', { skip }, () => {
  const dir = path.join(tmp, 'cnn');
  let written: PredictSamplesResult;
  let plain: string;
  before(async () => {
    await initBackend();
    written = await predictSamples(FIXTURE, 3, { outputDir: dir });
    plain = plainGhn();
  });

  it('writes <model>.<i>.onnx, each a valid model that runs in onnxruntime', async () => {
    assert.deepEqual(fs.readdirSync(dir).sort(), [0, 1, 2].map((i) => `cnn_small.preserve13.${i}.onnx`));
    const splits = new DatasetSplits(resolveDataset('fashion-mnist'), 256);
    for (const s of written.samples) {
      assert.ok(Buffer.from(s.onnx).equals(fs.readFileSync(s.output!)), 'the file is the returned bytes');
      const acc = await evaluateWithOrt(s.output!, splits.get('test', undefined));
      assert.ok(acc.accuracy > 0.3, `sample ${s.sample.index}: ${acc.accuracy}`);
      // Sample 0 ran in onnxruntime; the others were checked against its structure.
      if (s.sample.index === 0) assert.ok(s.report.validation?.finite && !s.report.sameStructure);
      else {
        assert.equal(s.report.validation, undefined);
        assert.equal(s.report.sameStructure?.reference, 'sample 0');
        assert.equal(s.report.sameStructure?.values, s.report.parameters);
      }
    }
  });

  it('the structure check refuses a NaN, a short tensor and another graph, and passes the sample as written', () => {
    const [first, second] = written.samples.map((s) => readModelFile(s.output!));
    const reference = modelStructure(first!.proto);
    assert.equal(checkSameStructure(second!.proto, reference, 'sample 0').values, written.samples[1]!.report.parameters);
    const floatTensor = () => {
      const model = decodeModel(fs.readFileSync(written.samples[1]!.output!));
      return { model, t: model.proto.graph!.initializer!.find((t) => t.dataType === 1 && (t.rawData?.length ?? 0) > 8)! };
    };
    const nan = floatTensor();
    const bytes = new Uint8Array(nan.t.rawData!);
    new DataView(bytes.buffer).setFloat32(4, NaN, true);
    nan.t.rawData = bytes;
    assert.throws(() => checkSameStructure(nan.model.proto, reference, 'sample 0'), /non-finite value at 1/);
    const inf = floatTensor();
    const infBytes = new Uint8Array(inf.t.rawData!);
    new DataView(infBytes.buffer).setFloat32(0, -Infinity, true);
    inf.t.rawData = infBytes;
    assert.throws(() => checkSameStructure(inf.model.proto, reference, 'sample 0'), /non-finite value at 0/);
    const short = floatTensor();
    short.t.rawData = short.t.rawData!.subarray(0, short.t.rawData!.length - 4);
    assert.throws(() => checkSameStructure(short.model.proto, reference, 'sample 0'), /holds \d+ values, not \d+/);
    const other = floatTensor();
    other.model.proto.graph!.node![0]!.name = 'renamed';
    assert.throws(() => checkSameStructure(other.model.proto, reference, 'sample 0'), /graph differs from sample 0's/);
    // Another sample's metadata (ghn.sample) is not part of the structure.
    assert.equal(modelStructure(second!.proto).fingerprint, reference.fingerprint);
  });

  it('keepTensors: false keeps only the report and the file (what the CLI uses), with the same files', async () => {
    const lean = path.join(tmp, 'lean');
    const r = await predictSamples(FIXTURE, 3, { outputDir: lean, keepTensors: false });
    for (const [i, s] of r.samples.entries()) {
      assert.equal(s.tensors.size, 0);
      assert.ok(fs.readFileSync(s.output!).equals(fs.readFileSync(written.samples[i]!.output!)), `sample ${i}`);
      assert.ok(Buffer.from(s.onnx).equals(fs.readFileSync(s.output!)));
    }
    await assert.rejects(predictSamples(FIXTURE, 1, { keepTensors: false }), /needs an outputDir/);
  });

  it('mixing on the worker thread gives the same samples as on the main thread (a GHN without a latent)', async () => {
    const [onWorker, onMain] = [await predictSamples(FIXTURE, 3, { mixWorker: true, ghn: plain }), await predictSamples(FIXTURE, 3, { mixWorker: false, ghn: plain })];
    for (const i of [0, 1, 2]) assert.ok(sameTensors(onWorker.samples[i]!.tensors, onMain.samples[i]!.tensors), `sample ${i}`);
    assert.ok(!sameTensors(onWorker.samples[1]!.tensors, onWorker.samples[2]!.tensors));
  });

  it('the one-loop uniform mix gives the bytes of a draw through createRng, value for value', () => {
    const graph = buildGraph(readModelFile(FIXTURE));
    const rng = createRng(3);
    const predicted = new Map([...graph.slots.values()].map((s) => [s.id, Float32Array.from({ length: s.elements }, () => rng() - 0.5)]));
    const t = 0.2, seed = 11;
    const mixed = mixWithDefaultInit(graph, predicted, t, seed);
    let k = 0, uniform = 0;
    for (const slot of graph.slots.values()) {
      const p = predicted.get(slot.id)!;
      // The general path: an array drawn from the slot's own stream, then mixed.
      const d = sampleDefaultInit(graph, slot, createRng((seed * 0x9e3779b1 + ++k * 0x85ebca6b) >>> 0));
      const expected = new Float32Array(p.length);
      for (let i = 0; i < p.length; i++) expected[i] = (1 - t) * p[i]! + t * d[i]!;
      assert.ok(Buffer.from(mixed.get(slot.id)!.buffer).equals(Buffer.from(expected.buffer)), slot.id);
      if (slot.role === 'conv.weight' || slot.role === 'linear.weight') uniform++;
    }
    assert.ok(uniform > 0);
  });

  it('carries its index and seed in ghn.sample and its share in ghn.options', async () => {
    // cnn_small's deterministic prediction is the GHN alone (t = 0): the shipped (latent) GHN's samples stay so.
    assert.equal(written.mix.t, 0);
    for (const [i, s] of written.samples.entries()) {
      const meta = metadata(s.output!);
      assert.deepEqual(JSON.parse(meta.get(SAMPLE_METADATA_KEY)!), { index: i, count: 3, seed: i, mix: 0, deterministicMix: 0, latent: true });
      assert.equal(JSON.parse(meta.get('ghn.options')!).mix, 0);
      assert.ok(meta.has('ghn.input_normalization'));
    }
    // Without a latent, the samples use SAMPLE_MIX so that they differ.
    const { samples } = await predictSamples(FIXTURE, 2, { ghn: plain });
    assert.deepEqual(samples.map((s) => JSON.parse(metadata(s.onnx).get(SAMPLE_METADATA_KEY)!)),
      [0, 1].map((i) => ({ index: i, count: 2, seed: i, mix: SAMPLE_MIX, deterministicMix: 0 })));
  });

  it('samples differ from each other; sample 0 of a latent GHN is the deterministic prediction', async () => {
    const [a, b, c] = written.samples.map((s) => s.tensors);
    assert.ok(!sameTensors(a!, b!) && !sameTensors(a!, c!) && !sameTensors(b!, c!));
    const deterministic = await predict(FIXTURE);
    assert.ok(sameTensors(deterministic.tensors, a!));
  });

  it('is reproducible for a seed, and another seed gives other samples', async () => {
    const again = await predictSamples(FIXTURE, 2);
    for (const i of [0, 1]) {
      assert.ok(sameTensors(again.samples[i]!.tensors, written.samples[i]!.tensors), `sample ${i}`);
      // The same file but for the count recorded in ghn.sample.
      const [m, n] = [metadata(again.samples[i]!.onnx), metadata(written.samples[i]!.output!)];
      assert.deepEqual(JSON.parse(m.get(SAMPLE_METADATA_KEY)!), { ...JSON.parse(n.get(SAMPLE_METADATA_KEY)!), count: 2 });
      m.delete(SAMPLE_METADATA_KEY);
      n.delete(SAMPLE_METADATA_KEY);
      assert.deepEqual(m, n);
    }
    const other = await predictSamples(FIXTURE, 2, { seed: 7 });
    assert.equal(other.samples[1]!.sample.seed, 8);
    assert.ok(!sameTensors(other.samples[1]!.tensors, written.samples[1]!.tensors));
  });

  it('where the deterministic prediction mixes, sample 0 is it (only ghn.sample added)', async () => {
    const deterministic = await predict('fixtures/mlp.preserve13.onnx', { mix: 0.5 });
    const { samples } = await predictSamples('fixtures/mlp.preserve13.onnx', 2, { mix: 0.5 });
    assert.ok(sameTensors(samples[0]!.tensors, deterministic.tensors));
    assert.ok(!sameTensors(samples[1]!.tensors, deterministic.tensors));
    const m0 = metadata(samples[0]!.onnx);
    assert.equal(JSON.parse(m0.get(SAMPLE_METADATA_KEY)!).mix, 0.5);
    m0.delete(SAMPLE_METADATA_KEY);
    assert.deepEqual(m0, metadata(deterministic.onnx));
  });

  it('a latent GHN: sample 0 is the deterministic prediction (z = 0), the others differ by their draws, reproducibly', async () => {
    // The shipped GHN grown with a latent input whose projection is large enough to matter.
    const { model, header } = loadGhn(DEFAULT_GHN_PATH);
    const values = new Map([...model.variables].map(([name, v]) => [name, v.dataSync() as Float32Array]));
    const dim = 4;
    values.set('latent.proj', Float32Array.from({ length: dim * model.config.hidden }, (_, i) => Math.sin(i * 1.7) * 0.5));
    const grown = new GhnModel({ ...model.config, latentDim: dim }, values);
    const file = path.join(tmp, 'latent.ghn');
    saveGhn(file, grown, { recipe: header.recipe, ...(header.dataset ? { dataset: header.dataset } : {}) });
    [model, grown].forEach((m) => m.dispose());
    const options = { ghn: file, mix: 0 } as const;
    const { samples } = await predictSamples(FIXTURE, 3, options);
    const deterministic = await predict(FIXTURE, { mix: 0 });
    assert.ok(sameTensors(samples[0]!.tensors, deterministic.tensors), 'z = 0 is the prediction of the GHN without a latent');
    assert.ok(!sameTensors(samples[1]!.tensors, samples[0]!.tensors) && !sameTensors(samples[2]!.tensors, samples[1]!.tensors));
    assert.deepEqual(samples.map((s) => [s.sample.latent, s.sample.mix]), [[true, 0], [true, 0], [true, 0]]);
    const again = await predictSamples(FIXTURE, 2, options);
    assert.ok(sameTensors(again.samples[1]!.tensors, samples[1]!.tensors), 'the draw is the seed\'s');
  });

  it('refuses a bad count in the API', async () => {
    for (const k of [0, -1, 1.5, NaN]) await assert.rejects(predictSamples(FIXTURE, k), /samples must be a positive integer/);
  });

  it('bad --samples and an output that is a file: one line, non-zero exit, nothing written', () => {
    const out = path.join(tmp, 'never');
    for (const k of ['0', '-2', 'abc', '1.5']) {
      const r = ghn('predict', FIXTURE, '--samples', k, '-o', out);
      assert.equal(r.code, 64, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /--samples must be an integer ≥ 1/);
      assert.ok(!fs.existsSync(out));
    }
    const file = path.join(tmp, 'a-file');
    fs.writeFileSync(file, 'x');
    const r = ghn('predict', FIXTURE, '--samples', '2', '-o', file);
    assert.equal(r.code, 64);
    assert.match(r.stderr, /^ghn: output directory .* is an existing file\n$/);
    assert.equal(fs.readFileSync(file, 'utf8'), 'x');
    assert.deepEqual(fs.readdirSync(tmp).filter((f) => f.includes('.tmp')), []);
  });

  it('ghn ensemble reports figures that match the members\' outputs computed here', async () => {
    const files = written.samples.map((s) => s.output!);
    const r = ghn('ensemble', ...files, '--test-limit', '500', '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    const test = new DatasetSplits(resolveDataset('fashion-mnist'), 500).get('test', undefined);
    const probs = await Promise.all(files.map((f) => softmaxOf(f, test.images, test.count, test.shape, test.classes)));
    const argmax = (p: Float32Array, i: number) => { let b = 0; for (let c = 1; c < 10; c++) if (p[i * 10 + c]! > p[i * 10 + b]!) b = c; return b; };
    let ensembleCorrect = 0;
    const pairs: number[] = [];
    for (let i = 0; i < test.count; i++) {
      const mean = new Float32Array(10);
      for (const p of probs) for (let c = 0; c < 10; c++) mean[c]! += p[i * 10 + c]! / probs.length;
      if (argmax(mean, 0) === test.labels[i]) ensembleCorrect++;
    }
    for (let a = 0; a < 3; a++) for (let b = a + 1; b < 3; b++) {
      let d = 0;
      for (let i = 0; i < test.count; i++) if (argmax(probs[a]!, i) !== argmax(probs[b]!, i)) d++;
      pairs.push(d / test.count);
    }
    assert.equal(report.testImages, 500);
    assert.ok(Math.abs(report.ensemble - ensembleCorrect / test.count) < 1e-9, `${report.ensemble} vs ${ensembleCorrect / test.count}`);
    assert.ok(Math.abs(report.disagreement - pairs.reduce((a, b) => a + b) / 3) < 1e-9);
    for (const [i, f] of files.entries()) assert.equal(report.members[i], (await evaluateWithOrt(f, test)).accuracy);
    assert.ok(report.disagreement > 0, 'the samples disagree somewhere');
  });

  it('ghn ensemble --finetune-steps fine-tunes each member first', () => {
    const files = written.samples.slice(0, 2).map((s) => s.output!);
    const plain = JSON.parse(ghn('ensemble', ...files, '--test-limit', '200', '--json').stdout);
    // The head refit off: after 2 steps it would give back a prediction's fitted head, near what it was.
    const r = ghn('ensemble', ...files, '--test-limit', '200', '--finetune-steps', '2', '--head-refit', '0', '--json');
    assert.equal(r.code, 0, r.stderr);
    const tuned = JSON.parse(r.stdout);
    assert.equal(tuned.finetuneSteps, 2);
    assert.equal(tuned.members.length, 2);
    assert.notDeepEqual(tuned.members, plain.members);
    const bad = ghn('ensemble', ...files, '--finetune-steps', '-1');
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /^ghn: --finetune-steps must be an integer ≥ 0, got "-1"\n$/);
  });

  it('ensembleFigures: one member is its own ensemble, with no disagreement', () => {
    const p = new Float32Array([0.9, 0.1, 0.2, 0.8, 0.6, 0.4]);
    assert.deepEqual(ensembleFigures([p], [0, 1, 1], 2), { members: [2 / 3], meanMember: 2 / 3, ensemble: 2 / 3, disagreement: 0 });
    const q = new Float32Array([0.1, 0.9, 0.2, 0.8, 0.3, 0.7]);
    const f = ensembleFigures([p, q], [0, 1, 1], 2);
    assert.equal(f.disagreement, 2 / 3);
    assert.equal(f.ensemble, 1); // mean rows [0.5,0.5]→0 (ties: the first), [0.2,0.8]→1, [0.45,0.55]→1
    assert.equal(f.meanMember, (2 / 3 + 2 / 3) / 2);
  });

  it('ghn ensemble and ghn distill refuse a missing file in one line', () => {
    for (const args of [['ensemble', path.join(tmp, 'nope.onnx')], ['distill', written.samples[0]!.output!, '--student', path.join(tmp, 'nope.onnx'), '-o', path.join(tmp, 'd.onnx')]]) {
      const r = ghn(...args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^ghn: no such file: .*nope\.onnx\n$/);
    }
    assert.ok(!fs.existsSync(path.join(tmp, 'd.onnx')));
  });

  it('ghn distill trains a few steps against the ensemble and writes a valid model', () => {
    const files = written.samples.map((s) => s.output!);
    const out = path.join(tmp, 'distilled.onnx');
    const r = ghn('distill', ...files, '--student', files[1]!, '-o', out, '--steps', '3', '--test-limit', '300', '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.steps, 3);
    assert.ok(Number.isFinite(report.finalLoss));
    const e = JSON.parse(ghn('ensemble', ...files, '--test-limit', '300', '--json').stdout);
    assert.equal(report.ensemble, e.ensemble);
    assert.equal(report.studentStart, e.members[1]);
    const model = readModelFile(out);
    assert.ok(model.proto.graph);
    assert.ok(metadata(out).has('ghn.input_normalization'));
  });
});

describe('softCrossEntropy', () => {
  it('equals the cross-entropy for one-hot targets and −Σq·log p otherwise', () => {
    const logits = tf.tensor2d([[1, 2, 0.5], [0, -1, 3]]);
    const labels = tf.tensor1d([1, 2], 'int32');
    const oneHot = tf.oneHot(labels as tf.Tensor1D, 3);
    assert.ok(Math.abs(softCrossEntropy(logits, oneHot).dataSync()[0]! - crossEntropy(logits, labels).dataSync()[0]!) < 1e-6);
    const q = [[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]];
    const l = [[1, 2, 0.5], [0, -1, 3]];
    let expected = 0;
    for (let r = 0; r < 2; r++) {
      const lse = Math.log(l[r]!.reduce((a, b) => a + Math.exp(b), 0));
      expected -= q[r]!.reduce((a, qi, c) => a + qi * (l[r]![c]! - lse), 0) / 2;
    }
    assert.ok(Math.abs(softCrossEntropy(logits, tf.tensor2d(q)).dataSync()[0]! - expected) < 1e-6);
    tf.dispose([logits, labels, oneHot]);
  });
});

describe('distill (API)', { skip }, () => {
  it('refuses teachers of another normalization than the student', async () => {
    await initBackend();
    const splits = new DatasetSplits(resolveDataset('fashion-mnist'), 100);
    // The raw export records no normalization; a prediction records the GHN's.
    const predicted = path.join(tmp, 'cnn', 'cnn_small.preserve13.0.onnx');
    await assert.rejects(distill([{ name: FIXTURE, model: FIXTURE }], { name: predicted, model: predicted }, { splits, steps: 1 }), /another input normalization/);
    const r = await evaluateEnsemble([{ name: FIXTURE, model: FIXTURE }], { splits });
    assert.equal(r.disagreement, 0);
    assert.equal(r.ensemble, r.members[0]);
  });
});
