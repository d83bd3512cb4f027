/**
 * Opt-in multithreaded wasm backend (GHN_WASM_THREADS=N, or `ghn --threads N`; default 1).
 *
 * tfjs-backend-wasm ships a threaded-SIMD build but never uses it under Node. Three things stand in
 * the way; each is worked around here, for the duration of backend initialization only:
 *   1. its multithreading flag is hard-wired to false under Node → set to true;
 *   2. it starts its pthread workers from Blob URLs, which Node's worker_threads reject → while the
 *      module starts, worker_threads.Worker is swapped for a subclass that runs the package's own
 *      worker script as eval'd source, told to load the threaded glue from its file path;
 *   3. its C++ caps the XNNPACK pool at half of os.cpus() (assuming two hyper-threads per core),
 *      i.e. 1 thread on a 2-vCPU machine → os.cpus() reports 2·N entries while the module starts.
 * Everything is read from the installed package (no network, no temporary files).
 *
 * Not the default: on this 2-core machine a second thread helps only when a core is free; under load
 * (other processes on both cores) the pool's threads wait for each other and steps get slower.
 */
import * as tf from './tfjs-core.js';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import vm from 'node:vm';
import workerThreads from 'node:worker_threads';
import { GhnError } from '../errors.js';

const require = createRequire(import.meta.url);

/** The emscripten build pre-creates a pool of 8 pthread workers; more would be spawned on demand. */
export const MAX_WASM_THREADS = 8;

/** The worker script's branch that loads the glue from a URL or a Blob, replaced by a load by path. */
const BLOB_LOADER =
  'if(typeof e.data.urlOrBlob=="string"){importScripts(e.data.urlOrBlob)}else{var objectUrl=URL.createObjectURL(e.data.urlOrBlob);importScripts(objectUrl);URL.revokeObjectURL(objectUrl)}';

let poolThreads = 1;

/** Threads of the active wasm backend's XNNPACK pool (1 unless the threaded build is running). */
export function wasmPoolThreads(): number {
  return poolThreads;
}

/** Parses a thread count (from GHN_WASM_THREADS or --threads); a bad value is a usage error. */
export function parseWasmThreads(raw: string, source: string): number {
  const n = Number(raw.trim());
  if (raw.trim() === '' || !Number.isInteger(n) || n < 1 || n > MAX_WASM_THREADS) {
    throw new GhnError('usage', `${source}='${raw}' must be an integer from 1 to ${MAX_WASM_THREADS}`);
  }
  return n;
}

/** Threads requested through GHN_WASM_THREADS (1 when unset or empty). */
export function requestedWasmThreads(): number {
  const raw = process.env.GHN_WASM_THREADS;
  return raw === undefined || raw.trim() === '' ? 1 : parseWasmThreads(raw, 'GHN_WASM_THREADS');
}

/** The package's pthread worker script, patched to load the threaded glue by file path. */
function workerSource(packageDir: string): string {
  const glue = join(packageDir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.js');
  const binary = join(packageDir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.wasm');
  const { wasmWorkerContents } = require(join(packageDir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.worker.js')) as { wasmWorkerContents: string };
  if (typeof wasmWorkerContents !== 'string' || !wasmWorkerContents.includes(BLOB_LOADER) || !fs.existsSync(glue) || !fs.existsSync(binary)) {
    const version = (require(join(packageDir, 'package.json')) as { version: string }).version;
    throw new Error(`@tensorflow/tfjs-backend-wasm ${version} is not a version ghn knows how to run threaded`);
  }
  // The package escapes newlines the same way before making its Blob (they sit inside string literals).
  const source = wasmWorkerContents.replace(BLOB_LOADER, `importScripts(${JSON.stringify(glue)});`).replace(/\n/g, '\\n');
  // A worker that fails to start makes emscripten throw from an event handler, which would end the
  // process instead of falling back: check here that the patched script at least compiles.
  new vm.Script(source, { filename: 'tfjs-backend-wasm-threaded-simd.worker.js' });
  return source;
}

interface PThreadWorker { unref(): void }
interface EmscriptenPThread { runningWorkers: PThreadWorker[]; unusedWorkers: PThreadWorker[] }

/** The emscripten PThread registry of the active wasm backend (undefined for a single-threaded build). */
function pthreads(): EmscriptenPThread | undefined {
  const backend = tf.findBackend('wasm') as unknown as { wasm?: { PThread?: EmscriptenPThread } } | null;
  return backend?.wasm?.PThread;
}

/**
 * Activates the 'wasm' backend with `threads` XNNPACK threads (threads ≥ 2) instead of
 * tf.setBackend('wasm'); returns the thread count the backend reports. Throws (leaving the
 * single-threaded build loadable) when the threaded build cannot start.
 */
export async function activateThreadedWasm(threads: number): Promise<number> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const packageDir = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '..');
  const source = workerSource(packageDir);

  const NodeWorker = workerThreads.Worker;
  // Ignores the Blob URL emscripten passes; execArgv [] because the worker is plain JS and must not
  // inherit the parent's loader or --input-type flags (tsx, `node -e`), which a worker rejects.
  class PthreadWorker extends NodeWorker {
    constructor(_url: string | URL, options: workerThreads.WorkerOptions = {}) {
      super(source, { ...options, eval: true, execArgv: [] });
    }
  }
  const cpus = os.cpus;
  const fakeCpus = () => {
    const real = cpus();
    return Array.from({ length: 2 * threads }, (_, i) => real[i % real.length]!);
  };
  const mutableWorkerThreads = workerThreads as { Worker: typeof NodeWorker };
  const mutableOs = os as { cpus: typeof os.cpus };
  try {
    mutableWorkerThreads.Worker = PthreadWorker;
    mutableOs.cpus = fakeCpus;
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    wasm.setThreadsCount(threads);
    const ok = await tf.setBackend('wasm');
    if (!ok || tf.getBackend() !== 'wasm') throw new Error("tf.setBackend('wasm') failed with the threaded build");
    await tf.ready();
  } catch (err) {
    // Leave the package able to start its single-threaded build instead.
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    wasm.setThreadsCount(-1);
    throw err;
  } finally {
    mutableWorkerThreads.Worker = NodeWorker;
    mutableOs.cpus = cpus;
  }
  // emscripten ref()s every worker running a pthread; the XNNPACK pool's threads run (idle) for the
  // life of the process, so without this Node would never exit. The pool is driven through shared
  // memory, not messages, so unref'd workers still compute; Node stops them at exit.
  const registry = pthreads();
  for (const w of [...(registry?.runningWorkers ?? []), ...(registry?.unusedWorkers ?? [])]) w.unref();
  poolThreads = wasm.getThreadsCount();
  return poolThreads;
}
