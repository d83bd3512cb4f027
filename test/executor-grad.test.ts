/**
 * Gradients through the executor vs central finite differences of the executor's own forward, per
 * op family, on small graphs built in memory. Runs on wasm (the training backend, with ghn's
 * gradient kernels). Also: the tensor count stays flat over 20 training steps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { GraphExecutor } from '../src/engine/executor.js';
import { encodeModel, readModelFile } from '../src/onnx/index.js';
import * as ort from 'onnxruntime-node';
import { AttributeType, DataType, type AttributeProto, type NodeProto, type OnnxModel, type TensorProto } from '../src/onnx/types.js';
import { crossEntropy } from '../src/fine-tuning/loss.js';
import { createRng, gaussian } from '../src/util/random.js';

type Attr = number | number[] | string | { floats: number[] } | { f: number };

function attribute(name: string, v: Attr): AttributeProto {
  if (typeof v === 'number') return Number.isInteger(v) ? { name, type: AttributeType.INT, i: v } : { name, type: AttributeType.FLOAT, f: v };
  if (typeof v === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AttributeType.INTS, ints: v };
  if ('f' in v) return { name, type: AttributeType.FLOAT, f: v.f };
  return { name, type: AttributeType.FLOATS, floats: v.floats };
}

function node(opType: string, input: string[], output: string[], attrs: Record<string, Attr> = {}): NodeProto {
  return { opType, input, output, name: `${opType}_${output[0]}`, attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)) };
}

interface Init { shape: number[]; data?: number[]; int64?: boolean; positive?: boolean }

function model(nodes: NodeProto[], inits: Record<string, Init>, output: string, opset = 13): OnnxModel {
  const rng = createRng(11);
  const initializer: TensorProto[] = Object.entries(inits).map(([name, t]) => {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (t.int64) return { name, dims: t.shape, dataType: DataType.INT64, int64Data: t.data! };
    const data = t.data ?? Array.from({ length: count }, () => (t.positive ? 0.5 + rng() : gaussian(rng)));
    return { name, dims: t.shape, dataType: DataType.FLOAT, floatData: data };
  });
  return {
    proto: {
      irVersion: 8,
      opsetImport: [{ domain: '', version: opset }],
      graph: { name: 'g', node: nodes, initializer, input: [{ name: 'x' }], output: [{ name: output }] },
    },
  };
}

interface Case {
  name: string;
  model: OnnxModel;
  input: number[];
  training?: boolean;
}

const x4 = [2, 4, 5, 5];
const CASES: Case[] = [
  { name: 'Conv (bias, stride 2, asymmetric pads, dilation)', input: x4, model: model(
    [node('Conv', ['x', 'w', 'b'], ['y'], { kernel_shape: [3, 3], strides: [2, 1], pads: [1, 0, 2, 1], dilations: [1, 2] })],
    { w: { shape: [3, 4, 3, 3] }, b: { shape: [3] } }, 'y') },
  { name: 'Conv depthwise (multiplier 2) + grouped', input: x4, model: model(
    [node('Conv', ['x', 'wd'], ['d'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 4 }),
      node('Conv', ['d', 'wg'], ['y'], { kernel_shape: [1, 1], group: 2 })],
    { wd: { shape: [8, 1, 3, 3] }, wg: { shape: [4, 4, 1, 1] } }, 'y') },
  { name: 'MaxPool (pads, ceil) / AveragePool (count_include_pad) / GlobalAveragePool', input: x4, model: model(
    [node('MaxPool', ['x'], ['m'], { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 0, 0], ceil_mode: 1 }),
      node('AveragePool', ['x'], ['a'], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 1 }),
      node('AveragePool', ['x'], ['a2'], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }),
      node('Mul', ['m', 'a'], ['ma']), node('Add', ['ma', 'a2'], ['s']), node('Mul', ['s', 'k'], ['s2']),
      node('GlobalAveragePool', ['s2'], ['y'])],
    { k: { shape: [4, 1, 1] } }, 'y') },
  { name: 'BatchNormalization, training (batch statistics)', input: x4, training: true, model: model(
    [node('BatchNormalization', ['x', 'g', 'b', 'm', 'v'], ['n']), node('Mul', ['n', 'n'], ['y'])],
    { g: { shape: [4] }, b: { shape: [4] }, m: { shape: [4] }, v: { shape: [4], positive: true } }, 'y') },
  { name: 'BatchNormalization, inference, then Relu/Clip/HardSwish/Sigmoid', input: x4, model: model(
    [node('BatchNormalization', ['x', 'g', 'b', 'm', 'v'], ['n']), node('HardSwish', ['n'], ['h']),
      node('Sigmoid', ['h'], ['s']), node('Clip', ['n', 'lo', 'hi'], ['c']), node('Add', ['s', 'c'], ['y'])],
    { g: { shape: [4] }, b: { shape: [4] }, m: { shape: [4] }, v: { shape: [4], positive: true }, lo: { shape: [], data: [-0.5] }, hi: { shape: [], data: [0.7] } }, 'y') },
  { name: 'LayerNormalization (opset 17) + decomposed LayerNorm (Pow, Sqrt, Div)', input: [2, 3, 6], model: model(
    [node('LayerNormalization', ['x', 'g', 'b'], ['l'], { axis: -1, epsilon: { f: 1e-5 } }),
      node('ReduceMean', ['x'], ['mu'], { axes: [-1] }), node('Sub', ['x', 'mu'], ['c']), node('Pow', ['c', 'two'], ['c2']),
      node('ReduceMean', ['c2'], ['var'], { axes: [-1] }), node('Add', ['var', 'eps'], ['ve']), node('Sqrt', ['ve'], ['sd']),
      node('Div', ['c', 'sd'], ['d']), node('Mul', ['d', 'g2'], ['dg']), node('Add', ['dg', 'l'], ['y'])],
    { g: { shape: [6] }, b: { shape: [6] }, g2: { shape: [6] }, two: { shape: [], data: [2] }, eps: { shape: [], data: [1e-5] } }, 'y', 17) },
  { name: 'InstanceNormalization + PRelu', input: x4, model: model(
    [node('InstanceNormalization', ['x', 's', 'b'], ['i']), node('PRelu', ['i', 'slope'], ['y'])],
    // Positive scales: a scale near 0 would put every output of its channel at PRelu's kink.
    { s: { shape: [4], positive: true }, b: { shape: [4] }, slope: { shape: [4, 1, 1] } }, 'y') },
  { name: 'Gemm (transB) + Erf GELU + Softmax', input: [3, 5], model: model(
    [node('Gemm', ['x', 'w', 'b'], ['g'], { transB: 1 }), node('Div', ['g', 'r2'], ['gd']), node('Erf', ['gd'], ['e']),
      node('Add', ['e', 'one'], ['e1']), node('Mul', ['g', 'e1'], ['ge']), node('Softmax', ['ge'], ['y'], { axis: 1 })],
    { w: { shape: [4, 5] }, b: { shape: [4] }, r2: { shape: [], data: [Math.SQRT2] }, one: { shape: [], data: [1] } }, 'y') },
  { name: 'attention: MatMul 3-D×2-D, Reshape, Transpose, batched MatMul, Softmax', input: [2, 3, 4], model: model(
    [node('MatMul', ['x', 'wq'], ['q']), node('MatMul', ['x', 'wk'], ['k']),
      node('Reshape', ['q', 'shape'], ['qh']), node('Reshape', ['k', 'shape'], ['kh']),
      node('Transpose', ['qh'], ['qt'], { perm: [0, 2, 1, 3] }), node('Transpose', ['kh'], ['kt'], { perm: [0, 2, 3, 1] }),
      node('MatMul', ['qt', 'kt'], ['att']), node('Softmax', ['att'], ['p'], { axis: -1 }), node('MatMul', ['p', 'qt'], ['y'])],
    { wq: { shape: [4, 4] }, wk: { shape: [4, 4] }, shape: { shape: [4], data: [2, 3, 2, 2], int64: true } }, 'y') },
  { name: 'Concat / strided Slice / Split / Pad / Flatten / Gather / ReduceSum on NHWC-resident data', input: x4, model: model(
    [node('Conv', ['x', 'w'], ['c'], { kernel_shape: [1, 1] }), node('Concat', ['c', 'x'], ['cat'], { axis: 1 }),
      node('Slice', ['cat', 'st', 'en', 'ax', 'stp'], ['sl']), node('Split', ['sl', 'sp'], ['s1', 's2'], { axis: 1 }),
      node('Pad', ['s1', 'pads'], ['p']), node('Mul', ['p', 'p'], ['pp']), node('ReduceSum', ['pp', 'rax'], ['r'], { keepdims: 0 }),
      node('Flatten', ['s2'], ['f']), node('Gather', ['f', 'idx'], ['g'], { axis: 1 }),
      node('ReduceSum', ['r', 'rall'], ['rr'], { keepdims: 1 }), node('Mul', ['g', 'rr'], ['y'])],
    { w: { shape: [3, 4, 1, 1] }, st: { shape: [2], data: [1, 1], int64: true }, en: { shape: [2], data: [6, 4], int64: true },
      ax: { shape: [2], data: [1, 3], int64: true }, stp: { shape: [2], data: [1, 2], int64: true }, sp: { shape: [2], data: [2, 3], int64: true },
      pads: { shape: [8], data: [0, 0, 1, 0, 0, 0, 0, 2], int64: true }, rax: { shape: [2], data: [2, 3], int64: true },
      rall: { shape: [1], data: [1], int64: true }, idx: { shape: [3], data: [0, 7, -1], int64: true } }, 'y') },
  { name: 'Einsum: MaxViT attention products, implicit output, ellipsis broadcast, three operands', input: [2, 2, 3, 4], model: model(
    [node('Einsum', ['x', 'k'], ['s'], { equation: 'B G I D, B G J D -> B G I J' }),
      node('Softmax', ['s'], ['p'], { axis: -1 }),
      node('Einsum', ['p', 'x'], ['a'], { equation: 'bgij,bgjd->bgid' }),
      node('Einsum', ['a', 'w'], ['l'], { equation: '...d,de' }),
      node('Einsum', ['l', 'u', 'v'], ['y'], { equation: 'bgie,e,gi->bge' })],
    { k: { shape: [2, 2, 3, 4] }, w: { shape: [4, 5] }, u: { shape: [5] }, v: { shape: [2, 3] } }, 'y', 13) },
];

/** Random fixed projection so the scalar loss depends on every output element differently. */
function lossOf(executor: GraphExecutor, x: tf.Tensor, params: Map<string, tf.Tensor>, training: boolean, weights: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const y = executor.run(x, { params, training }).outputs[0];
    return tf.sum(tf.mul(y, weights)) as tf.Scalar;
  });
}

