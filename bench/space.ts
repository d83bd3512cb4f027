/**
 * Architecture-space benchmark: per family, over N seeds, the median time to sample + emit +
 * materialize a model, its encoded size, FLOPs, parameters and nodes, and an onnxruntime forward
 * of a batch of 64 (28×28×1). Usage: node --import tsx bench/space.ts [N=10] [family]
 */
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../src/onnx/index.js';
import { architectureSeed, FAMILY_NAMES, sampleArchitecture, type FamilyName } from '../src/space/sample.js';

const n = Number(process.argv[2] ?? 10);
const only = process.argv[3] as FamilyName | undefined;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const batch = 64;
const input = new ort.Tensor('float32', Float32Array.from({ length: batch * 784 }, (_, i) => Math.sin(i)), [batch, 1, 28, 28]);

console.log('family     sample_ms  kB    MFLOPs(med/max)  params(med/max)   nodes  ort_b64_ms');
for (const family of only ? [only] : FAMILY_NAMES) {
  const sampleMs: number[] = [], kb: number[] = [], flops: number[] = [], params: number[] = [], nodes: number[] = [], ortMs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const arch = sampleArchitecture(architectureSeed('train', i), { family });
    const bytes = encodeModel({ proto: arch.model });
    sampleMs.push(performance.now() - t0);
    kb.push(bytes.length / 1024);
    flops.push(arch.flops / 1e6);
    params.push(arch.params);
    nodes.push(arch.model.graph!.node!.length);
    const session = await ort.InferenceSession.create(bytes);
    await session.run({ input });
    const t1 = performance.now();
    await session.run({ input });
    ortMs.push(performance.now() - t1);
    await session.release();
  }
  console.log(
    `${family.padEnd(10)} ${median(sampleMs).toFixed(1).padStart(8)}  ${median(kb).toFixed(0).padStart(5)}  ` +
      `${median(flops).toFixed(1).padStart(6)}/${Math.max(...flops).toFixed(1).padEnd(6)}  ` +
      `${String(median(params)).padStart(7)}/${String(Math.max(...params)).padEnd(7)}  ${String(median(nodes)).padStart(6)}  ${median(ortMs).toFixed(1).padStart(8)}`,
  );
}
