/**
 * ms per SGD step of four reference models on the wasm backend (with ghn's kernels) and on the
 * cpu backend where a step finishes within a cap. Run: npx tsx bench/kernels.ts [--cpu] [--profile]
 *   --cpu       also time the pure-JS cpu backend (warm-up + one step per model, killed at CPU_CAP_MS)
 *   --profile   print the slowest kernels of one wasm step per model
 */
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describeBackend, initBackend } from '../src/engine/backend.js';
import { batchNormTrain, layerNorm } from '../src/engine/kernels/index.js';

/** Wall-clock cap for the cpu backend (warm-up step + timed step, in a child process). */
const CPU_CAP_MS = 60_000;
const WARMUP = 2;
const STEPS = 8;

interface Model {
  name: string;
  batch: number;
  /** forward FLOPs per example (multiply-adds × 2); a training step is counted as 3× forward. */
  flopsPerExample: number;
  params: tf.Variable[];
  makeBatch(): { x: tf.Tensor; y: tf.Tensor };
  loss(x: tf.Tensor, y: tf.Tensor): tf.Scalar;
}

let seed = 1;
const variable = (shape: number[], fanIn: number): tf.Variable =>
  tf.variable(tf.mul(tf.randomNormal(shape, 0, 1, 'float32', seed++), Math.sqrt(2 / fanIn)));
const zeros = (shape: number[]): tf.Variable => tf.variable(tf.zeros(shape));
const ones = (shape: number[]): tf.Variable => tf.variable(tf.ones(shape));

function crossEntropy(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
}

function oneHotBatch(batch: number, classes: number): tf.Tensor {
  return tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % classes), 'int32'), classes);
}

const convFlops = (outH: number, outW: number, k: number, cin: number, cout: number) => 2 * outH * outW * k * k * cin * cout;

function tinyCnn(): Model {
  const w1 = variable([3, 3, 1, 32], 9), b1 = zeros([32]);
  const w2 = variable([3, 3, 32, 64], 9 * 32), b2 = zeros([64]);
  const w3 = variable([64, 10], 64), b3 = zeros([10]);
  return {
    name: 'tiny CNN (conv32-pool-conv64-mean-dense, 28×28×1)', batch: 64,
    flopsPerExample: convFlops(28, 28, 3, 1, 32) + convFlops(14, 14, 3, 32, 64) + 2 * 64 * 10,
    params: [w1, b1, w2, b2, w3, b3],
    makeBatch: () => ({ x: tf.randomNormal([64, 28, 28, 1]), y: oneHotBatch(64, 10) }),
    loss: (x, y) => {
      let h = tf.relu(tf.add(tf.conv2d(x as tf.Tensor4D, w1, 1, 'same'), b1)) as tf.Tensor4D;
      h = tf.maxPool(h, 2, 2, 'valid');
      h = tf.relu(tf.add(tf.conv2d(h, w2, 1, 'same'), b2)) as tf.Tensor4D;
      const pooled = tf.mean(h, [1, 2]) as tf.Tensor2D;
      return crossEntropy(tf.add(tf.matMul(pooled, w3), b3), y);
    },
  };
}

function mlp(): Model {
  const dims = [784, 256, 256, 10];
  const ws = dims.slice(1).map((d, i) => variable([dims[i]!, d], dims[i]!));
  const bs = dims.slice(1).map((d) => zeros([d]));
  return {
    name: 'MLP 784-256-256-10 (batch 256)', batch: 256,
    flopsPerExample: 2 * (784 * 256 + 256 * 256 + 256 * 10),
    params: [...ws, ...bs],
    makeBatch: () => ({ x: tf.randomNormal([256, 784]), y: oneHotBatch(256, 10) }),
    loss: (x, y) => {
      let h = x;
      ws.forEach((w, i) => {
        h = tf.add(tf.matMul(h, w), bs[i]!);
        if (i < ws.length - 1) h = tf.relu(h);
      });
      return crossEntropy(h, y);
    },
  };
}

/**
 * ResNet for 28×28×1: stem conv16, stages 16/32/64 of `blocksPerStage` basic blocks (two 3×3
 * convs + BN each, 1×1 projection when the shape changes), GAP, dense. 1 block/stage = ResNet-8,
 * 2 = ResNet-14.
 */
