/**
 * Training-step time through the executor at batch 64 (forward, backward, AdamW update, BN running
 * statistics: exactly what `finetune()` does per step) for the cnn_small, resnet_small and vit_small
 * fixtures, on wasm, and on the pure-JS cpu backend when one step fits under a time cap.
 * Effective GFLOP/s counts conv and matmul multiply-adds only, training = 3 × forward.
 *
 *   npx tsx bench/train.ts [--steps 10] [--cpu-cap-seconds 60] [--backends wasm,cpu] [model ...]
 *
 * GHN_WASM_THREADS=2 (or 3, …) times the opt-in threaded wasm backend.
 *
 * `--meta` instead times GHN meta-training (issue 18): whole steps of trainGhn at each meta-batch
 * of the shipped recipe (architectures × images per step), with 1 and 2 gradient processes, and
 * projects the wall time of replaying the recipe from nothing:
 *
 *   npx tsx bench/train.ts --meta [--meta-steps 20] [--warmup-steps 3] [--workers 1,2] [--ghn models/ghn-fmnist.ghn]
 */
import * as tf from '@tensorflow/tfjs-core';
import os from 'node:os';
import { loadFashionMnist } from '../src/data/index.js';
import { describeBackend, initBackend, type BackendPreference } from '../src/engine/backend.js';
import { GraphExecutor, type ObservedNode } from '../src/engine/executor.js';
import { readModelFile } from '../src/onnx/index.js';
import type { OnnxModel } from '../src/onnx/types.js';
import { finetune } from '../src/fine-tuning/finetune.js';
import { recordedRecipe } from '../src/api/ghn-training.js';
import { replaySegments } from '../src/meta-training/replay.js';
import { trainGhn } from '../src/meta-training/train.js';

const args = process.argv.slice(2);
if (args.includes('--meta')) {
  await metaThroughput(args.filter((a) => a !== '--meta'));
  process.exit(0);
}
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

/**
 * Meta-training throughput: for each meta-batch (architectures × images) of the recorded recipe,
 * `timed` whole steps of trainGhn after `warm` untimed ones, from a new GHN (the same work per step
 * as a trained one), drawing from a million architectures (every draw a new one, built in the step,
 * as in the shipped recipe's last 19,000 steps), no validation. Steps/min from the median step time
 * and from the timed steps' total; the replay projection sums each segment's steps at its meta-batch's
 * rate.
 */
async function metaThroughput(argv: string[]): Promise<void> {
  const get = (name: string, fallback: string) => {
    const i = argv.indexOf(name);
    return i < 0 ? fallback : argv[i + 1]!;
  };
  const timed = Number(get('--meta-steps', '20'));
  const warm = Number(get('--warmup-steps', '3'));
  const workerCounts = get('--workers', '1,2').split(',').map(Number);
  const ghnFile = get('--ghn', 'models/ghn-fmnist.ghn');
  const recipe = recordedRecipe(ghnFile);
  const segments = replaySegments(recipe);
  const configs = [...new Map(segments.map((s) => [`${s.metaBatch}x${s.images}`, { metaBatch: s.metaBatch, images: s.images }])).values()];
  const described = describeBackend(await initBackend('wasm'));
  const data = loadFashionMnist({ dir: 'fixtures/fashion-mnist', split: 'train' });
  const load = () => os.loadavg().map((l) => l.toFixed(1)).join(' ');
  const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2; };

  console.log(`meta-training throughput: npx tsx bench/train.ts --meta --meta-steps ${timed} --warmup-steps ${warm} --workers ${workerCounts.join(',')}`);
  console.log(`${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}; ${described}; recipe of ${ghnFile} (${recipe.steps} steps)`);
  console.log(`load average (1/5/15 min) at start: ${load()}`);
  const rows: Array<{ metaBatch: number; images: number; workers: number; medianSec: number; meanSec: number; cpuSec: number; loadAfter: string }> = [];
  for (const c of configs) {
    for (const workers of workerCounts) {
      const stepSec: number[] = [];
      const cpuSec: number[] = [];
      let lastCpu = 0;
      const result = await trainGhn({
        recipe: { steps: warm + timed, metaBatch: c.metaBatch, images: c.images, poolSize: 1_000_000, warmupSteps: 1 },
        data, valEvery: 0, workers,
        onProgress: (p) => {
          if (p.step > warm) { stepSec.push(p.stepSec!); cpuSec.push(p.cpuSec! - lastCpu); }
          lastCpu = p.cpuSec!;
        },
      });
      result.model.dispose();
      const meanSec = stepSec.reduce((a, b) => a + b, 0) / stepSec.length;
      rows.push({ ...c, workers, medianSec: median(stepSec), meanSec, cpuSec: median(cpuSec), loadAfter: load() });
    }
  }
  console.log('(CPU s/step: this process only, median; with 2 workers the child\'s share is not in it)');
  console.log('| architectures × images | workers | median s/step | meta-steps/min (median) | meta-steps/min (mean) | architecture-images/s (median) | CPU s/step | load average after |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    console.log(`| ${r.metaBatch} × ${r.images} | ${r.workers} | ${r.medianSec.toFixed(3)} | ${(60 / r.medianSec).toFixed(1)} | ${(60 / r.meanSec).toFixed(1)} | ` +
      `${((r.metaBatch * r.images) / r.medianSec).toFixed(0)} | ${r.cpuSec.toFixed(3)} | ${r.loadAfter} |`);
  }
  for (const workers of workerCounts) {
    const at = (s: (typeof segments)[number], key: 'medianSec' | 'meanSec' | 'cpuSec') =>
      rows.find((r) => r.workers === workers && r.metaBatch === s.metaBatch && r.images === s.images)![key];
    const hours = (key: 'medianSec' | 'meanSec' | 'cpuSec') => segments.reduce((t, s) => t + (s.stopAt - s.from) * at(s, key), 0) / 3600;
    console.log(`replay of the recipe from nothing (${segments.length} segments, ${recipe.steps} steps), ${workers} worker${workers > 1 ? 's' : ''}: ` +
      `${hours('medianSec').toFixed(1)} h at the median step times, ${hours('meanSec').toFixed(1)} h at the mean` +
      // One process's CPU time per step is what the step costs on a core of its own: the shared-machine-proof figure.
      (workers === 1 ? `, ${hours('cpuSec').toFixed(1)} h at its CPU time per step` : ''));
  }
}
