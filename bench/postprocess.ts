/**
 * Diversity post-processing benchmark on ResNet-50's weight shapes (torchvision: 53 convs + fc
 * classifier + BN vectors), filled with random He-scaled values. Prints the median of 3 runs of
 * the whole model, the median time of the largest tensor alone, and the slowest shapes, for
 * `diversifyAsync` (float64 CholeskyQR on onnxruntime: what `ghn predict` runs), then `diversify` on
 * the float64 JS path (no tfjs backend yet) and on the tfjs path (wasm backend).
 * Usage: npx tsx bench/postprocess.ts [--tiled | --low-rank] [--ort-only] [--tf-only]
 * (--tiled: GHN-2 style tiled 64×64 blocks, rank-deficient; --low-rank: rank 32, like this project's
 * GHN decoder, cond ~1e4 after the noise; --ort-only / --tf-only: only that path).
 */
import os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { diversify, diversifyAsync, type DiversifySlot } from '../src/postprocess/diversify.js';
import { createRng, gaussian } from '../src/util/random.js';

const tiledValues = process.argv.includes('--tiled');
const lowRankValues = process.argv.includes('--low-rank');
const ortOnly = process.argv.includes('--ort-only');
const skipJs = process.argv.includes('--tf-only') || ortOnly;
const RUNS = 3;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function resnet50Slots(): DiversifySlot[] {
  const slots: DiversifySlot[] = [];
  const conv = (name: string, cOut: number, cIn: number, k: number) => {
    slots.push({ id: `${name}.weight`, role: 'conv.weight', shape: [cOut, cIn, k, k], isClassifier: false });
    slots.push({ id: `${name}.bn.scale`, role: 'norm.scale', shape: [cOut], isClassifier: false });
    slots.push({ id: `${name}.bn.shift`, role: 'norm.shift', shape: [cOut], isClassifier: false });
  };
  conv('conv1', 64, 3, 7);
  let inChannels = 64;
  for (const [stage, width, blocks] of [[1, 64, 3], [2, 128, 4], [3, 256, 6], [4, 512, 3]] as const) {
    for (let b = 0; b < blocks; b++) {
      const name = `layer${stage}.${b}`;
      conv(`${name}.conv1`, width, inChannels, 1);
      conv(`${name}.conv2`, width, width, 3);
      conv(`${name}.conv3`, 4 * width, width, 1);
      if (b === 0) conv(`${name}.downsample`, 4 * width, inChannels, 1);
      inChannels = 4 * width;
    }
  }
  slots.push({ id: 'fc.weight', role: 'linear.weight', shape: [1000, 2048], isClassifier: true });
  slots.push({ id: 'fc.bias', role: 'linear.bias', shape: [1000], isClassifier: true });
  return slots;
}

function fill(slot: DiversifySlot, seed: number): Float32Array {
  const rng = createRng(seed);
  const rows = slot.shape[0];
  const cols = slot.shape.slice(1).reduce((a, b) => a * b, 1);
  const scale = Math.sqrt(2 / Math.max(1, cols));
  const out = new Float32Array(rows * cols);
  if (lowRankValues && slot.shape.length >= 2) {
    // Rank-32 product U·V, He-scaled: what a low-rank GHN decoder emits.
    const rank = 32;
    const u = Float64Array.from({ length: rows * rank }, () => gaussian(rng) / Math.sqrt(rank));
    const v = Float64Array.from({ length: rank * cols }, () => scale * gaussian(rng));
    for (let r = 0; r < rows; r++) for (let k = 0; k < rank; k++) {
      const urk = u[r * rank + k];
      for (let c = 0; c < cols; c++) out[r * cols + c] += urk * v[k * cols + c];
    }
    return out;
  }
  if (!tiledValues || slot.shape.length < 2) {
    for (let i = 0; i < out.length; i++) out[i] = scale * gaussian(rng);
    return out;
  }
  const block = 64;
  const tile = Float64Array.from({ length: block * block }, () => scale * gaussian(rng));
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = tile[(r % block) * block + (c % block)];
  return out;
}

