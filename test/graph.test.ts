import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { buildGraph, depthFromInputs, forwardDistances, summarize } from '../src/graph/index.js';
import { readModelFile } from '../src/onnx/index.js';

const FIXTURES = path.resolve('fixtures');
const MODELS = ['cnn_small', 'resnet_small', 'vit_small', 'vit_handmade', 'mobilenet_small', 'convnext_small',
  'densenet_small', 'inception_small', 'mlp', 'misc_small'];
const VARIANTS = ['eval13', 'preserve13', 'training13', 'preserve17'];

function torchParams(model: string): number {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, `${model}.state.json`), 'utf8')).params;
}

function load(model: string, variant: string) {
  return buildGraph(readModelFile(path.join(FIXTURES, `${model}.${variant}.onnx`)));
}

describe('graph import of real PyTorch exports', () => {
  for (const model of MODELS) {
    for (const variant of VARIANTS) {
      it(`${model}.${variant}: nothing unsupported; parameter count matches PyTorch`, () => {
        const summary = summarize(load(model, variant));
        assert.deepEqual(summary.unsupported, []);
        if (variant === 'eval13') {
          // BN folded into convs: its scale/shift are gone, so the count can only shrink.
          assert.ok(summary.params.elements <= torchParams(model));
          assert.equal(summary.ops.batch_norm ?? 0, model === 'densenet_small' ? 8 : model === 'misc_small' ? 1 : 0);
        } else {
          assert.equal(summary.params.elements, torchParams(model));
        }
      });
    }
  }
});

describe('canonicalization', () => {
  it('decomposed LayerNorm (opset 13) and LayerNormalization (opset 17) give the same ops', () => {
    const a = summarize(load('convnext_small', 'preserve13'));
    const b = summarize(load('convnext_small', 'preserve17'));
    assert.equal(a.ops.layer_norm, 5);
    assert.deepEqual(a.ops, b.ops);
    assert.equal(a.ops.gelu, 2);
    assert.equal(a.ops.layer_scale, 2);
    assert.equal(a.ops.depthwise_conv, 2);
    assert.equal(a.params.byRole.layer_scale?.elements, 96);
  });

  it('ViT: class token, position embedding, attention, GELU, linear layers on 3-D input', () => {
    const s = summarize(load('vit_small', 'preserve13'));
    assert.equal(s.ops.class_token, 1);
    assert.equal(s.ops.pos_embedding, 1);
    assert.equal(s.ops.softmax, 4);
    assert.equal(s.ops.matmul, 8); // q·kᵀ and attn·v per block
    assert.equal(s.ops.gelu, 4);
    assert.equal(s.ops.layer_norm, 9);
    assert.equal(s.params.byRole.class_token?.elements, 64);
    assert.equal(s.params.byRole.pos_embedding?.elements, 17 * 64);
  });

  it('activations spelled in pieces are recognized by behaviour', () => {
    const mobile = summarize(load('mobilenet_small', 'preserve13'));
    assert.equal(mobile.ops.relu6, 3); // Clip(0, 6)
    assert.equal(mobile.ops.hardswish, 5); // x·HardSigmoid(x)
    assert.equal(mobile.ops.silu, 3); // x·Sigmoid(x)
    assert.equal(mobile.ops.sigmoid, 1); // a squeeze-excite gate stays a sigmoid
    const mlp = summarize(load('mlp', 'preserve13'));
    assert.equal(mlp.ops.gelu, 1); // tanh form
  });

  it('GroupNorm exported as Reshape/InstanceNormalization/Reshape/Mul/Add is one group_norm', () => {
    const s = summarize(load('misc_small', 'preserve13'));
    assert.equal(s.ops.group_norm, 1);
    assert.equal(s.ops.instance_norm, 1);
    assert.equal(s.ops.embedding, 1);
    assert.equal(s.ops.prelu, 1);
  });

  it('grouped and depthwise convolutions are told apart', () => {
    const s = summarize(load('inception_small', 'preserve13'));
    assert.equal(s.ops.group_conv, 1);
  });

  it('shared initializers become one slot per use with unique ids', () => {
    const g = load('resnet_small', 'preserve13');
    const s = summarize(g);
    assert.ok(s.params.initializers < s.params.tensors, 'the exporter merged identical BN tensors');
    const shared = [...g.slots.values()].filter((slot) => slot.shareCount > 1);
    assert.ok(shared.length > 0);
    const consumers = new Set<string>();
    for (const slot of shared) {
      assert.equal(g.index.inputs(slot.consumer.node)[slot.consumer.input], slot.value);
      consumers.add(`${slot.consumer.node}:${slot.consumer.input}`);
      const siblings = shared.filter((other) => other.initializer === slot.initializer);
      assert.equal(siblings.length, slot.shareCount);
    }
    assert.equal(consumers.size, shared.length, 'each slot is its own use');
    // Every BN has its own scale and shift slot.
    const bn = g.ops.filter((op) => op.kind === 'batch_norm');
    for (const op of bn) assert.deepEqual(g.slotsOf(op).map((slot) => slot.role), ['norm.scale', 'norm.shift']);
    assert.equal(g.buffers.length, 2 * bn.length);
  });

  it('weight layouts: Gemm [out, in]; MatMul stores [in, out]', () => {
    const vit = load('vit_small', 'preserve13');
    const linear = [...vit.slots.values()].filter((slot) => slot.role === 'linear.weight');
    assert.ok(linear.some((slot) => slot.layout === 'transposed'));
    for (const slot of linear) {
      const expected = slot.layout === 'transposed' ? [...slot.storedShape].reverse() : [...slot.storedShape];
      assert.deepEqual(slot.shape, expected);
    }
    const mlp = load('mlp', 'preserve13');
    for (const slot of mlp.slots.values()) if (slot.role === 'linear.weight') assert.equal(slot.layout, 'canonical');
  });

  it('the classifier is found as the head op', () => {
    const g = load('resnet_small', 'eval13');
    const heads = g.headOps();
    assert.equal(heads.length, 1);
    assert.equal(heads[0]!.kind, 'linear');
    assert.deepEqual(g.slotsOf(heads[0]!).find((s) => s.role === 'linear.weight')!.shape, [10, 64]);
  });

  it('distances: depth from the input and forward shortest paths', () => {
    const g = load('resnet_small', 'eval13');
    const depth = depthFromInputs(g);
    assert.equal(depth[0], 0);
    assert.ok([...depth].every((d) => d >= 0));
    const dist = forwardDistances(g);
    const n = g.ops.length;
    const last = n - 1;
    assert.equal(dist[0 * n + last], depth[last]);
    assert.equal(dist[last * n + 0], -1, 'no path backwards');
    // A residual add is reached both through its block and through the shortcut: the shortcut is shorter.
    const add = g.ops.find((op) => op.kind === 'add')!;
    const preds = g.graph.inNeighbors(add.id).map((id) => g.op(id).index);
    assert.equal(preds.length, 2);
  });
});
