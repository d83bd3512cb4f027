/**
 * Where a fine-tuning step's time goes: every kernel registered for wasm is wrapped with a timer
 * that records its EXCLUSIVE CPU time (process CPU time, so other jobs on a shared machine inflate
 * it less than wall time) (time in nested kernels — ghn's kernels composed of tf ops — is
 * charged to the nested kernel), then `finetune()` runs as bench/train.ts does. Time outside all
 * kernels (tape, tidy, JS glue, data batches) is reported as "outside kernels".
 *
 *   npx tsx bench/step-profile.ts [--steps 10] [--top 25] [--shapes Conv2D,Transpose] [model ...]
 */
import * as tf from '@tensorflow/tfjs-core';
import { loadFashionMnist } from '../src/data/index.js';
import { initBackend } from '../src/engine/backend.js';
import { readModelFile } from '../src/onnx/index.js';
import { finetune } from '../src/fine-tuning/finetune.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i < 0 ? fallback : Number(args.splice(i, 2)[1]);
};
const steps = flag('--steps', 10);
const top = flag('--top', 25);
/** Kernels whose rows are split by input shapes (`--shapes Conv2D,Transpose`). */
const shapeIdx = args.indexOf('--shapes');
const byShape = new Set(shapeIdx < 0 ? [] : args.splice(shapeIdx, 2)[1]!.split(','));
const models = args.length ? args : ['cnn_small', 'resnet_small'];

interface Tally { calls: number; ms: number }
const tallies = new Map<string, Tally>();
let recording = false;
/** Child time accumulated by the kernel frames currently running, innermost last. */
const childMs: number[] = [];

const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

function wrapAll(): void {
  for (const config of tf.getKernelsForBackend('wasm')) {
    const inner = config.kernelFunc;
    tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel({
      ...config,
      kernelFunc: (a) => {
        const t0 = cpuMs();
        childMs.push(0);
        try {
          return inner(a);
        } finally {
          const total = cpuMs() - t0;
          const own = total - childMs.pop()!;
          if (childMs.length) childMs[childMs.length - 1] += total;
          if (recording) {
            const key = byShape.has(config.kernelName)
              ? `${config.kernelName} ${Object.values(a.inputs).map((i) => `[${i?.shape}]`).join(' ')}`
              : config.kernelName;
            const t = tallies.get(key) ?? { calls: 0, ms: 0 };
            t.calls++;
            t.ms += own;
            tallies.set(key, t);
          }
        }
      },
    });
  }
}

await initBackend('wasm');
wrapAll();
const data = loadFashionMnist({ dir: 'fixtures/fashion-mnist', split: 'train' });
for (const name of models) {
  tallies.clear();
  const model = readModelFile(`fixtures/${name}.preserve13.onnx`);
  let t0 = 0, cpu0 = process.cpuUsage(), wall = 0, cpu = cpu0;
  await finetune(model, {
    data, steps: steps + 1, batch: 64,
    onProgress: (p) => {
      if (p.step === 1) { recording = true; t0 = performance.now(); cpu0 = process.cpuUsage(); }
      // Stop at the last step: the BN recalibration forwards that follow are not part of a step.
      if (p.step === steps + 1) { recording = false; wall = (performance.now() - t0) / steps; cpu = process.cpuUsage(cpu0); }
    },
  });
  const inKernels = [...tallies.values()].reduce((s, t) => s + t.ms, 0) / steps;
  const cpuStep = (cpu.user + cpu.system) / 1000 / steps;
  console.log(`\n${name}: ${wall.toFixed(1)} ms/step wall, ${cpuStep.toFixed(1)} CPU; kernels ${inKernels.toFixed(1)} CPU, outside kernels ${(cpuStep - inKernels).toFixed(1)} CPU`);
  const rows = [...tallies.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, top);
  for (const [k, t] of rows) console.log(`  ${k.padEnd(60)} ${(t.calls / steps).toFixed(0).padStart(5)} calls ${(t.ms / steps).toFixed(2).padStart(8)} ms`);
}