function smallResNet(blocksPerStage: number): Model {
  const params: tf.Variable[] = [];
  let flops = 0;
  const conv = (k: number, cin: number, cout: number, hw: number) => {
    const w = variable([k, k, cin, cout], k * k * cin);
    params.push(w);
    flops += convFlops(hw, hw, k, cin, cout);
    return w;
  };
  const bn = (c: number) => {
    const g = ones([c]), b = zeros([c]);
    params.push(g, b);
    return (x: tf.Tensor4D) => batchNormTrain(x, g, b, 1e-5).y;
  };
  const stem = conv(3, 1, 16, 28), stemBn = bn(16);
  type Block = (x: tf.Tensor4D) => tf.Tensor4D;
  const blocks: Block[] = [];
  let cin = 16, hw = 28;
  for (const [stage, cout] of [16, 32, 64].entries()) {
    for (let i = 0; i < blocksPerStage; i++) {
      const stride = stage > 0 && i === 0 ? 2 : 1;
      const outHw = hw / stride;
      const w1 = conv(3, cin, cout, outHw), bn1 = bn(cout);
      const w2 = conv(3, cout, cout, outHw), bn2 = bn(cout);
      const proj = stride !== 1 || cin !== cout ? { w: conv(1, cin, cout, outHw), bn: bn(cout) } : undefined;
      blocks.push((x) => {
        let h = tf.relu(bn1(tf.conv2d(x, w1, stride, 'same')));
        h = bn2(tf.conv2d(h, w2, 1, 'same'));
        const skip = proj ? proj.bn(tf.conv2d(x, proj.w, stride, 'same')) : x;
        return tf.relu(tf.add(h, skip));
      });
      cin = cout;
      hw = outHw;
    }
  }
  const wf = variable([64, 10], 64), bf = zeros([10]);
  params.push(wf, bf);
  return {
    name: `small ResNet-${2 + 6 * blocksPerStage} (16/32/64, ${blocksPerStage} block/stage, BN)`, batch: 64, flopsPerExample: flops, params,
    makeBatch: () => ({ x: tf.randomNormal([64, 28, 28, 1]), y: oneHotBatch(64, 10) }),
    loss: (x, y) => {
      let h = tf.relu(stemBn(tf.conv2d(x as tf.Tensor4D, stem, 1, 'same')));
      for (const block of blocks) h = block(h);
      return crossEntropy(tf.add(tf.matMul(tf.mean(h, [1, 2]) as tf.Tensor2D, wf), bf), y);
    },
  };
}

/**
 * Pre-LN transformer block as in a small ViT on 28×28 images: 64 sequences of 49 tokens (4×4
 * patches), d=64, 4 heads, MLP 256. (Inputs are random token embeddings; the patch embedding is
 * a plain matMul and not part of the block.)
 */
function transformerBlock(): Model {
  const B = 64, T = 49, D = 64, H = 4, F = 256;
  const dh = D / H;
  const wqkv = variable([D, 3 * D], D), wo = variable([D, D], D);
  const w1 = variable([D, F], D), b1 = zeros([F]), w2 = variable([F, D], F), b2 = zeros([D]);
  const g1 = ones([D]), be1 = zeros([D]), g2 = ones([D]), be2 = zeros([D]);
  const head = variable([D, 10], D);
  const flops = 2 * T * (D * 3 * D + D * D + 2 * D * F) + 2 * 2 * H * T * T * dh;
  return {
    name: 'transformer block (64×49 tokens, d64, 4 heads, MLP 256)', batch: B, flopsPerExample: flops,
    params: [wqkv, wo, w1, b1, w2, b2, g1, be1, g2, be2, head],
    makeBatch: () => ({ x: tf.randomNormal([B, T, D]), y: oneHotBatch(B, 10) }),
    loss: (x, y) => {
      const rows = tf.reshape(x, [B * T, D]);
      const qkv = tf.matMul(layerNorm(rows, g1, be1, 1e-5), wqkv);
      const split = (i: number) => tf.transpose(tf.reshape(tf.slice(qkv, [0, i * D], [B * T, D]), [B, T, H, dh]), [0, 2, 1, 3]);
      const q = tf.reshape(split(0), [B * H, T, dh]);
      const k = tf.reshape(split(1), [B * H, T, dh]);
      const v = tf.reshape(split(2), [B * H, T, dh]);
      const att = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)));
      const ctx = tf.reshape(tf.transpose(tf.reshape(tf.matMul(att, v), [B, H, T, dh]), [0, 2, 1, 3]), [B * T, D]);
      const h1 = tf.add(rows, tf.matMul(ctx, wo));
      const m = tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(layerNorm(h1, g2, be2, 1e-5), w1), b1)), w2), b2);
      const h2 = tf.add(h1, m);
      const pooled = tf.mean(tf.reshape(h2, [B, T, D]), 1) as tf.Tensor2D;
      return crossEntropy(tf.matMul(pooled, head), y);
    },
  };
}

function sgdStep(model: Model, x: tf.Tensor, y: tf.Tensor, lr: number): number {
  return tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => model.loss(x, y), model.params);
    for (const p of model.params) p.assign(tf.sub(p, tf.mul(grads[p.name]!, lr)));
    return value.dataSync()[0]!;
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * Median wall and CPU ms per step, and the least CPU ms of any step. CPU time is the fairer figure
 * when other work shares the cores; the minimum is the closest to an uncontended step.
 */
