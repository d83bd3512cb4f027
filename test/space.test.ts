/**
 * The generated architecture space: every family's ONNX runs in onnxruntime, outputs are finite
 * with the right shape, sampling is deterministic, splits are disjoint, budgets hold, and the
 * builder reproduces the exporter's naming, initializer merging, BN folding and init.
 *
 * ONNX ops each family emits (opset 13; at opset 17 LayerNorm is one LayerNormalization op).
 * Every family also emits Identity (merged initializers), Flatten and Gemm unless noted.
 * | family    | ops                                                                              |
 * | --------- | -------------------------------------------------------------------------------- |
 * | cnn       | Conv BatchNormalization Relu Clip Constant HardSigmoid Mul Sigmoid Div Erf Add   |
 * |           | MaxPool Pad AveragePool GlobalAveragePool                                        |
 * | vgg       | Conv BatchNormalization Relu MaxPool GlobalAveragePool                           |
 * | resnet    | Conv BatchNormalization Relu MaxPool Add GlobalAveragePool                       |
 * | mobilenet | Conv (depthwise) BatchNormalization Clip Constant Relu HardSigmoid Mul Sigmoid   |
 * |           | Add GlobalAveragePool                                                            |
 * | convnext  | Conv (depthwise) Transpose ReduceMean Sub Pow Sqrt Div Mul Add Constant MatMul   |
 * |           | Erf GlobalAveragePool                                                            |
 * | vit       | Conv Reshape Transpose Shape Gather Unsqueeze Concat ConstantOfShape Mul Equal   |
 * |           | Where Expand Add ReduceMean Sub Pow Sqrt Div MatMul Softmax Erf Constant (no     |
 * |           | Flatten)                                                                          |
 * | densenet  | Conv BatchNormalization Relu MaxPool Concat Pad AveragePool Constant             |
 * |           | GlobalAveragePool                                                                |
 * | inception | Conv BatchNormalization Relu MaxPool Concat GlobalAveragePool                    |
 * | mlp       | BatchNormalization ReduceMean Sub Pow Sqrt Div Mul Add Constant Relu Sigmoid     |
 * |           | HardSigmoid Erf (no Conv)                                                        |
 * | bnfree    | Conv Relu Clip Constant Sigmoid Mul Div Erf Add GlobalAveragePool (no BN)        |
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../src/onnx/index.js';
import type { ModelProto, TensorProto } from '../src/onnx/types.js';
import { toNumber } from '../src/onnx/int64.js';
import { createRng } from '../src/util/random.js';
import {
  architectureSeed,
  FAMILIES,
  FAMILY_NAMES,
  MAX_FLOPS,
  MAX_PARAMS,
  MIN_FLOPS,
  sampleArchitecture,
  sampleFamily,
  type FamilyName,
  type SampleOptions,
} from '../src/space/sample.js';
import { ModelBuilder } from '../src/space/onnx-builder.js';
import { activation, batchNorm, conv2d, convNorm, linear, flatten } from '../src/space/layers.js';

/** Ops each family may emit (the table above, as data). */
const COMMON = ['Identity', 'Flatten', 'Gemm', 'Constant'];
const FAMILY_OPS: Record<FamilyName, string[]> = {
  cnn: ['Conv', 'BatchNormalization', 'Relu', 'Clip', 'HardSigmoid', 'Mul', 'Sigmoid', 'Div', 'Erf', 'Add', 'MaxPool', 'Pad', 'AveragePool', 'GlobalAveragePool'],
  vgg: ['Conv', 'BatchNormalization', 'Relu', 'MaxPool', 'GlobalAveragePool'],
  resnet: ['Conv', 'BatchNormalization', 'Relu', 'MaxPool', 'Add', 'GlobalAveragePool'],
  mobilenet: ['Conv', 'BatchNormalization', 'Clip', 'Relu', 'HardSigmoid', 'Mul', 'Sigmoid', 'Add', 'GlobalAveragePool'],
  convnext: ['Conv', 'Transpose', 'ReduceMean', 'Sub', 'Pow', 'Sqrt', 'Div', 'Mul', 'Add', 'MatMul', 'Erf', 'GlobalAveragePool', 'LayerNormalization'],
  vit: ['Conv', 'Reshape', 'Transpose', 'Shape', 'Gather', 'Unsqueeze', 'Concat', 'ConstantOfShape', 'Mul', 'Equal', 'Where', 'Expand', 'Add', 'ReduceMean', 'Sub', 'Pow', 'Sqrt', 'Div', 'MatMul', 'Softmax', 'Erf', 'LayerNormalization'],
  densenet: ['Conv', 'BatchNormalization', 'Relu', 'MaxPool', 'Concat', 'Pad', 'AveragePool', 'GlobalAveragePool'],
  inception: ['Conv', 'BatchNormalization', 'Relu', 'MaxPool', 'Concat', 'GlobalAveragePool'],
  mlp: ['BatchNormalization', 'ReduceMean', 'Sub', 'Pow', 'Sqrt', 'Div', 'Mul', 'Add', 'Relu', 'Sigmoid', 'HardSigmoid', 'Erf', 'LayerNormalization'],
  bnfree: ['Conv', 'Relu', 'Clip', 'Sigmoid', 'Mul', 'Div', 'Erf', 'Add', 'GlobalAveragePool'],
};

