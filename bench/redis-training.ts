/**
 * Meta-training over Redis (issue 22) on loopback: a redis-server started here, the coordinator
 * in this process (trainGhn with RedisCoordinator), 1, 2 and 3 `ghn worker` processes. Prints per
 * step: wall time (median over the steps after the warm-up), where the coordinator's time went
 * (publish, wait for the shares, collect), each architecture's compute time as its worker measured
 * it, the bytes the coordinator stored and fetched, and the bytes Redis itself counted in and out
 * (INFO stats). The single-process step of the same recipe is timed too, for reference.
 *
 * From those costs, a speed-up model for N machines that follows what redis-coordinator.ts does,
 * simulated (stepTime below) rather than a closed formula, because architectures' compute times are
 * skewed and the busiest worker decides the step: the coordinator's own work outside the wait
 * (weights encoded and stored, jobs added, the gradient's tensors, AdamW, the draw: a + b·B, fitted
 * from the 1-worker runs at two meta-batches); the weights (W bytes) up to Redis once and down to
 * each busy worker; B jobs, each an architecture's compute drawn from the measured ones plus the
 * per-job overhead (the 1-worker wait less compute and the last share's intake, per job), taken
 * by whichever worker is free first as BullMQ hands them out; each share (S bytes) up from its
 * worker; and the coordinator taking in each share (down the link, fetch, decode, add in drawing
 * order: f seconds measured) as soon as it is stored, one at a time, overlapped with the jobs still
 * running, so that only the last ones to finish are taken in after the last compute. Every blob
 * crosses Redis's one link at bandwidth bw. efficiency(N) = T(1) / (N·T(N)), T the mean step time.
 * Compute is taken as the workers' CPU seconds per job (what a machine of its own would take; on
 * this shared one wall time also counts the other processes). On loopback (bw = ∞), with each run's
 * own wall compute times, the model's T is printed beside the measured one. It prints the efficiency
 * for 1..8 workers at the shipped meta-batch and the smallest meta-batch at which it stays ≥ 0.8
 * for every N ≤ 8.
 *
 *   npx tsx bench/redis-training.ts [--steps 20] [--warmup 3] [--meta-batch 4] [--fit-meta-batch 16] [--images 32] [--workers 1,2,3]
 *     [--save FILE | --load FILE]
 *
 * (the second meta-batch far from the first: b, the coordinator's cost per architecture, is a
 * difference of two noisy step times divided by their meta-batches' difference).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { trainValidationSplit } from '../src/api/ghn-training.js';
import { loadTrainTest, resolveDataset } from '../src/data/index.js';
import { describeBackend, initBackend } from '../src/engine/backend.js';
import { RedisCoordinator, type StepTraffic } from '../src/meta-training/redis-coordinator.js';
import { trainGhn, type TrainProgress } from '../src/meta-training/train.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i < 0 ? fallback : args[i + 1]!;
};
const steps = Number(flag('--steps', '20'));
const warmup = Number(flag('--warmup', '3'));
const metaBatch = Number(flag('--meta-batch', '4'));
const fitMetaBatch = Number(flag('--fit-meta-batch', '16'));
const images = Number(flag('--images', '32'));
const workerCounts = flag('--workers', '1,2,3').split(',').map(Number);
const CLI = path.resolve('src/cli/main.ts');

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

interface Measured {
  label: string;
  b: number;
  workers: number;
  stepSec: number;
  traffic?: {
    publish: number; wait: number; collect: number; sum: number; arch: number; weightBytes: number; shareBytes: number; redisIn: number; redisOut: number;
    /** The measured steps one by one, and every architecture's compute seconds, for the model. */
    steps: { stepSec: number; traffic: StepTraffic }[];
  };
}

