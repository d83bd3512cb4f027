/**
 * `ghn predict` on ImageNet-size torchvision exports, as a user runs it: the whole process
 * (node start-up, import, GHN, post-processing, calibration, writing, onnxruntime check), median of 3.
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
console.log('model            total s  GHN s  post s  calib s  write s  check s  peak MiB  params');
for (const name of models) {
  const file = largeFixture(name);
  if (!file) continue;
  const runs: { wall: number; report: Record<string, any> }[] = [];
  for (let k = 0; k < RUNS; k++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [...cli, 'predict', file, '-o', out, '--json'], { encoding: 'utf8', maxBuffer: 1 << 24 });
    const wall = performance.now() - t0;
    if (r.status !== 0) {
      console.log(`${name}: failed: ${r.stderr.trim()}`);
      break;
    }
    runs.push({ wall, report: JSON.parse(r.stdout) });
  }
  if (!runs.length) continue;
  const pick = (f: (r: Record<string, any>) => number) => median(runs.map((r) => f(r.report)));
  const s = (ms: number) => (ms / 1000).toFixed(2).padStart(6);
  console.log(
    `${name.padEnd(16)} ${s(median(runs.map((r) => r.wall)))}  ${s(pick((r) => r.timings.ghn))} ${s(pick((r) => r.timings.postprocess))}  ` +
      `${s(pick((r) => r.timings.calibrate))}  ${s(pick((r) => r.timings.write))}  ${s(pick((r) => r.timings.validate))}  ` +
      `${String(pick((r) => r.peakRssMiB)).padStart(8)}  ${runs[0]!.report.parameters}`,
  );
}
fs.rmSync(out, { force: true });