test('setup: wasm backend', async () => {
  await initBackend('wasm');
});

for (const c of CASES) {
  test(`gradient: ${c.name}`, () => {
    const executor = new GraphExecutor(c.model);
    const rng = createRng(5);
    const x = tf.tensor(Array.from({ length: c.input.reduce((a, b) => a * b, 1) }, () => gaussian(rng)), c.input);
    // Scalars are constants here; running statistics are unused (no gradient) in training mode.
    const unusedInTraining = new Set(c.training ? executor.batchNorms.flatMap((b) => [b.mean, b.variance]) : []);
    const names = executor.parameterNames.filter((n) => executor.initializer(n)!.size > 1 && !unusedInTraining.has(n));
    const params = new Map(names.map((n) => [n, executor.initializer(n)!.clone()]));
    const probe = executor.run(x, { params, training: c.training }).outputs[0];
    const weights = tf.tensor(Array.from({ length: probe.size }, () => gaussian(rng)), probe.shape);
    probe.dispose();
    const all = ['x', ...names];
    const tensors = [x, ...names.map((n) => params.get(n)!)];
    const f = (...ts: tf.Tensor[]) => lossOf(executor, ts[0], new Map(names.map((n, i) => [n, ts[i + 1]])), c.training ?? false, weights);
    const grads = tf.grads(f)(tensors);
    const eps = 1e-3;
    all.forEach((name, k) => {
      const base = tensors[k].dataSync().slice() as Float32Array;
      const g = grads[k].dataSync();
      let num = 0;
      let den = 0;
      // Up to 16 coordinates per tensor keep the test fast.
      const coords = Array.from({ length: Math.min(16, base.length) }, (_, i) => Math.floor((i * base.length) / Math.min(16, base.length)));
      for (const i of coords) {
        const at = (delta: number) => {
          const v = base.slice();
          v[i] += delta;
          const t = tf.tensor(v, tensors[k].shape);
          const args = tensors.map((u, j) => (j === k ? t : u));
          const l = f(...args);
          const out = l.dataSync()[0];
          tf.dispose([t, l]);
          return out;
        };
        const fd = (at(eps) - at(-eps)) / (2 * eps);
        if (process.env.GRAD_DEBUG) console.log(name, i, fd, g[i]);
        num += (fd - g[i]) ** 2;
        den += fd ** 2 + g[i] ** 2;
      }
      const rel = Math.sqrt(num / Math.max(den, 1e-12));
      assert.ok(rel < 2e-2, `${name}: relative gradient error ${rel.toExponential(2)}`);
    });
    tf.dispose([x, weights, ...grads, ...params.values()]);
    executor.dispose();
  });
}

