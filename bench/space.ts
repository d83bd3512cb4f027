import { sampleArchitecture } from '../src/space/sample.ts';
import { encodeModel } from '../src/onnx/index.ts';
import * as ort from 'onnxruntime-node';
const fam = (process.argv[2] ?? 'cnn') as any;
const n = Number(process.argv[3] ?? 5);
for (let s = 0; s < n; s++) {
  const t0 = performance.now();
  const a = sampleArchitecture(s, { family: fam });
  const bytes = encodeModel({ proto: a.model });
  const t1 = performance.now();
  const sess = await ort.InferenceSession.create(bytes);
  const [, c, h, w] = [2, 1, 28, 28];
  const x = new ort.Tensor('float32', Float32Array.from({ length: 2 * c * h * w }, (_, i) => Math.sin(i)), [2, c, h, w]);
  const out = await sess.run({ input: x });
  const l = out.logits;
  console.log(a.id, (a.flops / 1e6).toFixed(2), 'MF', a.params, 'p', a.model.graph!.node!.length, 'nodes', l.dims, Array.from(l.data as Float32Array).slice(0, 3).map((v) => v.toFixed(3)), `${(t1 - t0).toFixed(0)}ms`, JSON.stringify(a.config).slice(0, 150));
}
