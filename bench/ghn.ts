/**
 * GHN prediction speed on fixtures and (if present) ImageNet-size exports, batched decoder against
 * the per-slot reference, plus the GHN's own forward+backward and a whole meta-step on sampled
 * train-split architectures.
 *   npx tsx bench/ghn.ts [filter]        e.g. `resnet50` (prediction only), `meta` (meta-step only)
 */
import * as tf from '@tensorflow/tfjs-core';
import { existsSync } from 'node:fs';
import { initBackend } from '../src/engine/backend.js';
import { buildGraph } from '../src/graph/index.js';
import { readModelFile } from '../src/onnx/index.js';
import { ArchitecturePool } from '../src/meta-training/arch-pool.js';
import { decodeSlots, decodeSlotsPerSlot } from '../src/ghn/decoder.js';
import { encodeGraph, type GraphEncoding } from '../src/ghn/encoding.js';
import { DEFAULT_GHN_CONFIG, GhnModel } from '../src/ghn/model.js';
import { predictInitializerTensors, predictParameters, toStored } from '../src/ghn/predict-params.js';
import { correctCount, crossEntropy } from '../src/fine-tuning/loss.js';

await initBackend();
const ghn = new GhnModel(DEFAULT_GHN_CONFIG);
console.log(`GHN parameters: ${ghn.parameterCount}`);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function timeIt(fn: () => void, reps = 3): number {
  fn(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** predictParameters with the batched decoder instead (stored layout, plain arrays). */
function predictBatched(enc: GraphEncoding): void {
  const arrays = tf.tidy(() => {
    const bySlot = decodeSlots(ghn, enc, ghn.embedNodes(enc), { stored: true });
    return enc.slots.map((slot) => bySlot.get(slot.id)!);
  });
  for (const t of arrays) { t.dataSync(); t.dispose(); }
}

/** Reference path: per-slot decoder, canonical layout then an explicit transpose (the pre-batching predictParameters). */
function predictPerSlot(enc: GraphEncoding): void {
  const arrays = tf.tidy(() => {
    const bySlot = decodeSlotsPerSlot(ghn, enc, ghn.embedNodes(enc));
    return enc.slots.map((slot) => toStored(slot, bySlot.get(slot.id)!));
  });
  for (const t of arrays) { t.dataSync(); t.dispose(); }
}

const only = process.argv[2];
const files = ['fixtures/resnet_small.eval13.onnx', 'fixtures/vit_small.eval13.onnx',
  ...['resnet50', 'vit_b_16', 'convnext_tiny', 'efficientnet_b0', 'mobilenet_v2'].map((m) => `fixtures/large/${m}.eval13.onnx`)];
for (const file of files.filter((f) => existsSync(f) && (!only || f.includes(only)))) {
  const model = await readModelFile(file);
  let t0 = performance.now();
  const graph = buildGraph(model);
  const tGraph = performance.now() - t0;
  t0 = performance.now();
  const enc = encodeGraph(graph);
  const tEnc = performance.now() - t0;
  const predict = timeIt(() => predictParameters(ghn, enc));
  const batched = timeIt(() => predictBatched(enc));
  const perSlot = timeIt(() => predictPerSlot(enc));
  console.log(`${file}: ops ${enc.numOps}, slots ${enc.slots.length}, params ${graph.parameterCount}; graph ${tGraph.toFixed(0)} ms, encode ${tEnc.toFixed(0)} ms, predict median ${predict.toFixed(0)} ms (batched decoder ${batched.toFixed(0)} ms, per-slot + transpose ${perSlot.toFixed(0)} ms)`);
}

if (!only || only === 'meta') {
  // The GHN's own forward+backward (loss = Σ predicted·noise) and a whole meta-step (2 archs × 24
  // images, batch-statistics BN), on the first usable train-split architectures.
  const pool = new ArchitecturePool('train', 12);
  const archs = Array.from({ length: 12 }, (_, i) => pool.get(i)).filter((a) => a !== undefined).slice(0, 6);
  const vars = [...ghn.variables.values()];
  const ghnOnly = (decode: typeof decodeSlots) => () => {
    for (const arch of archs) {
      const { value, grads } = tf.variableGrads(() => {
        const slots = decode(ghn, arch.encoding, ghn.embedNodes(arch.encoding));
        return tf.addN([...slots.values()].map((t) => tf.sum(tf.mul(t, tf.randomNormal(t.shape, 0, 1, 'float32', 1))))) as tf.Scalar;
      }, vars);
      tf.dispose([value, ...Object.values(grads)]);
    }
  };
  const slots = archs.reduce((a, arch) => a + arch.encoding.slots.length, 0);
  const tBatched = timeIt(ghnOnly(decodeSlots)) / archs.length;
  const tPerSlot = timeIt(ghnOnly(decodeSlotsPerSlot)) / archs.length;
  console.log(`GHN forward+backward per architecture (${archs.length} train archs, ${(slots / archs.length).toFixed(0)} slots avg): batched ${tBatched.toFixed(0)} ms, per-slot ${tPerSlot.toFixed(0)} ms`);
  const x = tf.randomNormal([24, 1, 28, 28], 0, 1, 'float32', 2);
  const y = tf.tensor1d(Array.from({ length: 24 }, (_, i) => i % 10), 'int32');
  const step = (k: number) => () => {
    const pair = [archs[(2 * k) % archs.length]!, archs[(2 * k + 1) % archs.length]!];
    const { value, grads } = tf.variableGrads(() => {
      let total: tf.Scalar = tf.scalar(0);
      for (const arch of pair) {
        const logits = arch.executor.run(x, { params: predictInitializerTensors(ghn, arch.encoding), training: true }).outputs[0]!;
        correctCount(logits, y);
        total = tf.add(total, crossEntropy(logits, y));
      }
      return tf.div(total, pair.length) as tf.Scalar;
    }, vars);
    tf.dispose([value, ...Object.values(grads)]);
  };
  const stepTimes = [0, 1, 2].map((k) => timeIt(step(k), 1));
  console.log(`meta-step (2 archs × 24 images, forward+backward, no optimizer): ${stepTimes.map((t) => t.toFixed(0)).join(' / ')} ms`);
  tf.dispose([x, y]);
  pool.dispose();
}
