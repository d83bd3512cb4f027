/**
 * Backend selection. Selection is process-global, so each scenario runs in a fresh child process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describeBackend, type BackendInfo } from '../src/engine/backend.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Runs `body` (an async function body with initBackend/tf in scope) in a fresh Node; returns its JSON output. */
function inChild(body: string, env: Record<string, string | undefined> = {}): unknown {
  const script = `
    import * as tf from '@tensorflow/tfjs-core';
    import { initBackend } from './src/engine/backend.ts';
    const out = await (async () => { ${body} })();
    process.stdout.write('RESULT' + JSON.stringify(out));
  `;
  const childEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete childEnv[k];
  const stdout = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root, env: childEnv, encoding: 'utf8', maxBuffer: 1 << 24,
  });
  return JSON.parse(stdout.slice(stdout.indexOf('RESULT') + 6));
}

test("'auto' without native TensorFlow picks wasm with ghn kernels, and says why", () => {
  const r = inChild(`
    const info = await initBackend();
    const again = await initBackend();
    return { info, same: info === again, active: tf.getBackend(), hasFilterGrad: !!tf.getKernel('Conv2DBackpropFilter', 'wasm') };
  `, { GHN_BACKEND: undefined }) as { info: BackendInfo; same: boolean; active: string; hasFilterGrad: boolean };
  assert.equal(r.info.name, 'wasm');
  assert.equal(r.info.package, '@tensorflow/tfjs-backend-wasm');
  assert.equal(r.info.threads, 1);
  assert.equal(r.info.ghnKernels, true);
  assert.match(r.info.reason ?? '', /native TensorFlow not installed/);
  assert.equal(r.same, true, 'second call returns the same info');
  assert.equal(r.active, 'wasm');
  assert.equal(r.hasFilterGrad, true);
});

test('GHN_BACKEND=cpu selects cpu; an explicit argument overrides the variable', () => {
  const r = inChild(`
    const fromEnv = await initBackend();
    const active1 = tf.getBackend();
    const explicit = await initBackend('wasm');
    return { fromEnv, active1, explicit, active2: tf.getBackend() };
  `, { GHN_BACKEND: 'cpu' }) as { fromEnv: BackendInfo; active1: string; explicit: BackendInfo; active2: string };
  assert.equal(r.fromEnv.name, 'cpu');
  assert.equal(r.active1, 'cpu');
  assert.equal(r.explicit.name, 'wasm');
  assert.equal(r.active2, 'wasm');
});

test("'tensorflow' without tfjs-node fails with a GhnError naming the packages", () => {
  const r = inChild(`
    try { await initBackend('tensorflow'); return { ok: true }; }
    catch (e) { return { ok: false, name: e.name, kind: e.kind, message: e.message }; }
  `) as { ok: boolean; name: string; kind: string; message: string };
  assert.equal(r.ok, false);
  assert.equal(r.name, 'GhnError');
  assert.equal(r.kind, 'unsupported');
  assert.match(r.message, /@tensorflow\/tfjs-node/);
});

test('a bad GHN_BACKEND value is a usage error', () => {
  const r = inChild(`
    try { await initBackend(); return { ok: true }; }
    catch (e) { return { ok: false, kind: e.kind, message: e.message }; }
  `, { GHN_BACKEND: 'gpu' }) as { ok: boolean; kind: string; message: string };
  assert.equal(r.ok, false);
  assert.equal(r.kind, 'usage');
  assert.match(r.message, /GHN_BACKEND='gpu'/);
});

test('describeBackend gives one line', () => {
  assert.equal(
    describeBackend({ name: 'wasm', package: '@tensorflow/tfjs-backend-wasm', threads: 1, simd: true, ghnKernels: true }),
    'backend: wasm (SIMD, 1 thread, ghn gradient kernels)');
  assert.equal(
    describeBackend({ name: 'cpu', package: '@tensorflow/tfjs-backend-cpu', threads: 1, reason: 'fallback, very slow' }),
    'backend: cpu (1 thread); fallback, very slow');
  assert.equal(describeBackend({ name: 'tensorflow', package: '@tensorflow/tfjs-node', threads: 8 }), 'backend: tensorflow (8 threads)');
});

test('engine/tfjs-core.ts is tfjs-core itself: one engine and one kernel registry for both imports', () => {
  const r = inChild(`
    const shim = await import('./src/engine/tfjs-core.ts');
    await initBackend('cpu');
    return { sameEngine: shim.engine() === tf.engine(), backend: shim.getBackend(), tensorClass: shim.tensor1d([1]) instanceof tf.Tensor };
  `);
  assert.deepEqual(r, { sameEngine: true, backend: 'cpu', tensorClass: true });
});