test('Einsum matches onnxruntime (forward) on the same equations', async () => {
  const c = CASES.find((k) => k.name.startsWith('Einsum'))!;
  const rng = createRng(9);
  const data = Float32Array.from({ length: c.input.reduce((a, b) => a * b, 1) }, () => gaussian(rng));
  const executor = new GraphExecutor(c.model);
  const ours = executor.run(tf.tensor(data, c.input)).outputs[0]!;
  // onnxruntime needs typed graph inputs and outputs.
  const typed = (dims?: number[]) => ({ tensorType: { elemType: DataType.FLOAT, ...(dims ? { shape: { dim: dims.map((d) => ({ dimValue: d })) } } : {}) } });
  const g = c.model.proto.graph!;
  const session = await ort.InferenceSession.create(encodeModel({ proto: { ...c.model.proto, irVersion: 8,
    graph: { ...g, input: [{ name: 'x', type: typed(c.input) }], output: [{ name: 'y', type: typed() }] } } }));
  const theirs = (await session.run({ x: new ort.Tensor('float32', data, c.input) })).y!;
  assert.deepEqual(ours.shape, [...theirs.dims]);
  const got = ours.dataSync(), want = theirs.data as Float32Array;
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-5 * (1 + Math.abs(want[i]!)), `element ${i}: ${got[i]} vs ${want[i]}`);
  ours.dispose();
  executor.dispose();
});

