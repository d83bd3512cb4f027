import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { predict } from '../src/api/predict.js';
import { initBackend } from '../src/engine/backend.js';
import { DEFAULT_GHN_CONFIG, GhnModel } from '../src/ghn/model.js';
import { saveGhn } from '../src/ghn/serialize.js';
import { buildGraph } from '../src/graph/index.js';
import { decodeModel, readFloat32, readModelFile } from '../src/onnx/index.js';

// An untrained GHN: the pipeline must already give every tensor a sane, He-scaled value.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-predict-'));
const GHN_FILE = path.join(tmp, 'untrained.ghn');
const MODELS = ['cnn_small', 'resnet_small', 'vit_small', 'mobilenet_small', 'convnext_small', 'densenet_small', 'inception_small', 'mlp', 'misc_small', 'vit_handmade'];

before(async () => {
  await initBackend();
  const ghn = new GhnModel(DEFAULT_GHN_CONFIG);
  saveGhn(GHN_FILE, ghn);
  ghn.dispose();
});

function sameBytes(a?: Uint8Array, b?: Uint8Array): boolean {
  return Buffer.from(a ?? []).equals(Buffer.from(b ?? []));
}

describe('predict on every fixture', () => {
  for (const model of MODELS) {
    for (const variant of ['eval13', 'preserve13']) {
      it(`${model}.${variant}: every parameter changed, constants untouched, sane outputs`, async () => {
        const file = `fixtures/${model}.${variant}.onnx`;
        const original = readModelFile(file);
        const graph = buildGraph(original);
        const { onnx, report, tensors } = await predict(file, { ghn: GHN_FILE, seed: 1 });
        assert.equal(report.parameters, graph.parameterCount);
        assert.equal(report.tensors, graph.slots.size);
        const written = decodeModel(onnx);
        const byName = new Map(written.proto.graph!.initializer!.map((t) => [t.name!, t]));
        for (const [name, values] of tensors) {
          assert.deepEqual(readFloat32(byName.get(name)!, written), values, name);
        }
        const paramInits = new Set([...graph.slots.values()].map((s) => s.initializer));
        assert.equal(tensors.size, graph.slots.size, 'one written tensor per slot');
        const changedNames = [...tensors.keys()];
        for (const name of changedNames) {
          const b = original.proto.graph!.initializer!.find((t) => t.name === name);
          if (b) assert.ok(!sameBytes(b.rawData, byName.get(name)!.rawData), `${name} changed`);
        }
        // BatchNorm running statistics are estimated (calibration); every other non-parameter is kept.
        const statistics = runningStatisticSources(original);
        for (const t of original.proto.graph!.initializer!) {
          if (paramInits.has(t.name!) || statistics.has(t.name!)) continue;
          assert.ok(sameBytes(byName.get(t.name!)!.rawData, t.rawData), `non-parameter ${t.name} untouched`);
        }
        for (const bn of written.proto.graph!.node!.filter((n) => n.opType === 'BatchNormalization' && n.output!.length === 1)) {
          const variance = readFloat32(byName.get(bn.input![4]!)!, written);
          assert.ok(variance.every((v) => Number.isFinite(v) && v >= 0), `${bn.input![4]} finite, ≥ 0`);
          assert.ok(variance.some((v) => v !== 1), `${bn.input![4]} estimated, not the fresh 1s`);
        }
        assert.ok(report.validation?.finite);
        const std = report.validation!.outputStd;
        assert.ok(std > 0.01 && std < 100, `logit std ${std}`);
        const metadata = new Map(written.proto.metadataProps!.map((p) => [p.key, p.value]));
        assert.equal(metadata.get('ghn.model_sha256')?.length, 64);
        assert.ok(metadata.get('ghn.input_normalization'));
      });
    }
  }

  it('is reproducible for a seed, and seeds differ when there is post-processing noise', async () => {
    const file = 'fixtures/resnet_small.eval13.onnx';
    const noise = 3e-5;
    const a = await predict(file, { ghn: GHN_FILE, seed: 3, noise, validate: false });
    const b = await predict(file, { ghn: GHN_FILE, seed: 3, noise, validate: false });
    const c = await predict(file, { ghn: GHN_FILE, seed: 4, noise, validate: false });
    assert.ok(sameBytes(a.onnx, b.onnx));
    assert.ok(!sameBytes(a.onnx, c.onnx));
  });
});

/** Initializers that BatchNorm nodes read as running statistics, directly or through an Identity. */
function runningStatisticSources(model: ReturnType<typeof readModelFile>): Set<string> {
  const nodes = model.proto.graph!.node!;
  const identity = new Map(nodes.filter((n) => n.opType === 'Identity').map((n) => [n.output![0]!, n.input![0]!]));
  const names = new Set<string>();
  for (const bn of nodes.filter((n) => n.opType === 'BatchNormalization')) {
    for (const name of [bn.input![3]!, bn.input![4]!]) names.add(identity.get(name) ?? name);
  }
  return names;
}

describe('predict on a model with external data', () => {
  const file = 'fixtures/external/resnet_small.preserve13.onnx';

  it('writes the same prediction as for the inline export, its data file checked by onnxruntime from the path', async () => {
    const out = path.join(fs.mkdtempSync(path.join(tmp, 'ext-')), 'predicted.onnx');
    const { report, tensors } = await predict(file, { ghn: GHN_FILE, seed: 2, output: out });
    assert.equal(report.dataFile, `${out}.data`);
    assert.ok(report.validation?.finite);
    const inline = await predict('fixtures/resnet_small.preserve13.onnx', { ghn: GHN_FILE, seed: 2, validate: false });
    assert.deepEqual([...tensors.keys()].sort(), [...inline.tensors.keys()].sort());
    const written = readModelFile(out);
    const byName = new Map(written.proto.graph!.initializer!.map((t) => [t.name!, t]));
    for (const [name, values] of tensors) {
      assert.deepEqual(values, inline.tensors.get(name), `${name}: same prediction as inline`);
      assert.deepEqual(readFloat32(byName.get(name)!, written), values, `${name} as written`);
    }
    const original = readModelFile(file);
    const params = new Set([...buildGraph(original).slots.values()].map((s) => s.initializer));
    for (const t of original.proto.graph!.initializer!) {
      if (params.has(t.name!)) continue;
      assert.deepEqual(readFloat32(byName.get(t.name!)!, written), readFloat32(t, original), `non-parameter ${t.name} untouched`);
    }
  });

  it('needs an output path: a clear error, nothing written', async () => {
    await assert.rejects(predict(file, { ghn: GHN_FILE }), /keeps tensors in external data files: give an output path/);
  });
});

describe('predicted initializers load into the PyTorch module by name', () => {
  const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
  for (const model of ['resnet_small', 'vit_small', 'mobilenet_small', 'convnext_small', 'misc_small']) {
    it(`${model}.preserve13`, { skip: !hasTorch && 'PyTorch not installed' }, async () => {
      const { onnx } = await predict(`fixtures/${model}.preserve13.onnx`, { ghn: GHN_FILE, validate: false });
      const out = path.join(tmp, `${model}.ghn.onnx`);
      fs.writeFileSync(out, onnx);
      const r = spawnSync('/usr/bin/python3', ['scripts/load_predicted.py', model, out], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr + r.stdout);
      const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
      assert.deepEqual(result.missing, []);
      assert.ok(result.loaded > 0);
      assert.equal(result.loaded, result.parameters);
    });
  }
});
