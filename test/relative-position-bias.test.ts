/**
 * Relative position bias tables of real torchvision Swin and MaxViT exports (tiny models exported by
 * PyTorch 1.13 into a temp dir by test/relative-position-models.py): without constant folding each
 * table is a slot of its own role, predicted by the GHN at position-embedding scale, the written model
 * runs in onnxruntime, and the consumed-parameter audit finds nothing left unpredicted (and does find
 * a table whose original values are put back). With constant folding the tables are gone: the folded
 * [1, heads, N, N] biases are position embeddings.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../src/api/inspect.js';
import { DEFAULT_GHN_PATH, predict } from '../src/api/predict.js';
import { consumedParameters, distinctInitializers, unpredictedParameters, withoutSlots } from '../src/graph/consumed-parameters.js';
import { buildGraph, type ComputationGraph } from '../src/graph/index.js';
import { encodeGraph } from '../src/ghn/encoding.js';
import { predictParameters } from '../src/ghn/predict-params.js';
import { loadGhn } from '../src/ghn/serialize.js';
import { decodeModel, readFloat32, readTensorData, type OnnxModel } from '../src/onnx/index.js';
import { PARAM_ROLES } from '../src/graph/vocabulary.js';

const ROOT = path.resolve(import.meta.dirname, '..');
let dir = '';
let expected: Record<string, { tables: Record<string, number[]>; params: number }>;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-rpb-'));
  execFileSync('/usr/bin/python3', [path.join(ROOT, 'test/relative-position-models.py'), dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  expected = JSON.parse(fs.readFileSync(path.join(dir, 'tables.json'), 'utf8'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const file = (model: string, variant: string): string => path.join(dir, `${model}.${variant}.onnx`);
const tableSlots = (g: ComputationGraph) => [...g.slots.values()].filter((s) => s.role === 'relative_position_bias');

function stats(v: Float32Array): { mean: number; std: number; finite: boolean } {
  let mean = 0, finite = true;
  for (const x of v) { mean += x; if (!Number.isFinite(x)) finite = false; }
  mean /= v.length;
  let variance = 0;
  for (const x of v) variance += (x - mean) ** 2;
  return { mean, std: Math.sqrt(variance / v.length), finite };
}

function initializer(model: OnnxModel, name: string) {
  const t = (model.proto.graph?.initializer ?? []).find((i) => i.name === name);
  assert.ok(t, `initializer ${name}`);
  return t;
}

async function runsInOrt(bytes: Uint8Array): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const x = new Float32Array(2 * 3 * 32 * 32).map((_, i) => Math.sin(i * 0.37));
    const out = await session.run({ input: new ort.Tensor('float32', x, [2, 3, 32, 32]) });
    return out.logits!.data as Float32Array;
  } finally {
    await session.release();
  }
}

for (const model of ['swin', 'maxvit']) {
  describe(`${model}: tables kept (no constant folding)`, () => {
    for (const variant of ['preserve13nofold', 'eval13nofold']) {
      test(`${variant}: every table is a relative_position_bias slot of the module's shape, on the Add into the logits`, () => {
        const g = buildGraph(loadModel(file(model, variant)));
        const slots = tableSlots(g);
        const want = expected[model]!.tables;
        assert.equal(slots.length, Object.keys(want).length);
        for (const s of slots) {
          assert.deepEqual(s.shape, want[s.initializer], s.initializer);
          assert.equal(s.layout, 'canonical');
          const op = g.ops.find((o) => o.id === s.op)!;
          assert.equal(op.kind, 'pos_embedding');
          assert.equal(op.onnxOps[0], 'Add');
          assert.ok(op.onnxOps.includes('Gather'));
          assert.equal(g.model.proto.graph!.node![s.consumer.node]!.opType, 'Gather');
        }
        assert.deepEqual(g.unsupported, []);
        if (variant.startsWith('preserve')) assert.equal(summaryElements(g), expected[model]!.params);
      });
    }

    test('predict: every table changes, finite, std 0.005–0.1, as the GHN decodes it; the model runs in onnxruntime', async () => {
      const original = loadModel(file(model, 'preserve13nofold'));
      const g = buildGraph(original);
      const { onnx, initializerOf } = await predict(original);
      const written = decodeModel(onnx);
      // The GHN's own output for the graph: the written tables are its prediction, not a default rule.
      const ghn = loadGhn(DEFAULT_GHN_PATH).model;
      const direct = predictParameters(ghn, encodeGraph(g));
      const stds: number[] = [];
      for (const s of tableSlots(g)) {
        const before = readFloat32(initializer(original, s.initializer), original);
        const after = readFloat32(initializer(written, initializerOf.get(s.id)!), written);
        assert.equal(after.length, before.length);
        assert.ok(after.some((v, i) => v !== before[i]), `${s.initializer} changed`);
        const { std, finite } = stats(after);
        assert.ok(finite, s.initializer);
        assert.ok(std > 0.005 && std < 0.1, `${s.initializer} std ${std}`);
        const own = direct.get(s.id)!;
        for (let i = 0; i < after.length; i++) assert.ok(Math.abs(after[i]! - own[i]!) < 1e-6, `${s.initializer}[${i}] is the GHN's value`);
        stds.push(std);
      }
      // Not one constant: the tables differ from each other.
      assert.ok(new Set(stds.map((v) => v.toFixed(6))).size > 1, `stds ${stds}`);
      const logits = await runsInOrt(onnx);
      assert.ok(logits.every(Number.isFinite));
      assert.ok(stats(logits).std > 1e-4, 'logits vary');
    });

    test('consumed-parameter audit: 0 unpredicted after predict, every table before, 1 when one table is put back', async () => {
      const original = loadModel(file(model, 'preserve13nofold'));
      const g = buildGraph(original);
      const tables = tableSlots(g).map((s) => s.initializer);
      const consumed = consumedParameters(original);
      for (const t of tables) assert.ok(consumed.some((c) => c.initializer === t && c.opType === 'Gather' && c.input === 0), t);
      assert.deepEqual(withoutSlots(consumed, g.slots.values()), [], 'every consumed parameter is a slot');

      const { onnx, initializerOf } = await predict(original, { validate: false });
      const written = decodeModel(onnx);
      assert.deepEqual(unpredictedParameters(original, written), []);
      // The original against itself: nothing was predicted, so every consumed parameter is reported.
      const untouched = distinctInitializers(unpredictedParameters(original, original));
      assert.equal(untouched.length, distinctInitializers(consumed).length);
      for (const t of tables) assert.ok(untouched.includes(t));
      // A table left as the file had it (what ghn did before tables were slots) is caught.
      const skipped = tables[0]!;
      const restored = decodeModel(onnx);
      const target = initializer(restored, initializerOf.get(tableSlots(g)[0]!.id)!);
      const bytes = readTensorData(initializer(original, skipped), original);
      target.rawData = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength).slice();
      delete (target as { floatData?: number[] }).floatData;
      assert.deepEqual(distinctInitializers(unpredictedParameters(original, restored)), [skipped]);
    });
  });

  test(`${model}: constant folding replaces every table by a [1, heads, N, N] position-embedding bias`, () => {
    const onnxModel = loadModel(file(model, 'preserve13'));
    const g = buildGraph(onnxModel);
    assert.equal(tableSlots(g).length, 0);
    const floatGathers = (onnxModel.proto.graph?.node ?? []).filter((n) => n.opType === 'Gather'
      && (onnxModel.proto.graph?.initializer ?? []).some((t) => t.name === n.input?.[0] && t.dataType === 1));
    assert.equal(floatGathers.length, 0, 'no Gather of a float initializer is left');
    const tables = Object.values(expected[model]!.tables);
    const biases = [...g.slots.values()].filter((s) => s.role === 'pos_embedding');
    assert.equal(biases.length, tables.length);
    const folded = (shape: number[]) => [1, shape[1]!, ((Math.sqrt(shape[0]!) + 1) / 2) ** 2, ((Math.sqrt(shape[0]!) + 1) / 2) ** 2].join('x');
    assert.deepEqual(biases.map((s) => s.shape.join('x')).sort(), tables.map(folded).sort());
    assert.deepEqual(withoutSlots(consumedParameters(onnxModel), g.slots.values()), []);
  });
}

test('the new role is decoded with a trained role embedding: the GHN role table keeps its shape', () => {
  const ghn = loadGhn(DEFAULT_GHN_PATH).model;
  assert.equal(ghn.v('slot.role').shape[0], PARAM_ROLES.length);
  assert.ok(!(PARAM_ROLES as readonly string[]).includes('relative_position_bias'));
});

function summaryElements(g: ComputationGraph): number {
  return [...g.slots.values()].reduce((a, s) => a + s.elements, 0);
}
