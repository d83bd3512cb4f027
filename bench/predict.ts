/**
 * `ghn predict` on ImageNet-size torchvision exports, as a user runs it: the built CLI in a fresh
 * process per run (node start-up, imports, GHN, calibration, writing, onnxruntime check), on the
 * shipped default options. Per model, the median over the runs of: the whole process's wall and CPU
 * seconds and peak memory (GNU time: the largest process, children included), and every stage's
 * wall / CPU (the report's timings and cpuTimings; the machine may be shared, and CPU time is what
 * the work costs). Then the warm API: `predict()` called again in the same process on resnet50
 * (the Node API or a server keeping its process; the first call's start-up and session set-up paid).
 * Exports are made by scripts/export_torchvision.py when missing (fixtures/large, git-ignored).
 * Issue-21 targets: resnet50 ≤ 1.1 s whole process and ≤ 600 MiB, convnext_tiny ≤ 1.5 s,
 * vit_b_16 ≤ 4 s; warm API resnet50 ≤ 0.4 s.
 * Usage: npx tsx bench/predict.ts [--runs N] [--no-warm] [model …]
 *   (default: 5 runs of resnet50 convnext_tiny vit_b_16 efficientnet_b0 swin_t)
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_GHN_PATH } from '../src/api/predict-options.js';
import { largeFixture } from './large-fixtures.js';

const args = process.argv.slice(2);
const runsAt = args.indexOf('--runs');
const RUNS = runsAt >= 0 ? Number(args.splice(runsAt, 2)[1]) : 5;
if (!Number.isInteger(RUNS) || RUNS < 1) {
  console.error('--runs needs a whole number ≥ 1');
  process.exit(2);
}
const warmAt = args.indexOf('--no-warm');
const WARM = warmAt < 0;
if (!WARM) args.splice(warmAt, 1);
const models = args.length ? args : ['resnet50', 'convnext_tiny', 'vit_b_16', 'efficientnet_b0', 'swin_t'];
const CLI = 'dist/cli/main.js';
const out = path.join(os.tmpdir(), `ghn-bench-predict-${process.pid}.onnx`);
const STAGES = ['load', 'graph', 'ghn', 'postprocess', 'calibrate', 'write', 'validate'] as const;

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
const loadAverage = () => os.loadavg().map((l) => l.toFixed(1)).join(' ');
const s = (ms: number) => (ms / 1000).toFixed(2);

if (!fs.existsSync(DEFAULT_GHN_PATH)) {
  console.log(`no GHN at ${DEFAULT_GHN_PATH}; train one first (see README)`);
  process.exit(0);
}
if (!fs.existsSync(CLI)) {
  console.log(`no ${CLI}: run \`npm run build\` first (the benchmark runs the built CLI, as a user does)`);
  process.exit(1);
}
if (!fs.existsSync('/usr/bin/time')) {
  console.log('needs GNU time (/usr/bin/time, apt-get install time) for whole-process CPU time and peak memory');
  process.exit(1);
}

interface Run { wall: number; cpu: number; peakMiB: number; report: { timings: Record<string, number>; cpuTimings: Record<string, number>; parameters: number } }

/** One cold `ghn predict` process, timed from outside; its --json report gives the stages. */
function coldRun(file: string): Run | string {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S %M', process.execPath, CLI, 'predict', file, '-o', out, '--json'], { encoding: 'utf8', maxBuffer: 1 << 24 });
  const wall = performance.now() - t0;
  if (r.status !== 0) return r.stderr.trim();
  const [user, system, maxKiB] = r.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
  return { wall, cpu: 1000 * (user! + system!), peakMiB: maxKiB! / 1024, report: JSON.parse(r.stdout) };
}

/**
 * The yardstick: onnxruntime-node creating a session on the export itself (default
 * options, as a user's runtime would) and running one forward pass of batch 1, timed inside a
 * fresh process (node start-up and the import of onnxruntime excluded).
 */