async function runLogits(model: ModelProto, input: readonly number[], batch: number): Promise<ort.Tensor> {
  const session = await ort.InferenceSession.create(encodeModel({ proto: model }));
  const size = batch * input.reduce((a, b) => a * b, 1);
  const rng = createRng(7);
  const x = new ort.Tensor('float32', Float32Array.from({ length: size }, () => rng() * 2 - 1), [batch, ...input]);
  const out = await session.run({ input: x });
  await session.release();
  return out.logits;
}

function floats(t: TensorProto): Float32Array {
  const raw = t.rawData!;
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
}

async function checkFamily(family: FamilyName, seeds: number[], options: SampleOptions, classes: number, input: readonly number[]) {
  for (const seed of seeds) {
    const arch = sampleArchitecture(seed, { ...options, family });
    assert.equal(arch.family, family);
    const logits = await runLogits(arch.model, input, 2);
    assert.deepEqual(logits.dims, [2, classes], `${arch.id} output shape`);
    const data = logits.data as Float32Array;
    assert.ok(data.every(Number.isFinite), `${arch.id} has non-finite logits`);
    // The two inputs differ, so must the outputs: the graph really uses its input.
    assert.notDeepEqual(Array.from(data.slice(0, classes)), Array.from(data.slice(classes)), `${arch.id} ignores its input`);
    assert.ok(arch.flops >= MIN_FLOPS && arch.flops <= MAX_FLOPS, `${arch.id} flops ${arch.flops}`);
    assert.ok(arch.params <= MAX_PARAMS, `${arch.id} params ${arch.params}`);
    const ops = new Set(arch.model.graph!.node!.map((n) => n.opType!));
    const allowed = new Set([...COMMON, ...FAMILY_OPS[family]]);
    for (const op of ops) assert.ok(allowed.has(op), `${arch.id} emits undocumented op ${op}`);
  }
}

for (const family of FAMILY_NAMES) {
  test(`${family}: 12 samples run in onnxruntime on [1,28,28] → [2,10], within budget`, async () => {
    await checkFamily(family, Array.from({ length: 12 }, (_, i) => architectureSeed('train', i)), {}, 10, [1, 28, 28]);
  });
  test(`${family}: 4 samples on [3,32,32] with 100 classes`, async () => {
    await checkFamily(family, [1, 2, 3, 4].map((i) => architectureSeed('val', i)), { input: [3, 32, 32], classes: 100 }, 100, [3, 32, 32]);
  });
}

