/**
 * Picks and initializes the TensorFlow.js backend ghn trains and predicts on.
 *
 * Order for 'auto': tfjs-node-gpu, tfjs-node (native TensorFlow; only if installed, never required),
 * then the wasm backend with ghn's own gradient kernels, then the pure-JS cpu backend (far too
 * slow to train on, kept as a last resort and as the reference in tests).
 */
import * as tf from './tfjs-core.js';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { GhnError } from '../errors.js';
import { registerGradients } from './gradients.js';
import { activateThreadedWasm, requestedWasmThreads } from './wasm-threads.js';

export type BackendPreference = 'tensorflow' | 'wasm' | 'cpu' | 'auto';

export interface BackendInfo {
  /** tfjs backend name as registered: 'tensorflow', 'wasm' or 'cpu'. */
  name: string;
  /** npm package that provides it. */
  package: string;
  /** Worker threads the backend computes with (1 for single-threaded wasm and cpu). */
  threads: number;
  /** Why this backend was chosen, or why a preferred one was not. */
  reason?: string;
  /** wasm only: whether the SIMD build is running. */
  simd?: boolean;
  /** wasm only: ghn's gradient kernels are registered. */
  ghnKernels?: boolean;
}

const PREFERENCES: readonly BackendPreference[] = ['tensorflow', 'wasm', 'cpu', 'auto'];
const require = createRequire(import.meta.url);

let current: { preference: BackendPreference; info: Promise<BackendInfo> } | undefined;

export interface InitOptions {
  /**
   * Register tfjs's gradients (default true). Forward-only commands (`predict`) pass false and skip
   * loading them, see gradients.ts.
   */
  gradients?: boolean;
}

/**
 * Selects and initializes a backend. `preferred` wins over the `GHN_BACKEND` environment variable,
 * which wins over 'auto'. Idempotent: later calls return the first call's result (a later call
 * asking for a different explicit backend switches to it).
 */
export function initBackend(preferred?: BackendPreference, { gradients = true }: InitOptions = {}): Promise<BackendInfo> {
  const info = selectOnce(preferred);
  return gradients ? Promise.all([info, registerGradients()]).then(([selected]) => selected) : info;
}

function selectOnce(preferred: BackendPreference | undefined): Promise<BackendInfo> {
  const preference = resolvePreference(preferred);
  requestedWasmThreads(); // a malformed GHN_WASM_THREADS is a usage error, whichever backend is chosen
  if (current && (current.preference === preference || preferred === undefined)) return current.info;
  const info = select(preference);
  current = { preference, info };
  // A failed initialization must not be cached: the caller may fix the cause and retry.
  info.catch(() => { if (current?.info === info) current = undefined; });
  return info;
}

/** One line for command output, e.g. "backend: wasm (SIMD, 1 thread, ghn gradient kernels)". */
export function describeBackend(info: BackendInfo): string {
  const details: string[] = [];
  if (info.simd !== undefined) details.push(info.simd ? 'SIMD' : 'no SIMD');
  details.push(`${info.threads} thread${info.threads === 1 ? '' : 's'}`);
  if (info.ghnKernels) details.push('ghn gradient kernels');
  const base = `backend: ${info.name} (${details.join(', ')})`;
  return info.reason ? `${base}; ${info.reason}` : base;
}

function resolvePreference(preferred: BackendPreference | undefined): BackendPreference {
  if (preferred !== undefined) {
    if (!PREFERENCES.includes(preferred)) {
      throw new GhnError('usage', `unknown backend '${String(preferred)}' (expected one of ${PREFERENCES.join(', ')})`);
    }
    return preferred;
  }
  const fromEnv = process.env.GHN_BACKEND?.trim().toLowerCase();
  if (fromEnv) {
    if (!(PREFERENCES as readonly string[]).includes(fromEnv)) {
      throw new GhnError('usage', `GHN_BACKEND='${fromEnv}' is not a backend (expected one of ${PREFERENCES.join(', ')})`);
    }
    return fromEnv as BackendPreference;
  }
  return 'auto';
}

async function select(preference: BackendPreference): Promise<BackendInfo> {
  const notes: string[] = [];
  if (preference === 'tensorflow' || preference === 'auto') {
    for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
      const native = await tryNative(pkg);
      if (native.ok) return native.info;
      notes.push(native.why);
    }
    if (preference === 'tensorflow') {
      throw new GhnError('unsupported',
        'backend tensorflow needs @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu installed (' + notes.join('; ') + ')');
    }
  }
  if (preference === 'wasm' || preference === 'auto') {
    try {
      return { ...(await initWasm()), ...(notes.length ? { reason: 'native TensorFlow not installed' } : {}) };
    } catch (err) {
      if (preference === 'wasm') {
        throw new GhnError('unsupported', `wasm backend failed to initialize: ${(err as Error).message}`, { cause: err });
      }
      notes.push(`wasm failed: ${(err as Error).message}`);
    }
  }
  require('@tensorflow/tfjs-backend-cpu'); // registers 'cpu'
  await activate('cpu');
  const info: BackendInfo = { name: 'cpu', package: '@tensorflow/tfjs-backend-cpu', threads: 1 };
  if (preference === 'auto') info.reason = `fallback, very slow (${notes.join('; ')})`;
  return info;
}

type NativeAttempt = { ok: true; info: BackendInfo } | { ok: false; why: string };

async function tryNative(pkg: string): Promise<NativeAttempt> {
  try {
    require.resolve(pkg);
  } catch {
    return { ok: false, why: `${pkg} not installed` };
  }
  try {
    require(pkg);
    await activate('tensorflow');
    const threads = typeof navigator !== 'undefined' && navigator.hardwareConcurrency ? navigator.hardwareConcurrency : 1;
    return { ok: true, info: { name: 'tensorflow', package: pkg, threads } };
  } catch (err) {
    return { ok: false, why: `${pkg} failed to load: ${(err as Error).message.split('\n')[0]}` };
  }
}

async function initWasm(): Promise<BackendInfo> {
  // Through require, not import(): see tfjs-core.ts (an ES-module import of this 0.45 MB bundle costs ~30 ms more).
  const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
  // The .wasm binaries ship next to the package's entry point; loading them by file path works offline.
  const distDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  wasm.setWasmPaths(distDir + '/');
  // Under Node the package runs its single-threaded build (its thread check is false there);
  // GHN_WASM_THREADS=N (N ≥ 2) opts into its threaded build, see wasm-threads.ts.
  const requested = requestedWasmThreads();
  let threads = 0;
  if (requested > 1) {
    try {
      threads = await activateThreadedWasm(requested);
    } catch (err) {
      const why = String((err as Error)?.message ?? err).split('\n')[0];
      process.stderr.write(`ghn: warning: GHN_WASM_THREADS=${requested}: the threaded wasm build did not load (${why}); using 1 thread\n`);
    }
  }
  if (threads === 0) {
    await activate('wasm');
    threads = 1;
  }
  const { registerWasmKernels } = await import('./kernels/index.js');
  registerWasmKernels();
  const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
  return { name: 'wasm', package: '@tensorflow/tfjs-backend-wasm', threads, simd, ghnKernels: true };
}

async function activate(name: string): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok || tf.getBackend() !== name) throw new Error(`tf.setBackend('${name}') failed`);
  await tf.ready();
}
