/**
 * Load + graph-building time for ImageNet-size exports (issue 2 target: ≤ 0.5 s each).
 * Usage: npx tsx bench/graph.ts [model …]   (default: resnet50 convnext_tiny vit_b_16)
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { buildGraph } from '../src/graph/index.js';
import { readModelFile } from '../src/onnx/index.js';
import { largeFixture } from './large-fixtures.js';

const RUNS = 5;
const models = process.argv.slice(2).length ? process.argv.slice(2) : ['resnet50', 'convnext_tiny', 'vit_b_16'];

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

console.log(`graph import (median of ${RUNS}; ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version})`);
console.log('model                 load ms  graph ms  total ms  ops  params');
for (const name of models) {
  const file = largeFixture(name);
  if (!file) continue;
  const load: number[] = [];
  const build: number[] = [];
  let ops = 0;
  let params = 0;
  for (let k = 0; k < RUNS; k++) {
    const t0 = performance.now();
    const model = readModelFile(file);
    const t1 = performance.now();
    const g = buildGraph(model);
    const t2 = performance.now();
    load.push(t1 - t0);
    build.push(t2 - t1);
    ops = g.ops.length;
    params = g.parameterCount;
  }
  const total = median(load.map((l, k) => l + build[k]!));
  console.log(`${name.padEnd(20)} ${median(load).toFixed(0).padStart(8)} ${median(build).toFixed(0).padStart(9)} ${total.toFixed(0).padStart(9)} ${String(ops).padStart(4)}  ${params}`);
}
console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
