/**
 * Meta-training over Redis (issue 22) on loopback: a redis-server started here, the coordinator
 * in this process (trainGhn with RedisCoordinator), 1, 2 and 3 `ghn worker` processes. Prints per
 * step: wall time (median over the steps after the warm-up), where the coordinator's time went
 * (publish, wait for the shares, collect), each architecture's compute time as its worker measured
 * it, the bytes the coordinator stored and fetched, and the bytes Redis itself counted in and out
 * (INFO stats). The single-process step of the same recipe is timed too, for reference.
 *
 * From those costs, a speed-up model for N machines: a step is the coordinator's own work outside
 * the wait (drawing, publishing, summing, AdamW; fitted as a + b·B from the 1-worker runs at two
 * meta-batches), plus the busiest worker's ceil(B/N) jobs (compute, weights and images, storing the
 * share, the coordinator fetching it: the 1-worker wait per architecture) or, if longer, the B
 * shares (S bytes each) through one link, plus the weights (W bytes) to each busy worker and the
 * last share, which nothing overlaps, at a given bandwidth:
 *   T(N) = a + b·B + max(ceil(B/N)·t_job, B·S/bw) + (min(N,B)·W + S)/bw,  efficiency(N) = T(1) / (N·T(N)).
 * It prints the efficiency up to 8 workers at the shipped meta-batch and the smallest meta-batch at
 * which it stays ≥ 0.8 up to 8 workers.
 *
 *   npx tsx bench/redis-training.ts [--steps 10] [--warmup 2] [--meta-batch 4] [--fit-meta-batch 8] [--images 32] [--workers 1,2,3]
 */
import { spawn, type ChildProcess } from 'node:child_process';
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
const steps = Number(flag('--steps', '10'));
const warmup = Number(flag('--warmup', '2'));
const metaBatch = Number(flag('--meta-batch', '4'));
const fitMetaBatch = Number(flag('--fit-meta-batch', '8'));
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

interface Measured {
  label: string;
  b: number;
  workers: number;
  stepSec: number;
  traffic?: { publish: number; wait: number; collect: number; arch: number; weightBytes: number; shareBytes: number; redisIn: number; redisOut: number };
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
      collect: median(measured.map((t) => t.collectSeconds)), arch: mean(measured.flatMap((t) => t.shareSeconds)),
      weightBytes: median(measured.map((t) => t.weightBytes)), shareBytes: median(measured.map((t) => t.shareBytes)),
      redisIn: (after.input - before.input) / per, redisOut: (after.output - before.output) / per,
    },
  };
}

console.log(`${os.cpus().length} × ${os.cpus()[0]?.model}, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, node ${process.version}, ${backend}`);
console.log(`recipe: meta-batch ${metaBatch}, ${images} images, pool 1,000,000, ${steps} steps (first ${warmup} not counted)\n`);

const runs: Measured[] = [await serial(metaBatch)];
for (const w of workerCounts) runs.push(await overRedis(metaBatch, w));
const fit = await overRedis(fitMetaBatch, 1);

const MB = (x: number) => (x / 1e6).toFixed(2);
console.log('| run | meta-batch | s/step | publish s | wait s | collect s | compute s/arch | stored+fetched MB/step | Redis in / out MB/step |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const m of [...runs, fit]) {
  const t = m.traffic;
  console.log(`| ${m.label} | ${m.b} | ${m.stepSec.toFixed(2)} | ${t ? `${t.publish.toFixed(3)} | ${t.wait.toFixed(2)} | ${t.collect.toFixed(3)} | ${t.arch.toFixed(2)} | ${MB(t.weightBytes + t.shareBytes)} | ${MB(t.redisIn)} / ${MB(t.redisOut)}` : '– | – | – | – | – | –'} |`);
}

// The model's costs, from the 1-worker runs at two meta-batches (no overlap between workers there).
const one = runs.find((m) => m.workers === 1)!;
// A job's time at a worker: its compute plus fetching weights and images, storing the share and taking the next job.
const costs = (m: Measured) => ({ own: m.stepSec - m.traffic!.wait, job: m.traffic!.wait / m.b, weights: m.traffic!.weightBytes, share: m.traffic!.shareBytes / m.b });
const [c1, c2] = [costs(one), costs(fit)];
const b = (c2.own - c1.own) / (fitMetaBatch - metaBatch);
const a = c1.own - b * metaBatch;
const tJob = mean([c1.job, c2.job]);
const W = c1.weights, S = mean([c1.share, c2.share]);
console.log(`\nmodel costs: coordinator ${a.toFixed(3)} s + ${b.toFixed(3)} s per architecture, ${tJob.toFixed(2)} s per job at a worker, weights ${MB(W)} MB, share ${MB(S)} MB`);
const stepTime = (B: number, N: number, bw: number) =>
  Math.max(0, a + b * B) + Math.max(Math.ceil(B / N) * tJob, (B * S) / bw) + (Math.min(N, B) * W + S) / bw;
const efficiency = (B: number, N: number, bw: number) => stepTime(B, 1, bw) / (N * stepTime(B, N, bw));
for (const [name, bw] of [['1 Gbit/s', 125e6], ['10 Gbit/s', 1250e6]] as const) {
  const row = (B: number) => Array.from({ length: 8 }, (_, i) => efficiency(B, i + 1, bw).toFixed(2)).join(' | ');
  console.log(`\n${name}: efficiency for N = 1..8 workers`);
  console.log(`| meta-batch | ${Array.from({ length: 8 }, (_, i) => i + 1).join(' | ')} |`);
  console.log(`| --- |${' ---: |'.repeat(8)}`);
  console.log(`| ${metaBatch} | ${row(metaBatch)} |`);
  // The smallest meta-batch at which efficiency ≥ 0.8 for every N ≤ 8.
  let holds = metaBatch;
  while (holds < 4096 && !Array.from({ length: 8 }, (_, i) => efficiency(holds, i + 1, bw)).every((e) => e >= 0.8)) holds++;
  console.log(`| ${holds} | ${row(holds)} |`);
  console.log(`smallest meta-batch with efficiency ≥ 0.8 for every N ≤ 8: ${holds}`);
}

probe.disconnect();
redisServer.kill('SIGTERM');
process.exit(0);
