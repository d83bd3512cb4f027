/**
 * The opt-in threaded wasm backend (GHN_WASM_THREADS / --threads). Backend selection is
 * process-global, so every scenario runs in a fresh child process, with a time limit: a child whose
 * pthread workers kept it alive would fail here instead of hanging the suite.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BackendInfo } from '../src/engine/backend.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const CHILD_TIMEOUT_MS = 120_000;

interface ChildRun<T> { status: number | null; signal: NodeJS.Signals | null; stderr: string; out: T; ms: number }

/** Runs `body` (an async function body; `tf`, `initBackend`, `describeBackend` in scope) in a fresh Node. */
function inChild<T>(body: string, env: Record<string, string | undefined> = {}): ChildRun<T> {
  const script = `
    import * as tf from '@tensorflow/tfjs-core';
    import { initBackend, describeBackend } from './src/engine/backend.ts';
    const out = await (async () => { ${body} })();
    process.stdout.write('RESULT' + JSON.stringify(out));
  `;
  const childEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete childEnv[k];
  const t0 = performance.now();
  // `-e` on purpose: the pthread workers must not inherit --input-type (Node rejects it in a worker).
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root, env: childEnv, encoding: 'utf8', maxBuffer: 1 << 26, timeout: CHILD_TIMEOUT_MS,
  });
  const ms = performance.now() - t0;
  const at = r.stdout.indexOf('RESULT');
  assert.ok(at >= 0, `child printed no result (status ${r.status}, signal ${r.signal}, ${ms.toFixed(0)} ms): ${r.stderr.slice(-2000)}`);
  return { status: r.status, signal: r.signal, stderr: r.stderr, out: JSON.parse(r.stdout.slice(at + 6)) as T, ms };
}

/**
 * Three SGD steps (batch 16) of resnet_small (BN) and vit_small (batched attention products), and a
 * forward pass of each result: losses and logits.
 */
const TRAIN = `
  const info = await initBackend('wasm');
  const { loadFashionMnist } = await import('./src/data/index.ts');
  const { readModelFile } = await import('./src/onnx/index.ts');
  const { finetune } = await import('./src/fine-tuning/finetune.ts');
  const { GraphExecutor } = await import('./src/engine/executor.ts');
  const data = loadFashionMnist({ dir: 'fixtures/fashion-mnist', split: 'train', limit: 256 });
  const models = {};
  for (const name of ['resnet_small', 'vit_small']) {
    const r = await finetune(readModelFile('fixtures/' + name + '.preserve13.onnx'), {
      data, steps: 3, batch: 16, lr: 1e-2, optimizer: 'sgd', seed: 2, bnRecalibrationBatches: 0,
    });
    const ex = new GraphExecutor(r.model);
    const x = tf.tensor4d(Array.from({ length: 4 * 28 * 28 }, (_, i) => Math.sin(i * 0.37)), [4, 1, 28, 28]);
    const { outputs } = ex.run(x);
    models[name] = { losses: r.history.map((h) => h.loss), logits: Array.from(outputs[0].dataSync()) };
  }
  return { info, line: describeBackend(info), models };
`;

interface TrainOut { info: BackendInfo; line: string; models: Record<string, { losses: number[]; logits: number[] }> }

test('GHN_WASM_THREADS=2: 2 threads from the installed package, same training results as 1 thread, and the process exits', () => {
  const two = inChild<TrainOut>(TRAIN, { GHN_WASM_THREADS: '2', GHN_BACKEND: undefined });
  assert.equal(two.status, 0, `exit status ${two.status} (signal ${two.signal}): ${two.stderr.slice(-2000)}`);
  assert.equal(two.out.info.name, 'wasm');
  assert.equal(two.out.info.threads, 2);
  assert.equal(two.out.info.simd, true);
  assert.match(two.out.line, /^backend: wasm \(SIMD, 2 threads, ghn gradient kernels\)/);
  assert.doesNotMatch(two.stderr, /warning/);

  const one = inChild<TrainOut>(TRAIN, { GHN_WASM_THREADS: undefined, GHN_BACKEND: undefined });
  assert.equal(one.status, 0);
  assert.equal(one.out.info.threads, 1);
  for (const name of ['resnet_small', 'vit_small']) {
    const [a, b] = [two.out.models[name]!, one.out.models[name]!];
    assert.equal(a.losses.length, 3);
    for (let i = 0; i < 3; i++) {
      assert.ok(Math.abs(a.losses[i]! - b.losses[i]!) <= 1e-4 * Math.max(1, Math.abs(b.losses[i]!)),
        `${name} step ${i + 1}: loss ${a.losses[i]} (2 threads) vs ${b.losses[i]} (1 thread)`);
    }
    const scale = Math.max(...b.logits.map(Math.abs));
    const maxDiff = Math.max(...a.logits.map((v, i) => Math.abs(v - b.logits[i]!)));
    assert.ok(maxDiff <= 1e-4 * scale, `${name}: logits differ by ${maxDiff} (scale ${scale})`);
  }
});

