/**
 * `npm run bench`: every benchmark, one after another, each printing its own figures.
 * Large torchvision exports are made first with Debian's PyTorch when missing (not committed).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { largeFixture } from './large-fixtures.js';

interface Bench {
  title: string;
  script: string;
  args?: () => string[];
}

const BENCHES: Bench[] = [
  { title: 'ONNX load/encode (issue 2)', script: 'bench/onnx-load.ts', args: () => ['resnet50', 'vit_b_16'].map((m) => largeFixture(m)).filter((f): f is string => !!f) },
  { title: 'graph import (issue 2)', script: 'bench/graph.ts' },
  { title: 'wasm kernels (issue 3)', script: 'bench/kernels.ts' },
  { title: 'training step through the executor (issue 3)', script: 'bench/train.ts' },
  { title: 'meta-training throughput and replay time (issue 18)', script: 'bench/train.ts', args: () => ['--meta'] },
  { title: 'GHN (issue 4)', script: 'bench/ghn.ts' },
  { title: 'post-processing (issue 5)', script: 'bench/postprocess.ts' },
  { title: 'ghn predict (issue 5)', script: 'bench/predict.ts' },
  { title: 'ghn serve load (issue 6)', script: 'bench/serve.ts', args: () => ['--seconds', '20'] },
];

const only = process.argv.slice(2);
for (const bench of BENCHES) {
  if (only.length && !only.some((o) => bench.script.includes(o))) continue;
  if (!fs.existsSync(bench.script)) continue;
  console.log(`\n=== ${bench.title}: npx tsx ${bench.script}`);
  const result = spawnSync(process.execPath, ['--import', 'tsx', bench.script, ...(bench.args?.() ?? [])], { stdio: 'inherit' });
  if (result.status !== 0) console.log(`(${bench.script} exited with ${result.status})`);
}