test('opset 17: LayerNorm is one LayerNormalization op and the model still runs', async () => {
  for (const family of ['convnext', 'vit'] as const) {
    for (const seed of [5, 6]) {
      const arch = sampleArchitecture(seed, { family, opset: 17 });
      const ops = arch.model.graph!.node!.map((n) => n.opType);
      assert.ok(ops.includes('LayerNormalization'), `${arch.id} lacks LayerNormalization`);
      assert.ok(!ops.includes('Pow'), `${arch.id} still decomposes LayerNorm`);
      assert.equal(toNumber(arch.model.opsetImport![0].version), 17);
      assert.equal(toNumber(arch.model.irVersion), 8);
      const logits = await runLogits(arch.model, [1, 28, 28], 2);
      assert.ok((logits.data as Float32Array).every(Number.isFinite));
    }
  }
});

test('same seed → identical bytes; different seeds → different models', () => {
  assert.equal(sampleArchitecture(9).family, sampleFamily(9));
  for (const seed of [0, 17, 4242]) {
    const a = encodeModel({ proto: sampleArchitecture(seed).model });
    const b = encodeModel({ proto: sampleArchitecture(seed).model });
    assert.deepEqual(a, b);
  }
  const x = encodeModel({ proto: sampleArchitecture(1, { family: 'resnet' }).model });
  const y = encodeModel({ proto: sampleArchitecture(2, { family: 'resnet' }).model });
  assert.notDeepEqual(x, y);
});

test('train/val/test seeds are disjoint, deterministic, and vary with the base seed', () => {
  const seen = new Map<number, string>();
  for (const split of ['train', 'val', 'test'] as const) {
    for (let i = 0; i < 3000; i++) {
      const seed = architectureSeed(split, i);
      assert.ok(!seen.has(seed), `${split}/${i} collides with ${seen.get(seed)}`);
      seen.set(seed, `${split}/${i}`);
    }
  }
  assert.equal(architectureSeed('val', 10), architectureSeed('val', 10));
  assert.notEqual(architectureSeed('train', 0, 1), architectureSeed('train', 0, 0));
  assert.throws(() => architectureSeed('train', -1), /non-negative/);
});

test('family mix follows the FAMILIES weights', () => {
  const counts = new Map<string, number>();
  const n = 2000;
  for (let i = 0; i < n; i++) {
    const family = sampleFamily(architectureSeed('train', i));
    counts.set(family, (counts.get(family) ?? 0) + 1);
  }
  const total = Object.values(FAMILIES).reduce((a, b) => a + b, 0);
  for (const name of FAMILY_NAMES) {
    const expected = (n * FAMILIES[name]) / total;
    const got = counts.get(name) ?? 0;
    assert.ok(Math.abs(got - expected) < 4 * Math.sqrt(expected) + 5, `${name}: ${got} vs ${expected.toFixed(0)}`);
  }
});

test('builder: exporter naming — Sequential indices, repeated modules, repeated ops', () => {
  const b = new ModelBuilder(13);
  let x = b.input([1, 8, 8]);
  x = b.within('layer1', () =>
    b.within('0', () => {
      let y = b.within('conv1', () => conv2d(b, x, { out: 4, kernel: 3, bias: false }));
      y = b.within('relu', () => activation(b, y, 'relu'));
      return b.within('relu', () => activation(b, y, 'relu'));
    }),
  );
  x = flatten(b, x);
  x = flatten(b, x);
  const logits = b.within('fc', () => linear(b, x, 3));
  const model = b.build(logits, createRng(1));
  const names = model.graph!.node!.map((n) => n.name);
  assert.deepEqual(names, [
    '/layer1/layer1.0/conv1/Conv',
    '/layer1/layer1.0/relu/Relu',
    '/layer1/layer1.0/relu_1/Relu',
    '/Flatten',
    '/Flatten_1',
    '/fc/Gemm',
  ]);
  assert.deepEqual(model.graph!.node![0].input, ['input', 'layer1.0.conv1.weight']);
  assert.deepEqual(model.graph!.node![5].output, ['logits']);
  const inputDims = model.graph!.input![0].type!.tensorType!.shape!.dim!;
  assert.equal(inputDims[0].dimParam, 'batch');
  assert.deepEqual(inputDims.slice(1).map((d) => toNumber(d.dimValue)), [1, 8, 8]);
  const gemm = model.graph!.node![5];
  assert.deepEqual(gemm.attribute!.map((a) => a.name), ['alpha', 'beta', 'transB']);
});