/** Runs everything on a redis-server of its own; --save FILE keeps the figures, --load FILE models them again without running. */
async function measure(): Promise<{ lines: string[]; runs: Measured[]; fit: Measured }> {
  const lines: string[] = [];
  const port = await freePort();
  const redisServer = spawn('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  const probe = new Redis(url, { maxRetriesPerRequest: null, retryStrategy: () => 100 });
  probe.on('error', () => {}); // refused until redis-server listens: retried
  await probe.ping();

  const backend = describeBackend(await initBackend());
  const { train: full } = loadTrainTest(resolveDataset('fashion-mnist'), { test: false });
  const { train } = trainValidationSplit(full);
  const recipeOf = (b: number) => ({ steps, metaBatch: b, images, poolSize: 1_000_000, warmupSteps: 1 });

  async function netBytes(): Promise<{ input: number; output: number }> {
    const info = await probe.info('stats');
    const get = (k: string) => Number(new RegExp(`${k}:(\\d+)`).exec(info)![1]);
    return { input: get('total_net_input_bytes'), output: get('total_net_output_bytes') };
  }


  async function serial(b: number): Promise<Measured> {
    const history: TrainProgress[] = [];
    const r = await trainGhn({ recipe: recipeOf(b), data: train, valEvery: 0, onProgress: (p) => history.push(p) });
    r.model.dispose();
    return { label: 'one process (no Redis)', b, workers: 0, stepSec: median(history.slice(warmup).map((p) => p.stepSec!)) };
  }

  async function overRedis(b: number, workers: number): Promise<Measured> {
    const run = `bench-b${b}-w${workers}`;
    const opened = await RedisCoordinator.open({ url, run });
    let coordinator: RedisCoordinator | undefined;
    const traffic: StepTraffic[] = [];
    const history: TrainProgress[] = [];
    const children: ChildProcess[] = [];
    let before = await netBytes();
    const result = await trainGhn({
      recipe: recipeOf(b), data: train, valEvery: 0,
      distribute: async (r) => {
        coordinator = (await opened.distribute(r)) as RedisCoordinator;
        for (let i = 0; i < workers; i++) {
          children.push(spawn(process.execPath, ['--import', 'tsx', CLI, 'worker', '--redis', url, '--run', run], { stdio: 'ignore' }));
        }
        return coordinator;
      },
      onProgress: (p) => {
        history.push(p);
        traffic.push(coordinator!.lastTraffic!);
        // Redis's own byte counts from the first measured step on (workers joined and loaded by then).
        if (p.step === warmup) void netBytes().then((n) => { before = n; });
      },
    });
    result.model.dispose();
    const after = await netBytes();
    await Promise.all(children.map((c) => new Promise((resolve) => (c.exitCode === null ? c.on('exit', resolve) : resolve(null)))));
    const measured = traffic.slice(warmup);
    const per = steps - warmup;
    return {
      label: `Redis, ${workers} worker${workers > 1 ? 's' : ''}`, b, workers, stepSec: median(history.slice(warmup).map((p) => p.stepSec!)),
      traffic: {
        publish: median(measured.map((t) => t.publishSeconds)), wait: median(measured.map((t) => t.waitSeconds)),
        collect: median(measured.map((t) => t.collectSeconds)), sum: median(measured.map((t) => t.sumSeconds)), arch: mean(measured.flatMap((t) => t.shareSeconds)),
        weightBytes: median(measured.map((t) => t.weightBytes)), shareBytes: median(measured.map((t) => t.shareBytes)),
        redisIn: (after.input - before.input) / per, redisOut: (after.output - before.output) / per,
        steps: measured.map((t, i) => ({ stepSec: history[warmup + i]!.stepSec!, traffic: t })),
      },
    };
  }

  lines.push(`${os.cpus().length} × ${os.cpus()[0]?.model}, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, node ${process.version}, ${backend}`);
  lines.push(`recipe: meta-batch ${metaBatch}, ${images} images, pool 1,000,000, ${steps} steps (first ${warmup} not counted)`);

  const runs: Measured[] = [await serial(metaBatch)];
  for (const w of workerCounts) runs.push(await overRedis(metaBatch, w));
  const fit = await overRedis(fitMetaBatch, 1);
  probe.disconnect();
  redisServer.kill('SIGTERM');
  return { lines, runs, fit };
}

const saved = flag('--load', '');
const { lines, runs, fit } = saved ? (JSON.parse(fs.readFileSync(saved, 'utf8')) as Awaited<ReturnType<typeof measure>>) : await measure();
if (!saved && flag('--save', '')) fs.writeFileSync(flag('--save', ''), JSON.stringify({ lines, runs, fit }));
console.log(`${lines.join('\n')}\n`);

const MB = (x: number) => (x / 1e6).toFixed(2);
console.log('| run | meta-batch | s/step | publish s | wait s | of it, collect s | sum s | compute s/arch | stored+fetched MB/step | Redis in / out MB/step |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const m of [...runs, fit]) {
  const t = m.traffic;
  const cells = t
    ? [t.publish.toFixed(3), t.wait.toFixed(2), t.collect.toFixed(3), t.sum.toFixed(3), t.arch.toFixed(2), MB(t.weightBytes + t.shareBytes), `${MB(t.redisIn)} / ${MB(t.redisOut)}`]
    : Array(7).fill('–');
  console.log(`| ${m.label} | ${m.b} | ${m.stepSec.toFixed(2)} | ${cells.join(' | ')} |`);
}

// The model's costs, from the 1-worker runs at two meta-batches (no overlap between workers there),
// as means: the model is of the expected step, and architectures' compute times are skewed.
const one = runs.find((m) => m.workers === 1)!;
const costs = (m: Measured) => {
  const steps = m.traffic!.steps;
  const shares = steps.reduce((n, s) => n + s.traffic.shareSeconds.length, 0);
  // Intake of one share at the coordinator: fetch, decode, add in order (loopback).
  const f = steps.reduce((x, s) => x + s.traffic.collectSeconds, 0) / shares;
  return {
    own: mean(steps.map((s) => s.stepSec - s.traffic.waitSeconds)), f,
    // With one worker the wait is its jobs one after another, then the last share's intake (the
    // others' overlaps the next job): what a job costs beyond its compute is the rest.
    overhead: mean(steps.map((s) => (s.traffic.waitSeconds - f - s.traffic.shareSeconds.reduce((x, y) => x + y, 0)) / m.b)),
    // CPU seconds: what the architecture costs a machine of its own, not this shared one's contention.
    compute: steps.flatMap((s) => s.traffic.shareCpuSeconds), wall: steps.flatMap((s) => s.traffic.shareSeconds), weights: m.traffic!.weightBytes, share: m.traffic!.shareBytes / m.b,
  };
};
const [c1, c2] = [costs(one), costs(fit)];
const b = (c2.own - c1.own) / (fit.b - one.b);
const a = c1.own - b * one.b;
const f = mean([c1.f, c2.f]);
const overhead = mean([c1.overhead, c2.overhead]);
const compute = [...c1.compute, ...c2.compute];
const W = c1.weights, S = mean([c1.share, c2.share]);
const wall = [...c1.wall, ...c2.wall];
console.log(`\nmodel costs: coordinator ${a.toFixed(3)} s + ${b.toFixed(4)} s per architecture; per job at a worker ${mean(compute).toFixed(3)} s compute (CPU; wall ${mean(wall).toFixed(3)}) ` +
  `(mean of ${compute.length}, median ${median(compute).toFixed(3)}, max ${Math.max(...compute).toFixed(3)}) + ${(1000 * overhead).toFixed(1)} ms; ` +
  `${(1000 * f).toFixed(1)} ms to take in a share; weights ${MB(W)} MB, share ${MB(S)} MB`);

/** mulberry32: the same job times for every N at a meta-batch (common random numbers). */
const rng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
};
const SAMPLES = 400;
/**
 * Expected step time with N workers, simulated as the code runs it: the coordinator's own work; the
 * weights up to Redis once and down to each busy worker in turn over Redis's link; each job, its
 * compute drawn from the measured ones, taken by whichever worker is free first (BullMQ's queue);
 * its share up from the worker; the coordinator taking in each share (down the link, decode, add)
 * as soon as it is stored, one at a time, overlapped with the jobs still running.
 */