const slots = resnet50Slots();
const tensors = new Map(slots.map((slot, i) => [slot.id, fill(slot, i + 1)]));
const weights = slots.filter((s) => s.shape.length >= 2 && !s.isClassifier);
const elements = (s: DiversifySlot) => s.shape.reduce((a, b) => a * b, 1);
const largest = weights.reduce((a, b) => (elements(b) > elements(a) ? b : a));

// CPU time next to wall time: on a shared machine the wall clock also counts other processes.
const cpuMs = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
};

type Run = (tensors: Map<string, Float32Array>, slots: DiversifySlot[], options: { seed: number }) => Promise<{ report: { ms: number; processed: number } }>;
const syncRun: Run = async (t, s, o) => diversify(t, s, o);
const ortRun: Run = (t, s, o) => diversifyAsync(t, s, o);

/** Times the whole model, the largest tensor and each distinct shape with `run`. */
async function measure(path: string, run: Run): Promise<void> {
  const totals: number[] = [];
  const totalsCpu: number[] = [];
  let processed = 0;
  for (let r = 0; r < RUNS; r++) {
    const cpu = process.cpuUsage();
    const { report } = await run(tensors, slots, { seed: r });
    totalsCpu.push(cpuMs(cpu));
    totals.push(report.ms);
    processed = report.processed;
  }
  const largestTimes: number[] = [];
  const largestCpu: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const cpu = process.cpuUsage();
    largestTimes.push((await run(tensors, [largest], { seed: r })).report.ms);
    largestCpu.push(cpuMs(cpu));
  }
  // Per distinct shape, one timed call each: where the time goes.
  const byShape = new Map<string, { count: number; ms: number; cpu: number }>();
  for (const slot of weights) {
    const key = slot.shape.join('×');
    const cpu = process.cpuUsage();
    const ms = (await run(tensors, [slot], { seed: 1 })).report.ms;
    const entry = byShape.get(key) ?? { count: 0, ms: 0, cpu: 0 };
    entry.count++;
    entry.ms += ms;
    entry.cpu += cpuMs(cpu);
    byShape.set(key, entry);
  }
  console.log(`\n== ${path}: ${processed} tensors processed; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} cores`);
  console.log(`diversify total (noise 3e-5 + QR + keepScale), median of ${RUNS}: ${median(totals).toFixed(0)} ms wall, ${median(totalsCpu).toFixed(0)} ms CPU   [wall runs: ${totals.map((t) => t.toFixed(0)).join(', ')}; CPU runs: ${totalsCpu.map((t) => t.toFixed(0)).join(', ')}]`);
  console.log(`largest tensor ${largest.shape.join('×')}, median of ${RUNS}: ${median(largestTimes).toFixed(0)} ms wall, ${median(largestCpu).toFixed(0)} ms CPU`);
  console.log('shape                count  wall_ms   cpu_ms');
  for (const [shape, { count, ms, cpu }] of [...byShape].sort((a, b) => b[1].cpu - a[1].cpu).slice(0, 8)) {
    console.log(`${shape.padEnd(20)} ${String(count).padStart(5)}  ${ms.toFixed(0).padStart(7)}  ${cpu.toFixed(0).padStart(7)}`);
  }
}

console.log(`ResNet-50 weights (${tiledValues ? 'GHN-2 tiled' : lowRankValues ? 'rank-32' : 'random'} values): ${weights.length} weights, ${weights.reduce((s, w) => s + elements(w), 0)} values`);
// Before any backend is initialized diversify runs its float64 JS path; after, the tfjs products.
await measure('onnxruntime float64 path (diversifyAsync, as ghn predict runs it)', ortRun);
if (!skipJs) await measure('float64 JS path (no tfjs backend initialized)', syncRun);
if (!ortOnly) {
  const info = await initBackend('wasm');
  await measure(`tfjs path (backend ${tf.getBackend()}${info.simd ? ', SIMD' : ''})`, syncRun);
}