test('builder: equal initializers merge into Identity nodes; BN folding scales the conv', () => {
  const build = (norm: 'bn' | 'folded') => {
    const b = new ModelBuilder(13);
    let x = b.input([2, 6, 6]);
    x = convNorm(b, x, { out: 4, kernel: 3, bias: false }, norm, { conv: 'conv1', bn: 'bn1' });
    x = convNorm(b, x, { out: 4, kernel: 1, padding: 0, bias: false }, norm, { conv: 'conv2', bn: 'bn2' });
    x = b.within('fc', () => linear(b, flatten(b, x), 2));
    return b.build(x, createRng(3));
  };
  const preserved = build('bn');
  const inits = preserved.graph!.initializer!.map((t) => t.name);
  // bn1.weight keeps ones [4]; bn1.bias keeps zeros [4]; all later equal tensors are Identity outputs.
  assert.deepEqual(inits, ['conv1.weight', 'bn1.weight', 'bn1.bias', 'conv2.weight', 'fc.weight', 'fc.bias']);
  const identities = preserved.graph!.node!.filter((n) => n.opType === 'Identity');
  assert.deepEqual(identities.map((n) => [n.input![0], n.output![0]]), [
    ['bn1.weight', 'bn2.running_var'],
    ['bn1.bias', 'bn2.running_mean'],
    ['bn1.bias', 'bn2.bias'],
    ['bn1.weight', 'bn2.weight'],
    ['bn1.weight', 'bn1.running_var'],
    ['bn1.bias', 'bn1.running_mean'],
  ]);
  assert.equal(preserved.graph!.node!.filter((n) => n.opType === 'BatchNormalization').length, 2);

  const folded = build('folded');
  assert.equal(folded.graph!.node!.filter((n) => n.opType === 'BatchNormalization').length, 0);
  const convs = folded.graph!.node!.filter((n) => n.opType === 'Conv');
  assert.ok(convs.every((n) => n.input!.length === 3 && n.input![1].startsWith('onnx::Conv_')));
  // Same random stream: folded weight = preserved weight / sqrt(1 + 1e-5); folded bias = 0.
  const byName = (m: ModelProto, name: string) => floats(m.graph!.initializer!.find((t) => t.name === name)!);
  const w = byName(preserved, 'conv1.weight');
  const wf = byName(folded, convs[0].input![1]);
  for (let i = 0; i < w.length; i++) assert.ok(Math.abs(wf[i] - w[i] / Math.sqrt(1 + 1e-5)) < 1e-7);
  const biasName = convs[0].input![2];
  const biasInit = folded.graph!.initializer!.find((t) => t.name === biasName);
  const biasSource = biasInit ?? folded.graph!.initializer!.find((t) => t.name === folded.graph!.node!.find((n) => n.output![0] === biasName)!.input![0])!;
  assert.ok(floats(biasSource).every((v) => v === 0));
});

