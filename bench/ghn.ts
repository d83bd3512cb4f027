/** GHN prediction speed and output statistics on fixtures and (if present) ImageNet-size exports. */
import { existsSync } from 'node:fs';
import { initBackend } from '../src/engine/backend.js';
import { buildGraph } from '../src/graph/index.js';
import { readModelFile } from '../src/onnx/index.js';
import { encodeGraph } from '../src/ghn/encoding.js';
import { DEFAULT_GHN_CONFIG, GhnModel } from '../src/ghn/model.js';
import { predictParameters } from '../src/ghn/predict-params.js';

await initBackend();
const ghn = new GhnModel(DEFAULT_GHN_CONFIG);
console.log(`GHN parameters: ${ghn.parameterCount}`);
const files = ['fixtures/resnet_small.eval13.onnx', 'fixtures/vit_small.eval13.onnx',
  ...['resnet50', 'vit_b_16', 'convnext_tiny', 'efficientnet_b0', 'mobilenet_v2'].map((m) => `fixtures/large/${m}.eval13.onnx`)];
const only = process.argv[2]; // optional substring filter, e.g. resnet50
for (const file of files.filter((f) => existsSync(f) && (!only || f.includes(only)))) {
  const model = await readModelFile(file);
  let t0 = performance.now();
  const graph = buildGraph(model);
  const tGraph = performance.now() - t0;
  t0 = performance.now();
  const enc = encodeGraph(graph);
  const tEnc = performance.now() - t0;
  predictParameters(ghn, enc); // warm-up
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    t0 = performance.now();
    predictParameters(ghn, enc);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  console.log(`${file}: ops ${enc.numOps}, slots ${enc.slots.length}, params ${graph.parameterCount}; graph ${tGraph.toFixed(0)} ms, encode ${tEnc.toFixed(0)} ms, predict median ${times[1]!.toFixed(0)} ms`);
}