test('with 2 threads, batched products (every transpose flag) match the cpu backend', () => {
  const r = inChild<{ threads: number; errors: number[] }>(`
    const info = await initBackend('wasm');
    const cases = [[false, false], [true, false], [false, true], [true, true]];
    const run = () => cases.map(([ta, tb]) => tf.tidy(() => {
      const a = tf.tensor3d(Array.from({ length: 6 * 17 * 16 }, (_, i) => Math.sin(i)), ta ? [6, 16, 17] : [6, 17, 16]);
      const b = tf.tensor3d(Array.from({ length: 6 * 16 * 9 }, (_, i) => Math.cos(i)), tb ? [6, 9, 16] : [6, 16, 9]);
      return Array.from(tf.matMul(a, b, ta, tb).dataSync());
    }));
    const wasm = run();
    await tf.setBackend('cpu');
    const cpu = run();
    return { threads: info.threads, errors: wasm.map((w, c) => Math.max(...w.map((v, i) => Math.abs(v - cpu[c][i])))) };
  `, { GHN_WASM_THREADS: '2' });
  assert.equal(r.out.threads, 2);
  for (const e of r.out.errors) assert.ok(e < 1e-4, `max abs error ${e}`);
});

test('an idle threaded backend does not keep the process alive', () => {
  const r = inChild<{ threads: number }>(`
    const info = await initBackend('wasm');
    tf.tidy(() => tf.conv2d(tf.ones([8, 16, 16, 8]), tf.ones([3, 3, 8, 8]), 1, 'same').dataSync());
    return { threads: info.threads };
  `, { GHN_WASM_THREADS: '2' });
  assert.equal(r.out.threads, 2);
  assert.equal(r.signal, null, `killed by ${r.signal}: the process did not exit by itself`);
  assert.equal(r.status, 0);
});

test('when the threaded build cannot start: one warning line, then the single-threaded wasm backend', () => {
  // Simulated failure: the worker-script check (vm.Script) throws.
  const r = inChild<{ info: BackendInfo; sum: number }>(`
    const vm = (await import('node:vm')).default;
    vm.Script = class { constructor() { throw new Error('simulated failure'); } };
    const info = await initBackend('wasm');
    return { info, sum: tf.tidy(() => tf.conv2d(tf.ones([1, 4, 4, 2]), tf.ones([3, 3, 2, 1]), 1, 'same').sum().dataSync()[0]) };
  `, { GHN_WASM_THREADS: '2' });
  assert.equal(r.status, 0);
  assert.equal(r.out.info.name, 'wasm');
  assert.equal(r.out.info.threads, 1);
  assert.equal(r.out.sum, 2 * (4 * 4 + 8 * 6 + 4 * 9)); // corners, edges, interior of the 4×4 map
  const warnings = r.stderr.split('\n').filter((l) => /warning/.test(l));
  assert.equal(warnings.length, 1, r.stderr);
  assert.match(warnings[0]!, /GHN_WASM_THREADS=2: the threaded wasm build did not load \(simulated failure\); using 1 thread/);
});

test('a malformed GHN_WASM_THREADS or --threads is a usage error', () => {
  const bad = ['lots', '0', '1.5', '9', ' '];
  const r = inChild<Array<{ ok: boolean; kind?: string; message?: string }>>(`
    const out = [];
    for (const value of ${JSON.stringify(bad)}) {
      process.env.GHN_WASM_THREADS = value;
      try { await initBackend('cpu'); out.push({ ok: true }); }
      catch (e) { out.push({ ok: false, kind: e.kind, message: e.message }); }
    }
    return out;
  `);
  for (const [i, value] of bad.slice(0, 4).entries()) {
    assert.equal(r.out[i]!.ok, false, value);
    assert.equal(r.out[i]!.kind, 'usage');
    assert.equal(r.out[i]!.message, `GHN_WASM_THREADS='${value}' must be an integer from 1 to 8`);
  }
  assert.equal(r.out[4]!.ok, true, 'blank means unset');
  const cli = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '--threads', 'two', 'inspect', 'fixtures/mlp.preserve13.onnx'], {
    cwd: root, encoding: 'utf8', timeout: CHILD_TIMEOUT_MS,
  });
  assert.notEqual(cli.status, 0);
  assert.match(cli.stderr, /--threads='two' must be an integer from 1 to 8/);
});

test('ghn --threads 2 finetune trains on 2 threads (onnxruntime in the same process) and exits', () => {
  const dir = mkdtempSync(join(os.tmpdir(), 'ghn-threads-test-'));
  const out = join(dir, 'out.onnx');
  const r = spawnSync(process.execPath, [
    '--import', 'tsx', 'src/cli/main.ts', '--threads', '2', 'finetune', 'fixtures/cnn_small.preserve13.onnx',
    '--data-dir', 'fixtures/fashion-mnist', '--steps', '2', '--batch', '16', '--test-limit', '64', '--bn-recalibration', '0', '-o', out,
  ], { cwd: root, encoding: 'utf8', timeout: CHILD_TIMEOUT_MS, env: { ...process.env, GHN_WASM_THREADS: undefined } });
  try {
    assert.equal(r.signal, null, `killed by ${r.signal}`);
    assert.equal(r.status, 0, r.stderr.slice(-2000));
    assert.match(r.stdout, /backend: wasm \(SIMD, 2 threads, ghn gradient kernels\)/);
    assert.match(r.stdout, /onnxruntime, written file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