test('init: kaiming-uniform(a=√5) weights and fan-in biases; BN running stats', () => {
  const b = new ModelBuilder(13);
  let x = b.input([16, 10, 10]);
  x = b.within('conv', () => conv2d(b, x, { out: 64, kernel: 3, bias: true }));
  x = b.within('bn', () => batchNorm(b, x));
  const logits = b.within('fc', () => linear(b, flatten(b, x), 5));
  const model = b.build(logits, createRng(11));
  const get = (name: string) => floats(model.graph!.initializer!.find((t) => t.name === name)!);
  const bound = 1 / Math.sqrt(16 * 9);
  const w = get('conv.weight');
  assert.ok(w.every((v) => Math.abs(v) <= bound));
  const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
  assert.ok(Math.abs(std - bound / Math.sqrt(3)) < 0.05 * bound, `std ${std}`);
  assert.ok(get('conv.bias').every((v) => Math.abs(v) <= bound));
  assert.ok(get('bn.weight').every((v) => v === 1));
  assert.ok(get('bn.bias').every((v) => v === 0));
  const bnNode = model.graph!.node!.find((n) => n.opType === 'BatchNormalization')!;
  assert.deepEqual(bnNode.input!.slice(3), ['bn.running_mean', 'bn.running_var']);
  assert.equal(b.paramCount, 64 * 16 * 9 + 64 + 64 * 2 + 64 * 100 * 5 + 5);
});

test('transformer init: class token and position embedding are trunc-normal(0.02)', () => {
  const arch = sampleArchitecture(3, { family: 'vit' });
  const pos = arch.model.graph!.initializer!.find((t) => t.name === 'pos_embed')!;
  const v = floats(pos);
  const std = Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
  assert.ok(std > 0.014 && std < 0.02, `std ${std}`);
  assert.ok(v.every((x) => Math.abs(x) <= 0.04 + 1e-7));
});

/**
 * Exporter fidelity: the builder's graphs for torchvision ResNet-18, MobileNetV2/V3-small and a
 * timm-style ViT equal what PyTorch 1.13 exported (fixtures/space/reference-graphs.json, from
 * scripts/space_reference.py) node by node — op, name, inputs, outputs, attributes — and have
 * the same parameter slots. Constants are compared by position only (the exporter pools them).
 */
const v3 = (expanded: number, out: number, kernel: number, se: boolean, act: 'relu' | 'hardswish', stride: number) => ({ expanded, out, kernel, se, act, stride });
const MNV3_SMALL = [
  v3(16, 16, 3, true, 'relu', 2), v3(72, 24, 3, false, 'relu', 2), v3(88, 24, 3, false, 'relu', 1),
  v3(96, 40, 5, true, 'hardswish', 2), v3(240, 40, 5, true, 'hardswish', 1), v3(240, 40, 5, true, 'hardswish', 1),
  v3(120, 48, 5, true, 'hardswish', 1), v3(144, 48, 5, true, 'hardswish', 1), v3(288, 96, 5, true, 'hardswish', 2),
  v3(576, 96, 5, true, 'hardswish', 1), v3(576, 96, 5, true, 'hardswish', 1),
];
const MNV2 = ([[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]] as const)
  .flatMap(([expand, out, n, stride]) => Array.from({ length: n }, (_, i) => ({ out, expand, kernel: 3, stride: i === 0 ? stride : 1, se: false, act: 'relu6' as const })));

function referenceBuilds(): Record<string, { family: FamilyName; config: object; input: [number, number, number]; opset: 13 | 17 }> {
  const resnet18 = (norm: 'bn' | 'folded') => ({ norm, block: 'basic', stemWidth: 64, stemKernel: 7, stemStride: 2, stemMaxPool: true, stages: [64, 128, 256, 512].map((width) => ({ width, blocks: 2 })), groups: 1 });
  let width = 16;
  const v3Blocks = MNV3_SMALL.map((b) => {
    const block = { out: b.out, expand: b.expanded / width, kernel: b.kernel, stride: b.stride, se: b.se, act: b.act };
    width = b.out;
    return block;
  });
  const vit = (pool: 'token' | 'mean') => ({ patch: 7, width: 24, depth: 2, heads: 2, mlpRatio: 3, pool });
  const rgb64: [number, number, number] = [3, 64, 64];
  const gray28: [number, number, number] = [1, 28, 28];
  return {
    'resnet18.preserve13': { family: 'resnet', config: resnet18('bn'), input: rgb64, opset: 13 },
    'resnet18.eval13': { family: 'resnet', config: resnet18('folded'), input: rgb64, opset: 13 },
    'mobilenet_v2.eval13': { family: 'mobilenet', config: { variant: 'v2', norm: 'folded', stemWidth: 32, stemStride: 2, stages: [MNV2], headWidth: 1280, classifierHidden: 0 }, input: rgb64, opset: 13 },
    'mobilenet_v3_small.preserve13': { family: 'mobilenet', config: { variant: 'v3', norm: 'bn', stemWidth: 16, stemStride: 2, stages: [v3Blocks], headWidth: 576, classifierHidden: 1024 }, input: rgb64, opset: 13 },
    'vit_token.preserve13': { family: 'vit', config: vit('token'), input: gray28, opset: 13 },
    'vit_token.preserve17': { family: 'vit', config: vit('token'), input: gray28, opset: 17 },
    'vit_mean.preserve13': { family: 'vit', config: vit('mean'), input: gray28, opset: 13 },
  };
}

