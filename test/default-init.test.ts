/**
 * PyTorch's default initialization per role (src/postprocess/default-init.ts) against what PyTorch
 * itself wrote into real exports of freshly built modules, and the mix of a prediction with it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { predict } from '../src/api/predict.js';
import { buildGraph } from '../src/graph/index.js';
import { decodeModel } from '../src/onnx/index.js';
import { readFloat32 } from '../src/onnx/tensor.js';
import { DEFAULT_INIT, mixWithDefaultInit, sampleDefaultInit } from '../src/postprocess/default-init.js';
import { createRng } from '../src/util/random.js';

const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

describe('PyTorch default initialization', () => {
  for (const fixture of ['cnn_small', 'resnet_small', 'mlp']) {
    it(`${fixture}: every conv/linear weight and bias is drawn from the bound PyTorch used (U(±1/√fan_in))`, () => {
      const model = decodeModel(fs.readFileSync(`fixtures/${fixture}.preserve13.onnx`));
      const graph = buildGraph(model);
      const initializers = new Map((model.proto.graph?.initializer ?? []).map((t) => [t.name, t]));
      let checked = 0;
      for (const slot of graph.slots.values()) {
        const rule = DEFAULT_INIT[slot.role];
        const ours = sampleDefaultInit(graph, slot, createRng(checked + 1));
        assert.equal(ours.length, slot.elements);
        if (rule.kind === 'constant') {
          assert.ok(ours.every((v) => v === rule.value), `${slot.id}: constant ${rule.value}`);
          continue;
        }
        if (rule.kind !== 'uniform-fan-in' || slot.elements < 200) continue;
        // PyTorch's own draw reaches within a few % of the bound on a few hundred values; ours must share the bound.
        const theirs = readFloat32(initializers.get(slot.initializer)!, model);
        const ratio = maxAbs(ours) / maxAbs(theirs);
        assert.ok(ratio > 0.97 && ratio < 1.03, `${slot.id} (${slot.role} ${slot.shape.join('×')}): max |w| ours ${maxAbs(ours)} vs PyTorch ${maxAbs(theirs)}`);
        checked++;
      }
      assert.ok(checked >= 2, `checked ${checked} tensors`);
    });
  }

  it('mixing: t = 0 is the prediction, t = 1 a default draw, t = 0.5 halfway; the prediction is not modified', () => {
    const model = decodeModel(fs.readFileSync('fixtures/cnn_small.preserve13.onnx'));
    const graph = buildGraph(model);
    const rng = createRng(5);
    const predicted = new Map([...graph.slots.values()].map((s) => [s.id, Float32Array.from({ length: s.elements }, () => rng() - 0.5)]));
    const copy = new Map([...predicted].map(([k, v]) => [k, Float32Array.from(v)]));
    const none = mixWithDefaultInit(graph, predicted, 0, 1), all = mixWithDefaultInit(graph, predicted, 1, 1), half = mixWithDefaultInit(graph, predicted, 0.5, 1);
    for (const [id, p] of predicted) {
      assert.deepEqual(p, copy.get(id), 'prediction untouched');
      assert.deepEqual(none.get(id), p);
      const d = all.get(id)!;
      const h = half.get(id)!;
      for (let i = 0; i < p.length; i++) assert.ok(Math.abs(h[i]! - (p[i]! + d[i]!) / 2) < 1e-6);
    }
    const again = mixWithDefaultInit(graph, predicted, 1, 1), other = mixWithDefaultInit(graph, predicted, 1, 2);
    const weight = [...graph.slots.values()].find((s) => s.role === 'conv.weight')!.id;
    assert.deepEqual(again.get(weight), all.get(weight), 'same seed, same draw');
    assert.notDeepEqual(other.get(weight), all.get(weight), 'another seed, another draw');
  });
});

describe('predict chooses the mix by held-out accuracy', () => {
  it('reports both candidates with held-out accuracies, writes the better one, and --mix pins it', async () => {
    const file = 'fixtures/cnn_small.preserve13.onnx';
    const auto = await predict(file);
    const mix = auto.report.mix;
    assert.equal(mix.chosenBy, 'held-out');
    assert.deepEqual(mix.candidates!.map((c) => c.t).sort(), [0, 0.5]);
    const best = mix.candidates!.reduce((a, b) => (b.heldOut > a.heldOut || (b.heldOut === a.heldOut && b.t === 0) ? b : a));
    assert.equal(mix.t, best.t);
    for (const c of mix.candidates!) assert.ok(c.heldOut > 0.3 && c.heldOut <= 1, `held-out ${c.heldOut}`);
    const options = JSON.parse(decodeModel(auto.onnx).proto.metadataProps!.find((p) => p.key === 'ghn.options')!.value!);
    assert.equal(options.mix, mix.t);

    const pinned = await predict(file, { mix: mix.t });
    assert.equal(pinned.report.mix.chosenBy, 'option');
    assert.deepEqual(pinned.onnx, auto.onnx, 'the chosen candidate, written directly, is byte-identical');
    const other = await predict(file, { mix: mix.t === 0 ? 0.5 : 0 });
    assert.notDeepEqual(other.onnx, auto.onnx);
    await assert.rejects(predict(file, { mix: 1.5 }), /mix must be 'auto' or a number in \[0, 1\]/);
  });
});