const stepTime = (B: number, N: number, bw: number, jobs = compute) => {
  const draw = rng(B);
  let total = 0;
  for (let s = 0; s < SAMPLES; s++) {
    const free = Array.from({ length: Math.min(N, B) }, (_, k) => ((2 + k) * W) / bw);
    const stored: number[] = [];
    for (let j = 0; j < B; j++) {
      const k = free.indexOf(Math.min(...free));
      free[k] = free[k]! + jobs[Math.floor(draw() * jobs.length)]! + overhead + S / bw;
      stored.push(free[k]!);
    }
    let taken = 0;
    for (const t of stored.sort((x, y) => x - y)) taken = Math.max(taken, t) + f + S / bw;
    total += Math.max(0, a + b * B) + taken;
  }
  return total / SAMPLES;
};
const single = new Map<string, number>();
const efficiency = (B: number, N: number, bw: number) => {
  const key = `${B}/${bw}`;
  if (!single.has(key)) single.set(key, stepTime(B, 1, bw));
  return single.get(key)! / (N * stepTime(B, N, bw));
};
// The check against this machine: its own wall compute times (contention included) on loopback.
console.log('\nloopback, model on each run\'s measured wall compute vs measured mean s/step: ' + [...runs, fit].filter((m) => m.workers).map((m) => {
  const own = m.traffic!.steps.flatMap((s) => s.traffic.shareSeconds);
  return `${m.workers} worker${m.workers > 1 ? 's' : ''} at ${m.b}: ${stepTime(m.b, m.workers, Infinity, own).toFixed(2)} vs ${mean(m.traffic!.steps.map((s) => s.stepSec)).toFixed(2)}`;
}).join(', '));
for (const [name, bw] of [['1 Gbit/s', 125e6], ['10 Gbit/s', 1250e6]] as const) {
  const row = (B: number) => Array.from({ length: 8 }, (_, i) => efficiency(B, i + 1, bw).toFixed(2)).join(' | ');
  console.log(`\n${name}: efficiency for N = 1..8 workers`);
  console.log(`| meta-batch | ${Array.from({ length: 8 }, (_, i) => i + 1).join(' | ')} |`);
  console.log(`| --- |${' ---: |'.repeat(8)}`);
  // The smallest meta-batch at which efficiency ≥ 0.8 for every N ≤ 8.
  let holds = one.b;
  // 8 workers first: the likeliest to fail, so most meta-batches cost one simulation each.
  while (holds < 512 && ![8, 7, 6, 5, 4, 3, 2].every((n) => efficiency(holds, n, bw) >= 0.8)) holds++;
  for (const B of [...new Set([one.b, 8, 16, 32, holds])].sort((x, y) => x - y)) console.log(`| ${B} | ${row(B)} |`);
  console.log(`smallest meta-batch with efficiency ≥ 0.8 for every N ≤ 8: ${holds < 512 ? holds : 'none up to 512'}`);
}

process.exit(0);
