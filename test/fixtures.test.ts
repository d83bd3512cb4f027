/**
 * The committed fixtures are what every other test builds on: check that the manifest matches the
 * files on disk and that each ONNX export is a model onnxruntime accepts and runs to finite logits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadFashionMnist } from '../src/data/fashion-mnist.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

interface ManifestEntry {
  file: string;
  kind: 'onnx' | 'external-data' | 'state' | 'state-dict' | 'reference' | 'idx';
  model?: string;
  variant?: string;
  opset?: number;
  input?: number[];
  torchParams?: number;
  bytes?: number;
  sharedInitializers?: number;
  ops?: Record<string, number>;
}
interface Manifest {
  files: ManifestEntry[];
  variants: Record<string, { opset: number }>;
  exportFailures: { model: string; variant: string; error: string }[];
}

const manifest = JSON.parse(readFileSync(join(FIXTURES, 'manifest.json'), 'utf8')) as Manifest;
const onnxEntries = manifest.files.filter((e) => e.kind === 'onnx');
const MODELS = ['cnn_small', 'resnet_small', 'vit_small', 'vit_handmade', 'mobilenet_small', 'convnext_small',
  'densenet_small', 'inception_small', 'mlp', 'misc_small'];

test('manifest lists every model in every variant (or records why the export failed)', () => {
  for (const model of MODELS) {
    for (const variant of Object.keys(manifest.variants)) {
      const present = onnxEntries.some((e) => e.model === model && e.variant === variant && !e.file.includes('/'));
      const failed = manifest.exportFailures.some((f) => f.model === model && f.variant === variant);
      assert.ok(present || failed, `${model}.${variant}`);
    }
    assert.ok(manifest.files.some((e) => e.kind === 'state' && e.model === model), `${model}.state.json`);
  }
});

test('every manifest file exists, is small, and state files agree with the manifest', () => {
  let total = 0;
  for (const entry of manifest.files) {
    const path = join(FIXTURES, entry.file);
    assert.ok(existsSync(path), entry.file);
    const size = statSync(path).size;
    if (entry.bytes !== undefined) assert.equal(size, entry.bytes, entry.file);
    if (entry.kind !== 'idx') assert.ok(size < 1 << 20, `${entry.file} is ${size} bytes`);
    total += size;
    if (entry.kind === 'state') {
      const state = JSON.parse(readFileSync(path, 'utf8')) as { params: number; parameters: Record<string, number[]>; input: number[] };
      const numel = Object.values(state.parameters).reduce((s, shape) => s + shape.reduce((a, b) => a * b, 1), 0);
      assert.equal(numel, state.params, entry.file);
      assert.equal(state.params, entry.torchParams);
      assert.deepEqual(state.input, [1, 1, 28, 28]);
    }
  }
  assert.ok(total < 16 * 2 ** 20, `fixtures total ${total} bytes`);
});

test('the exporter merged identical BN initializers in resnet_small (PRESERVE)', () => {
  for (const variant of ['preserve13', 'preserve17']) {
    const entry = onnxEntries.find((e) => e.file === `resnet_small.${variant}.onnx`);
    assert.ok(entry && (entry.sharedInitializers ?? 0) > 10 && (entry.ops?.Identity ?? 0) > 10);
  }
  // TRAINING keeps every BN tensor separate; eval folds BN into the convs.
  assert.equal(onnxEntries.find((e) => e.file === 'resnet_small.training13.onnx')?.ops?.BatchNormalization, 11);
  assert.equal(onnxEntries.find((e) => e.file === 'resnet_small.eval13.onnx')?.ops?.BatchNormalization, undefined);
});

test('opset 17 exports carry LayerNormalization, opset 13 the decomposed form', () => {
  for (const model of ['vit_small', 'vit_handmade', 'convnext_small']) {
    const e13 = onnxEntries.find((e) => e.file === `${model}.preserve13.onnx`)!;
    const e17 = onnxEntries.find((e) => e.file === `${model}.preserve17.onnx`)!;
    assert.equal(e13.ops?.LayerNormalization, undefined);
    assert.ok((e13.ops?.Pow ?? 0) > 0 && (e13.ops?.Sqrt ?? 0) > 0);
    assert.ok((e17.ops?.LayerNormalization ?? 0) > 0);
  }
});

// The images PyTorch computed its reference logits on, loaded through our own loader and normalization.
const referenceImages = loadFashionMnist({ dir: join(FIXTURES, 'fashion-mnist'), split: 'test', limit: 2 });

test('every model has PyTorch reference logits', () => {
  for (const model of MODELS) assert.ok(manifest.files.some((e) => e.kind === 'reference' && e.model === model), model);
});

for (const entry of onnxEntries) {
  test(`onnxruntime runs ${entry.file}`, async () => {
    const session = await ort.InferenceSession.create(join(FIXTURES, entry.file));
    assert.deepEqual(session.inputNames, ['input']);
    assert.deepEqual(session.outputNames, ['logits']);
    // Batch 2 also checks that the batch axis is really dynamic.
    const [, c, h, w] = entry.input!;
    const batch = 2;
    const x = new Float32Array(batch * c * h * w);
    for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37);
    const out = await session.run({ input: new ort.Tensor('float32', x, [batch, c, h, w]) });
    const logits = out.logits;
    assert.deepEqual(logits.dims, [batch, 10]);
    const data = logits.data as Float32Array;
    assert.ok(data.every(Number.isFinite), 'finite logits');
    // Different images give different logits: the network is not constant.
    assert.notDeepEqual(Array.from(data.subarray(0, 10)), Array.from(data.subarray(10, 20)));

    // Inference-form exports compute exactly what the PyTorch module computes (training-form ones
    // use batch statistics and dropout, so they legitimately differ).
    if (entry.variant !== 'training13') {
      const reference = JSON.parse(readFileSync(join(FIXTURES, `${entry.model}.reference.json`), 'utf8')) as { logits: number[][] };
      const res = await session.run({ input: new ort.Tensor('float32', referenceImages.images, [2, 1, 28, 28]) });
      const got = res.logits.data as Float32Array;
      const want = reference.logits.flat();
      const worst = Math.max(...want.map((w, i) => Math.abs(got[i] - w) / (1e-3 + Math.abs(w))));
      assert.ok(worst < 1e-3, `${entry.file}: ORT vs PyTorch logits, worst relative error ${worst}`);
    }
    await session.release();
  });
}

// torchvision exports (fixtures/large, gitignored, made by scripts/export_torchvision.py): when
// present, the small ones must run too. Failed exports are recorded with the exporter's error.
interface LargeIndexEntry { model: string; variant: string; file?: string; status: 'ok' | 'failed' | 'skipped'; input?: number[]; bytes?: number; error?: string }
const LARGE_INDEX = join(FIXTURES, 'large', 'index.json');
const largeEntries: LargeIndexEntry[] = existsSync(LARGE_INDEX)
  ? (JSON.parse(readFileSync(LARGE_INDEX, 'utf8')) as { exports: LargeIndexEntry[] }).exports : [];

test('torchvision export index is consistent', { skip: largeEntries.length === 0 && 'no fixtures/large/index.json' }, () => {
  for (const e of largeEntries) {
    if (e.status === 'ok') assert.ok(existsSync(join(FIXTURES, 'large', e.file!)), e.file);
    if (e.status === 'failed') assert.ok((e.error ?? '').length > 0, `${e.model}.${e.variant} failed without a reason`);
  }
});

for (const e of largeEntries.filter((x) => x.status === 'ok' && x.variant === 'eval13' && (x.bytes ?? Infinity) < 25e6)) {
  test(`onnxruntime runs large/${e.file}`, async () => {
    const path = join(FIXTURES, 'large', e.file!);
    if (!existsSync(path)) return; // being re-exported right now
    const session = await ort.InferenceSession.create(path);
    const [, c, h, w] = e.input!;
    const x = new Float32Array(c * h * w);
    for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.01);
    const out = await session.run({ input: new ort.Tensor('float32', x, [1, c, h, w]) });
    assert.deepEqual(out.logits.dims, [1, 1000]);
    assert.ok((out.logits.data as Float32Array).every(Number.isFinite));
    await session.release();
  });
}