function ortBaseline(file: string): number | string {
  const script = `
    const ort = (await import('onnxruntime-node')).default;
    const t0 = performance.now();
    const session = await ort.InferenceSession.create(${JSON.stringify(file)});
    const feeds = {};
    for (const input of session.inputMetadata) {
      const shape = input.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
      feeds[input.name] = new ort.Tensor('float32', new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5), shape);
    }
    await session.run(feeds);
    process.stdout.write(String(performance.now() - t0));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout) : r.stderr.trim();
}

console.log(`ghn predict, default options, built CLI (${CLI}) in a cold process per run, median of ${RUNS}`);
console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB; node ${process.version}; load average ${loadAverage()}`);
console.log('seconds, wall / CPU; other = the whole process minus the stages (node start-up, imports, backend and GHN loading, exit)');
console.log('ort = onnxruntime session create + one forward of the export itself (median, in-process); ratio = total wall / ort (issue 21: ≤ 3, or total ≤ 5 s)');
console.log('model            total          load+graph     GHN            post           calib          write          check          other          peak MiB  wall min–max  ort s  ratio');
for (const name of models) {
  const file = largeFixture(name);
  if (!file) continue;
  const runs: Run[] = [];
  for (let k = 0; k < RUNS; k++) {
    const run = coldRun(file);
    if (typeof run === 'string') {
      console.log(`${name}: failed: ${run}`);
      break;
    }
    runs.push(run);
  }
  if (!runs.length) continue;
  const baselines = runs.map(() => ortBaseline(file));
  const failed = baselines.find((b) => typeof b === 'string');
  if (failed !== undefined) console.log(`${name}: onnxruntime baseline failed: ${failed}`);
  const ort = failed === undefined ? median(baselines as number[]) : NaN;
  const pick = (f: (r: Run) => number) => median(runs.map(f));
  // Every stage of the report (mix and fit-head too, zero on these exports), so "other" is only what no stage measures.
  const sum = (t: Record<string, number>) => Object.values(t).reduce((a, v) => a + v, 0);
  const pair = (wall: (r: Run) => number, cpu: (r: Run) => number) => `${s(pick(wall))} / ${s(pick(cpu))}`.padEnd(15);
  const stage = (...names: string[]) => pair(
    (r) => names.reduce((a, n) => a + r.report.timings[n]!, 0), (r) => names.reduce((a, n) => a + r.report.cpuTimings[n]!, 0));
  console.log(
    `${name.padEnd(16)} ${pair((r) => r.wall, (r) => r.cpu)}${stage('load', 'graph')}${stage('ghn')}${stage('postprocess')}${stage('calibrate')}` +
      `${stage('write')}${stage('validate')}${pair((r) => r.wall - sum(r.report.timings), (r) => r.cpu - sum(r.report.cpuTimings))}` +
      `${pick((r) => r.peakMiB).toFixed(0).padStart(8)}  ${s(Math.min(...runs.map((r) => r.wall)))}–${s(Math.max(...runs.map((r) => r.wall)))}` +
      `${s(ort).padStart(7)}  ${(pick((r) => r.wall) / ort).toFixed(1).padStart(5)}`,
  );
}

if (WARM) {
  const file = largeFixture('resnet50');
  if (file) {
    // One process: a first call (start-up, sessions), then RUNS more, each timed by itself.
    const script = `
      const { predict } = await import(${JSON.stringify(path.resolve('dist/api/predict.js'))});
      const calls = [];
      for (let k = 0; k <= ${RUNS}; k++) {
        const t0 = performance.now(), c0 = process.cpuUsage();
        const { report } = await predict(${JSON.stringify(file)}, { output: ${JSON.stringify(out)} });
        const c = process.cpuUsage(c0);
        calls.push({ wall: performance.now() - t0, cpu: (c.user + c.system) / 1000, timings: report.timings });
      }
      process.stdout.write(JSON.stringify(calls));
      process.exit();`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) console.log(`warm API: failed: ${r.stderr.trim()}`);
    else {
      const [first, ...warm] = JSON.parse(r.stdout) as { wall: number; cpu: number; timings: Record<string, number> }[];
      const stages = STAGES.map((n) => `${n} ${median(warm.map((c) => c.timings[n]!)).toFixed(0)}`).join(', ');
      console.log(`warm API, resnet50: predict() again in the same process, median of ${warm.length}: ${s(median(warm.map((c) => c.wall)))} s wall / ${s(median(warm.map((c) => c.cpu)))} s CPU ` +
        `(first call ${s(first!.wall)} s); ms: ${stages}`);
    }
  }
}
fs.rmSync(out, { force: true });
console.log(`load average ${loadAverage()}`);
