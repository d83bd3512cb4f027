import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { GhnError } from '../src/errors.js';
import { buildGraph } from '../src/graph/index.js';
import { decodeModel, encodeModel, readFloat32, readModelFile } from '../src/onnx/index.js';
import { stageFile } from '../src/predict/staged-file.js';
import { drawCheckInputs, validateWithOrt } from '../src/predict/validate.js';
import { writeParameters } from '../src/graph/write-parameters.js';
import { createRng, gaussian } from '../src/util/random.js';

function randomTensors(graph: ReturnType<typeof buildGraph>, seed: number) {
  const rng = createRng(seed);
  const tensors = new Map<string, Float32Array>();
  for (const slot of graph.slots.values()) {
    const data = new Float32Array(slot.elements);
    for (let i = 0; i < data.length; i++) data[i] = 0.05 * gaussian(rng);
    tensors.set(slot.id, data);
  }
  return tensors;
}

for (const fixture of ['resnet_small.preserve13', 'vit_small.preserve13', 'convnext_small.eval13', 'mobilenet_small.preserve17']) {
  describe(`writing predicted parameters into ${fixture}`, () => {
    const original = readModelFile(`fixtures/${fixture}.onnx`);
    const graph = buildGraph(original);
    const tensors = randomTensors(graph, 1);
    const written = writeParameters(graph, tensors);
    const bytes = encodeModel(written.model);
    const reread = decodeModel(bytes);
    const byName = new Map(reread.proto.graph!.initializer!.map((t) => [t.name!, t]));

    it('every slot holds exactly its own values, in the stored layout', () => {
      for (const slot of graph.slots.values()) {
        const name = written.initializerOf.get(slot.id)!;
        assert.deepEqual(readFloat32(byName.get(name)!, reread), tensors.get(slot.id));
      }
      assert.equal(new Set(written.initializerOf.values()).size, graph.slots.size, 'no two slots share a tensor');
    });

    it('non-parameter initializers are byte-identical', () => {
      const params = new Set([...graph.slots.values()].map((s) => s.initializer));
      for (const t of original.proto.graph!.initializer!) {
        if (params.has(t.name!)) continue;
        const after = byName.get(t.name!)!;
        assert.deepEqual(after.rawData, t.rawData, t.name);
        assert.deepEqual(after.dims, t.dims, t.name);
      }
    });

    it('the re-imported graph is the same graph with one initializer per slot', () => {
      const again = buildGraph(reread);
      assert.equal(again.parameterCount, graph.parameterCount);
      assert.deepEqual(again.ops.map((op) => op.kind), graph.ops.map((op) => op.kind));
      for (const slot of again.slots.values()) assert.equal(slot.shareCount, 1);
    });

    it('runs in onnxruntime with finite outputs', async () => {
      const report = await validateWithOrt(bytes);
      assert.ok(report.finite);
      assert.deepEqual(report.outputShape, [2, 10]);
      assert.ok(report.outputStd > 0);
    });

    it('the check with its batch drawn ahead (while the file is written) reports what it reports drawing its own; a batch of another shape is not used', async () => {
      const own = await validateWithOrt(bytes, { batch: 1, seed: 3 });
      const ahead = drawCheckInputs(written.model.proto, { batch: 1, seed: 3 });
      assert.deepEqual(ahead.map((x) => x.shape), [own.inputShape]);
      const drawnAhead = await validateWithOrt(bytes, { batch: 1, seed: 3, inputs: ahead });
      assert.deepEqual({ ...drawnAhead, ms: 0 }, { ...own, ms: 0 });
      const otherSeed = await validateWithOrt(bytes, { batch: 1, seed: 3, inputs: drawCheckInputs(written.model.proto, { batch: 1, seed: 4 }) });
      // The batch drawn ahead is the one run: seed 4's report (another one where the output depends on the input).
      assert.deepEqual({ ...otherSeed, ms: 0 }, { ...(await validateWithOrt(bytes, { batch: 1, seed: 4 })), ms: 0 });
      const wrongShape = await validateWithOrt(bytes, { batch: 1, seed: 3, inputs: drawCheckInputs(written.model.proto, { batch: 2, seed: 4 }) });
      assert.deepEqual({ ...wrongShape, ms: 0 }, { ...own, ms: 0 });
    });

    it('leaves the input model untouched', () => {
      const fresh = readModelFile(`fixtures/${fixture}.onnx`);
      assert.deepEqual(encodeModel(original), encodeModel(fresh));
    });
  });
}

describe('stageFile (the output written while onnxruntime checks it)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-staged-'));
  const leftovers = () => fs.readdirSync(dir).filter((f) => f.includes('.tmp-'));

  it('commit() puts the bytes at the destination and leaves no temp file', async () => {
    const file = path.join(dir, 'a.onnx');
    const bytes = Uint8Array.from({ length: 3 << 20 }, (_, i) => i % 251);
    await stageFile(file, bytes).commit();
    assert.deepEqual(new Uint8Array(fs.readFileSync(file)), bytes);
    assert.deepEqual(leftovers(), []);
  });

  it('discard() leaves an existing destination untouched and removes the temp file', async () => {
    const file = path.join(dir, 'b.onnx');
    fs.writeFileSync(file, 'before');
    await stageFile(file, new Uint8Array(1 << 20).fill(7)).discard();
    assert.equal(fs.readFileSync(file, 'utf8'), 'before');
    assert.deepEqual(leftovers(), []);
  });

  it('a destination in a missing directory fails at commit() with a not-found GhnError', async () => {
    const staged = stageFile(path.join(dir, 'missing', 'c.onnx'), new Uint8Array(16));
    await assert.rejects(staged.commit(), (err: unknown) => err instanceof GhnError && err.kind === 'not-found');
  });
});
