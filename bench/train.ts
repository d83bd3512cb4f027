/**
 * Training-step time through the executor at batch 64 (forward, backward, AdamW update, BN running
 * statistics: exactly what `finetune()` does per step) for the cnn_small, resnet_small and vit_small
 * fixtures, on wasm, and on the pure-JS cpu backend when one step fits under a time cap.
 * Effective GFLOP/s counts conv and matmul multiply-adds only, training = 3 × forward.
 *
 *   npx tsx bench/train.ts [--steps 10] [--cpu-cap-seconds 60] [--backends wasm,cpu] [model ...]
 *
 * GHN_WASM_THREADS=2 (or 3, …) times the opt-in threaded wasm backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import os from 'node:os';
import { loadFashionMnist } from '../src/data/index.js';
import { describeBackend, initBackend, type BackendPreference } from '../src/engine/backend.js';
import { GraphExecutor, type ObservedNode } from '../src/engine/executor.js';
import { readModelFile } from '../src/onnx/index.js';
import type { OnnxModel } from '../src/onnx/types.js';
import { finetune } from '../src/fine-tuning/finetune.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(args.splice(i, 2)[1]);
  return v;
};
const option = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i < 0 ? fallback : args.splice(i, 2)[1]!;
};
const steps = flag('--steps', 10);
const backends = option('--backends', 'wasm,cpu').split(',') as BackendPreference[];
const cpuCap = flag('--cpu-cap-seconds', 60);
const models = args.length ? args : ['cnn_small', 'resnet_small', 'vit_small'];
const BATCH = 64;

const product = (xs: number[]) => xs.reduce((a, b) => a * b, 1);

/** Multiply-add FLOPs (×2) of convolutions and matrix products in one forward pass. */
const FLOPS: Record<string, (n: ObservedNode) => number> = {
  Conv: (n) => {
    const w = n.inputShapes[1]!;
    return 2 * product(n.outputShapes[0]) * product(w.slice(1));
  },
  MatMul: (n) => {
    const a = n.inputShapes[0]!;
    return 2 * product(n.outputShapes[0]) * a[a.length - 1];
  },
  Gemm: (n) => {
    const a = n.inputShapes[0]!;
    const transA = Number(n.attributes.get('transA')?.i ?? 0) === 1;
    return 2 * product(n.outputShapes[0]) * (transA ? a[0] : a[1]);
  },
};

function forwardFlops(model: OnnxModel): number {
  const executor = new GraphExecutor(model);
  const x = tf.zeros([BATCH, 1, 28, 28]);
  let flops = 0;
  const { outputs } = executor.run(x, { observe: (n) => { flops += FLOPS[n.opType]?.(n) ?? 0; } });
  tf.dispose([x, ...outputs]);
  executor.dispose();
  return flops;
}

interface Row { model: string; backend: string; msPerStep: number | undefined; cpuMsPerStep?: number; gflops: number; note: string }

/** finetune() timed by wall clock and by this process's CPU time, excluding the first step. */
async function timedFinetune(model: OnnxModel, data: ReturnType<typeof loadFashionMnist>, total: number) {
  let cpuAtFirst = process.cpuUsage();
  let cpuAtEnd = cpuAtFirst;
  const r = await finetune(model, {
    data, steps: total, batch: BATCH,
    onProgress: (p) => {
      if (p.step === 1) cpuAtFirst = process.cpuUsage();
      if (p.step === total) cpuAtEnd = process.cpuUsage(cpuAtFirst);
    },
  });
  return { msPerStep: r.msPerStep, cpuMsPerStep: (cpuAtEnd.user + cpuAtEnd.system) / 1000 / (total - 1) };
}

async function measure(name: string, backend: BackendPreference, data: ReturnType<typeof loadFashionMnist>): Promise<Row> {
  const model = readModelFile(`fixtures/${name}.preserve13.onnx`);
  const flops = 3 * forwardFlops(model);
  if (backend === 'cpu') {
    // One forward pass predicts whether a step (≈ 3 forwards) fits under the cap.
    const executor = new GraphExecutor(model);
    const x = tf.zeros([BATCH, 1, 28, 28]);
    const t0 = performance.now();
    const { outputs } = executor.run(x, { training: true });
    outputs[0].dataSync();
    const forwardMs = performance.now() - t0;
    tf.dispose([x, ...outputs]);
    executor.dispose();
    // A cpu-backend step costs far more than 3 forwards (its convolution gradients are naive loops).
    if (40 * forwardMs > cpuCap * 1000) {
      return { model: name, backend, msPerStep: undefined, gflops: flops / 1e9, note: `skipped: forward alone ${(forwardMs / 1000).toFixed(1)} s` };
    }
    const r = await timedFinetune(model, data, 2);
    return { model: name, backend, ...r, gflops: flops / 1e9, note: '1 timed step' };
  }
  const r = await timedFinetune(model, data, steps + 1);
  return { model: name, backend, ...r, gflops: flops / 1e9, note: `mean of ${steps} steps after 1 warm-up` };
}

const data = loadFashionMnist({ dir: 'fixtures/fashion-mnist', split: 'train' });
const rows: Row[] = [];
const described: string[] = [];
for (const backend of backends) {
  described.push(describeBackend(await initBackend(backend)));
  for (const name of models) rows.push(await measure(name, backend, data));
}

console.log(`training step, batch ${BATCH}, AdamW, BN batch statistics; load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores`);
console.log('(CPU ms = this process\'s CPU time per step: what the step costs when the machine is shared)');
for (const line of described) console.log(line);
console.log('| model | backend | wall ms/step | CPU ms/step | GFLOP/step | effective GFLOP/s (wall) | note |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) {
  const ms = r.msPerStep === undefined ? '—' : r.msPerStep.toFixed(0);
  const cpu = r.cpuMsPerStep === undefined ? '—' : r.cpuMsPerStep.toFixed(0);
  const rate = r.msPerStep === undefined ? '—' : (r.gflops / (r.msPerStep / 1000)).toFixed(1);
  console.log(`| ${r.model} | ${r.backend} | ${ms} | ${cpu} | ${r.gflops.toFixed(2)} | ${rate} | ${r.note} |`);
}
