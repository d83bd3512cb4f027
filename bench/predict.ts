/**
 * `ghn predict` on ImageNet-size torchvision exports, as a user runs it: the whole process
 * (node start-up, import, GHN, post-processing, calibration, writing, onnxruntime check), median of the runs,
 * wall / CPU seconds for the whole process (GNU time, children included) and for every stage (the
 * report's timings and cpuTimings): the machine may be shared, and CPU time is what the work costs. Runs the
 * installed CLI (dist/, `npm run build`) when built, else the sources through tsx (slower start-up).
 * Issue-5 targets for resnet50: ≤ 3 s for the whole process, ≤ 0.5 s for the GHN prediction.
 * Usage: npx tsx bench/predict.ts [--runs N] [model …]   (default: 3 runs of resnet50 convnext_tiny vit_b_16)
 * The last column gives the spread of the whole-process wall time over the runs (min–max).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_GHN_PATH } from '../src/api/predict.js';
import { largeFixture } from './large-fixtures.js';

const args = process.argv.slice(2);
const runsAt = args.indexOf('--runs');
const RUNS = runsAt >= 0 ? Number(args.splice(runsAt, 2)[1]) : 3;
if (!Number.isInteger(RUNS) || RUNS < 1) {
  console.error('--runs needs a whole number ≥ 1');
  process.exit(2);
}
const models = args.length ? args : ['resnet50', 'convnext_tiny', 'vit_b_16'];
const cli = fs.existsSync('dist/cli/main.js') ? ['dist/cli/main.js'] : ['--import', 'tsx', 'src/cli/main.ts'];
const out = path.join(os.tmpdir(), 'ghn-bench-predict.onnx');

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

if (!fs.existsSync(DEFAULT_GHN_PATH)) {
  console.log(`no GHN at ${DEFAULT_GHN_PATH}; train one first (see README)`);
  process.exit(0);
}
console.log(`ghn predict, whole process, median of ${RUNS} runs (${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}; ${cli[0]})`);
const timeAvailable = fs.existsSync('/usr/bin/time');
console.log(`load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log('seconds, wall / CPU; other = the whole process minus the stages (node start-up, imports, backend and GHN loading, exit)');
console.log('model            total          load+graph     GHN            post           calib          write          check          other          peak MiB  params  faults  wall min–max');
for (const name of models) {
  const file = largeFixture(name);
  if (!file) continue;
  const runs: { wall: number; cpu: number; faults: number; report: Record<string, any> }[] = [];
  for (let k = 0; k < RUNS; k++) {
    const t0 = performance.now();
    // GNU time reports the child's CPU seconds (user + system, its own children included) and its
    // minor page faults on its last stderr line.
    const command = timeAvailable ? ['/usr/bin/time', '-f', '%U %S %R', process.execPath] : [process.execPath];
    const r = spawnSync(command[0]!, [...command.slice(1), ...cli, 'predict', file, '-o', out, '--json'], { encoding: 'utf8', maxBuffer: 1 << 24 });
    const wall = performance.now() - t0;
    if (r.status !== 0) {
      console.log(`${name}: failed: ${r.stderr.trim()}`);
      break;
    }
    const [user, system, faults] = timeAvailable ? r.stderr.trim().split('\n').at(-1)!.split(' ').map(Number) : [NaN, NaN, NaN];
    runs.push({ wall, cpu: 1000 * (user! + system!), faults: faults!, report: JSON.parse(r.stdout) });
  }
  if (!runs.length) continue;
  const pick = (f: (r: (typeof runs)[number]) => number) => median(runs.map(f));
  const sum = (t: Record<string, number>) => Object.values(t).reduce((a, b) => a + b, 0);
  const s = (ms: number) => (ms / 1000).toFixed(2);
  const pair = (wall: (r: (typeof runs)[number]) => number, cpu: (r: (typeof runs)[number]) => number) => `${s(pick(wall))} / ${s(pick(cpu))}`.padEnd(15);
  const stage = (...names: string[]) => pair(
    (r) => names.reduce((a, n) => a + r.report.timings[n], 0), (r) => names.reduce((a, n) => a + r.report.cpuTimings[n], 0));
  console.log(
    `${name.padEnd(16)} ${pair((r) => r.wall, (r) => r.cpu)}${stage('load', 'graph')}${stage('ghn')}${stage('postprocess')}${stage('calibrate')}` +
      `${stage('write')}${stage('validate')}${pair((r) => r.wall - sum(r.report.timings), (r) => r.cpu - sum(r.report.cpuTimings))}` +
      `${String(pick((r) => r.report.peakRssMiB)).padStart(8)}  ${runs[0]!.report.parameters}  ${pick((r) => r.faults)}` +
      `  ${s(Math.min(...runs.map((r) => r.wall)))}–${s(Math.max(...runs.map((r) => r.wall)))}`,
  );
}
fs.rmSync(out, { force: true });
console.log(`load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