async function timeSteps(model: Model, steps: number, warmup: number): Promise<{ wall: number; cpu: number; cpuMin: number }> {
  const { x, y } = model.makeBatch();
  for (let i = 0; i < warmup; i++) sgdStep(model, x, y, 1e-3);
  const wall: number[] = [], cpu: number[] = [];
  for (let i = 0; i < steps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const loss = sgdStep(model, x, y, 1e-3);
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
    if (!Number.isFinite(loss)) throw new Error(`${model.name}: loss became ${loss}`);
  }
  x.dispose();
  y.dispose();
  return { wall: median(wall), cpu: median(cpu), cpuMin: Math.min(...cpu) };
}

function report(backend: string, model: Model, t: { wall: number; cpu: number; cpuMin: number }): void {
  const gflop = (3 * model.flopsPerExample * model.batch) / 1e9;
  console.log(`${backend.padEnd(5)} ${model.name.padEnd(58)} ${t.wall.toFixed(1).padStart(8)} ms/step wall, ${t.cpu.toFixed(1).padStart(7)} ms CPU (min ${t.cpuMin.toFixed(1)}) | ` +
    `${gflop.toFixed(2)} GFLOP/step → ${(gflop / t.wall * 1e3).toFixed(1)} GFLOP/s wall, ${(gflop / t.cpu * 1e3).toFixed(1)} per CPU-s`);
}

async function profile(model: Model): Promise<void> {
  const { x, y } = model.makeBatch();
  sgdStep(model, x, y, 1e-3);
  const info = await tf.profile(() => { sgdStep(model, x, y, 1e-3); });
  const byKernel = new Map<string, number>();
  for (const k of info.kernels) byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + (k.kernelTimeMs as number));
  const top = [...byKernel.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12);
  console.log('    slowest kernels: ' + top.map(([n, ms]) => `${n} ${ms.toFixed(1)}`).join(', '));
  x.dispose();
  y.dispose();
}

const builders = [tinyCnn, mlp, () => smallResNet(1), () => smallResNet(2), transformerBlock];
const withCpu = process.argv.includes('--cpu');
const withProfile = process.argv.includes('--profile');
const cpuChildIndex = process.argv.indexOf('--cpu-child');

if (cpuChildIndex >= 0) {
  // Child mode: time one model on the cpu backend; the parent kills us at the cap.
  await initBackend('cpu');
  const model = builders[Number(process.argv[cpuChildIndex + 1])]!();
  report('cpu', model, await timeSteps(model, 1, 1));
} else {
  const info = await initBackend('wasm');
  console.log(describeBackend(info));
  console.log(calibrate());
  for (const build of builders) {
    const model = build();
    report('wasm', model, await timeSteps(model, STEPS, WARMUP));
    if (withProfile) await profile(model);
    for (const p of model.params) p.dispose();
  }
  if (withCpu) {
    for (const [i, build] of builders.entries()) {
      const line = timeCpuInChild(i);
      if (line) console.log(line);
      else console.log(`cpu   ${nameOf(build).padEnd(58)} > ${CPU_CAP_MS / 1000} s for warm-up + 1 step (killed at the cap)`);
    }
  }
}

/**
 * The machine may be shared: report the backend's best-case rate (one forward conv, XNNPACK) in
 * the same conditions, so step times can be read relative to it.
 */
function calibrate(): string {
  const x = tf.randomNormal([64, 14, 14, 32]) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, 32, 64]) as tf.Tensor4D;
  const flop = 2 * 64 * 14 * 14 * 9 * 32 * 64;
  // (tidy must not return the typed array: tidy walks returned containers element by element.)
  const once = () => tf.tidy(() => { tf.conv2d(x, w, 1, 'same').dataSync(); });
  for (let i = 0; i < 3; i++) once();
  const reps = 10;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) once();
  const wall = (performance.now() - t0) / reps;
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1000 / reps;
  tf.dispose([x, w]);
  return `calibration: forward conv 64×14×14×32→64 (3×3): ${(flop / wall / 1e6).toFixed(1)} GFLOP/s wall, ` +
    `${(flop / cpu / 1e6).toFixed(1)} per CPU-s (idle 2-core machine: ~20–25)`;
}

function nameOf(build: () => Model): string {
  const model = build();
  for (const p of model.params) p.dispose();
  return model.name;
}

/** The pure-JS cpu backend cannot be interrupted mid-step, so it runs in a child process with a time limit. */
function timeCpuInChild(index: number): string | undefined {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--cpu-child', String(index)], {
    encoding: 'utf8', timeout: CPU_CAP_MS, maxBuffer: 1 << 24,
  });
  if (r.error || r.status !== 0) return undefined;
  return r.stdout.split('\n').find((l) => l.startsWith('cpu '));
}
