/**
 * `ghn predict` on ImageNet-size torchvision exports, as a user runs it: the whole process
 * (node start-up, import, GHN, post-processing, calibration, writing, onnxruntime check), median of 3,
 * with the process's CPU seconds (GNU time) next to wall time: the machine may be shared. Runs the
 * installed CLI (dist/, `npm run build`) when built, else the sources through tsx (slower start-up).
 * Issue-5 targets for resnet50: ≤ 3 s for the whole process, ≤ 0.5 s for the GHN prediction.
 * Usage: npx tsx bench/predict.ts [model …]   (default: resnet50 convnext_tiny vit_b_16)
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_GHN_PATH } from '../src/api/predict.js';
import { largeFixture } from './large-fixtures.js';

const RUNS = 3;
const models = process.argv.slice(2).length ? process.argv.slice(2) : ['resnet50', 'convnext_tiny', 'vit_b_16'];
const cli = fs.existsSync('dist/cli/main.js') ? ['dist/cli/main.js'] : ['--import', 'tsx', 'src/cli/main.ts'];
const out = path.join(os.tmpdir(), 'ghn-bench-predict.onnx');

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

if (!fs.existsSync(DEFAULT_GHN_PATH)) {
  console.log(`no GHN at ${DEFAULT_GHN_PATH}; train one first (see README)`);
  process.exit(0);
}
console.log(`ghn predict, whole process, median of ${RUNS} (${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}; ${cli[0]})`);
const timeAvailable = fs.existsSync('/usr/bin/time');
console.log(`load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
// other = the wall time outside the timed stages: node start-up and module loading, the output file.
console.log('model            total s  CPU s  load+graph s  GHN s  post s  calib s  write s  check s  other s  peak MiB  params');
for (const name of models) {
  const file = largeFixture(name);
  if (!file) continue;
  const runs: { wall: number; cpu: number; report: Record<string, any> }[] = [];
  for (let k = 0; k < RUNS; k++) {
    const t0 = performance.now();
    // GNU time reports the child's CPU seconds (user + system) on its last stderr line.
    const command = timeAvailable ? ['/usr/bin/time', '-f', '%U %S', process.execPath] : [process.execPath];
    const r = spawnSync(command[0]!, [...command.slice(1), ...cli, 'predict', file, '-o', out, '--json'], { encoding: 'utf8', maxBuffer: 1 << 24 });
    const wall = performance.now() - t0;
    if (r.status !== 0) {
      console.log(`${name}: failed: ${r.stderr.trim()}`);
      break;
    }
    const [user, system] = timeAvailable ? r.stderr.trim().split('\n').at(-1)!.split(' ').map(Number) : [NaN, NaN];
    runs.push({ wall, cpu: 1000 * (user! + system!), report: JSON.parse(r.stdout) });
  }
  if (!runs.length) continue;
  const pick = (f: (r: Record<string, any>) => number) => median(runs.map((r) => f(r.report)));
  const stages = (t: Record<string, number>) => t.load + t.graph + t.ghn + t.postprocess + t.calibrate + t.write + t.validate;
  const other = median(runs.map((r) => r.wall - stages(r.report.timings)));
  const s = (ms: number) => (ms / 1000).toFixed(2).padStart(6);
  console.log(
    `${name.padEnd(16)} ${s(median(runs.map((r) => r.wall)))} ${s(median(runs.map((r) => r.cpu)))}        ${s(pick((r) => r.timings.load + r.timings.graph))} ${s(pick((r) => r.timings.ghn))} ${s(pick((r) => r.timings.postprocess))}  ` +
      `${s(pick((r) => r.timings.calibrate))}  ${s(pick((r) => r.timings.write))}  ${s(pick((r) => r.timings.validate))}  ${s(other)}  ` +
      `${String(pick((r) => r.peakRssMiB)).padStart(8)}  ${runs[0]!.report.parameters}`,
  );
}
fs.rmSync(out, { force: true });
console.log(`load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