test('tensor count is stable over 20 training steps (resnet_small, BN batch statistics)', () => {
  const executor = new GraphExecutor(readModelFile('fixtures/resnet_small.preserve13.onnx'));
  const vars = executor.parameterNames.map((n) => tf.variable(executor.initializer(n)!.clone(), true, `grad_test_${n}`));
  const params = new Map(executor.parameterNames.map((n, i) => [n, vars[i] as tf.Tensor]));
  const x = tf.randomNormal([8, 1, 28, 28]);
  const y = tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32');
  const counts: number[] = [];
  for (let step = 0; step < 20; step++) {
    const { value, grads } = tf.variableGrads(() => {
      const r = executor.run(x, { params, training: true });
      for (const s of r.bnStats.values()) tf.dispose([s.mean, s.variance]);
      return crossEntropy(r.outputs[0], y);
    }, vars);
    tf.tidy(() => vars.forEach((v) => v.assign(tf.sub(v, tf.mul(grads[v.name], 0.01)))));
    tf.dispose([value, ...Object.values(grads)]);
    counts.push(tf.memory().numTensors);
  }
  // The first step builds the per-shape caches; afterwards nothing accumulates.
  assert.deepEqual(new Set(counts.slice(1)).size, 1, `tensor counts ${counts.join(',')}`);
  tf.dispose([x, y, ...vars]);
  executor.dispose();
});
