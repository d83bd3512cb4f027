/**
 * The unjoined write of predict's output: writePartsFile writes exactly the bytes encodeModel
 * joins (lazy tensors read from the model file included), stageFile of parts commits them, and
 * predict's file equals its `onnx` bytes, joined on request, also when the output replaces the input.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { predict } from '../src/api/predict.js';
import { buildGraph } from '../src/graph/index.js';
import { writeParameters } from '../src/graph/write-parameters.js';
import { allTensors, encodeModel, encodeModelParts, isLazy, readModelFile, writePartsFile } from '../src/onnx/index.js';
import { stageFile } from '../src/predict/staged-file.js';

const GHN_FILE = 'models/ghn-fmnist.ghn';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-write-parts-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const md5 = (bytes: Uint8Array) => crypto.createHash('md5').update(bytes).digest('hex');

describe('writePartsFile', () => {
  for (const fixture of ['resnet_small.preserve13', 'vit_small.eval13']) {
    it(`${fixture}: the file holds encodeModel's bytes, unchanged lazy tensors and predicted ones alike`, async () => {
      const model = readModelFile(`fixtures/${fixture}.onnx`, { lazy: true, lazyMinBytes: 256 });
      assert.ok(allTensors(model.proto).some(isLazy), 'some tensors are still in the model file');
      const graph = buildGraph(model);
      // Half the slots replaced (in memory), the rest left lazy: both kinds of part are written.
      const slots = [...graph.slots.values()].filter((_, k) => k % 2 === 0);
      const { model: written } = writeParameters(graph, new Map(slots.map((s) => [s.id, new Float32Array(s.elements).fill(0.25)])));
      const file = path.join(dir, `${fixture}.onnx`);
      await writePartsFile(file, encodeModelParts(written));
      assert.equal(md5(fs.readFileSync(file)), md5(encodeModel(written)));
    });
  }

  it('stageFile of parts commits the same bytes, and a missing directory fails with not-found', async () => {
    const model = readModelFile('fixtures/cnn_small.eval13.onnx');
    const file = path.join(dir, 'staged.onnx');
    const staged = stageFile(file, encodeModelParts(model));
    await staged.written;
    assert.ok(fs.existsSync(staged.tmpPath));
    await staged.commit();
    assert.equal(md5(fs.readFileSync(file)), md5(encodeModel(model)));
    assert.ok(!fs.existsSync(staged.tmpPath));
    const missing = stageFile(path.join(dir, 'no-such-dir', 'x.onnx'), encodeModelParts(model));
    await assert.rejects(missing.written, (err: Error & { kind?: string }) => err.kind === 'not-found');
  });
});

describe('predict with an output file', () => {
  it('writes the bytes it returns, and the same bytes as without a file', async () => {
    const file = path.join(dir, 'resnet_small.onnx');
    const toFile = await predict('fixtures/resnet_small.preserve13.onnx', { ghn: GHN_FILE, output: file });
    const inMemory = await predict('fixtures/resnet_small.preserve13.onnx', { ghn: GHN_FILE });
    const written = fs.readFileSync(file);
    assert.equal(md5(written), md5(toFile.onnx));
    assert.equal(md5(written), md5(inMemory.onnx));
    assert.equal(toFile.report.validation?.finite, true);
  });

  it('over its own input: the file and the returned bytes are the prediction', async () => {
    const expected = (await predict('fixtures/vit_small.eval13.onnx', { ghn: GHN_FILE })).onnx;
    const input = path.join(dir, 'in-place.onnx');
    fs.copyFileSync('fixtures/vit_small.eval13.onnx', input);
    const { onnx } = await predict(input, { ghn: GHN_FILE, output: input });
    assert.equal(md5(onnx), md5(expected));
    assert.equal(md5(fs.readFileSync(input)), md5(expected));
  });
});