function summarize(model: ModelProto) {
  const normalize = (s: string) => s.replace(/onnx::(\w+?)_\d+/g, 'onnx::$1_#');
  const g = model.graph!;
  const constants = new Set(g.node!.filter((n) => n.opType === 'Constant').flatMap((n) => n.output!));
  const dims = new Map(g.initializer!.map((t) => [t.name!, t.dims!.map((d) => toNumber(d))]));
  const slots: [string, number[]][] = [...dims].map(([name, d]) => [normalize(name), d]);
  const nodes: unknown[] = [];
  for (const n of g.node!) {
    if (n.opType === 'Identity') {
      slots.push([normalize(n.output![0]), dims.get(n.input![0])!]);
      continue;
    }
    if (n.opType === 'Constant') continue;
    const attrs = Object.fromEntries((n.attribute ?? []).map((a) => {
      if (a.t) return [a.name, [a.t.dims!.map((d) => toNumber(d)), a.t.dataType]];
      if (a.ints) return [a.name, a.ints.map((v) => toNumber(v))];
      if (a.s) return [a.name, new TextDecoder().decode(a.s)];
      if (a.f !== undefined) return [a.name, Math.round(Math.fround(a.f) * 1e6) / 1e6];
      return [a.name, toNumber(a.i)];
    }));
    nodes.push([n.opType, n.name, n.input!.map((i) => (constants.has(i) ? 'C' : normalize(i))), n.output!.map(normalize), attrs]);
  }
  return { slots: slots.map((s) => JSON.stringify(s)).sort(), nodes: nodes.map((n) => JSON.stringify(n)) };
}

test('exporter fidelity: torchvision ResNet-18, MobileNetV2/V3 and a timm ViT match real PyTorch 1.13 exports', async () => {
  const { readFileSync } = await import('node:fs');
  const reference = JSON.parse(readFileSync(new URL('../fixtures/space/reference-graphs.json', import.meta.url), 'utf8'));
  const { FAMILY_TABLE } = await import('../src/space/families/index.js');
  for (const [key, spec] of Object.entries(referenceBuilds())) {
    const expected = reference.cases[key];
    assert.ok(expected, `fixture lacks ${key}`);
    const b = new ModelBuilder(spec.opset);
    const task = { input: spec.input, classes: 10 };
    const logits = FAMILY_TABLE[spec.family].family.build(b, b.input(spec.input), spec.config, task);
    const mine = summarize(b.build(logits, createRng(0)));
    const theirs = {
      slots: (expected.slots as unknown[]).map((s) => JSON.stringify(s)).sort(),
      nodes: (expected.nodes as unknown[]).map((n) => JSON.stringify(n)),
    };
    assert.deepEqual(mine.slots, theirs.slots, `${key}: parameter slots`);
    assert.equal(mine.nodes.length, theirs.nodes.length, `${key}: node count`);
    for (let i = 0; i < mine.nodes.length; i++) assert.equal(mine.nodes[i], theirs.nodes[i], `${key}: node ${i}`);
  }
});
