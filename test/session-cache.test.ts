/**
 * The kept onnxruntime sessions of calibration: the same bytes and options give the same session
 * (created once), other bytes or options another; a session pushed out of the cache is released
 * (a later call creates it anew), also when it was still in use; a model onnxruntime rejects is not
 * kept. And calibrating one model twice gives the same factors and statistics.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { buildGraph } from '../src/graph/index.js';
import { writeParameters } from '../src/graph/write-parameters.js';
import { encodeModel, readFloat32, readModelFile } from '../src/onnx/index.js';
import { AttributeType, DataType } from '../src/onnx/types.js';
import { calibrate } from '../src/predict/calibrate.js';
import { withSession } from '../src/predict/session-cache.js';

/** y = x · k: a one-node model whose bytes differ with k. */
function scaleModel(k: number): Uint8Array {
  const io = (name: string) => ({ name, type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimValue: 2 }] } } } });
  return encodeModel({
    proto: {
      irVersion: 8, producerName: 'test', opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'g', input: [io('x')], output: [io('y')],
        node: [
          { opType: 'Constant', output: ['k'], attribute: [{ name: 'value_float', type: AttributeType.FLOAT, f: k }] },
          { opType: 'Mul', input: ['x', 'k'], output: ['y'] },
        ],
      },
    },
  } as Parameters<typeof encodeModel>[0]);
}

const OPTIONS: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'basic', logSeverityLevel: 3 };
const run = async (s: ort.InferenceSession) => [...((await s.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2), [2]) })).y!.data as Float32Array)];

describe('withSession', () => {
  it('keeps one session per bytes and options; the two most recent are kept, an evicted one is created anew', async () => {
    const [a, b, c] = [scaleModel(2), scaleModel(3), scaleModel(5)];
    const first = await withSession(a, OPTIONS, async (s) => s);
    assert.equal(await withSession(Uint8Array.from(a), OPTIONS, async (s) => s), first, 'equal bytes in another array: the same session');
    assert.deepEqual(await withSession(a, OPTIONS, run), [2, 4]);
    const other = await withSession(b, OPTIONS, async (s) => s);
    assert.notEqual(other, first);
    assert.deepEqual(await withSession(b, OPTIONS, run), [3, 6]);
    assert.notEqual(await withSession(a, { ...OPTIONS, graphOptimizationLevel: 'disabled' }, async (s) => s), first, 'other options: another session');
    // a (basic) is now the least recently used of three: pushed out and released.
    await assert.rejects(run(first), 'a released session does not run');
    const again = await withSession(a, OPTIONS, async (s) => s);
    assert.notEqual(again, first);
    assert.deepEqual(await withSession(a, OPTIONS, run), [2, 4]);
    assert.deepEqual(await withSession(c, OPTIONS, run), [5, 10]);
  });

  it('a session pushed out while in use is released when its user is done', async () => {
    const busy = scaleModel(7);
    let session: ort.InferenceSession | undefined;
    const result = await withSession(busy, OPTIONS, async (s) => {
      session = s;
      // Two other models fill the cache meanwhile.
      await withSession(scaleModel(11), OPTIONS, run);
      await withSession(scaleModel(13), OPTIONS, run);
      return run(s); // still usable: its user is not done
    });
    assert.deepEqual(result, [7, 14]);
    await assert.rejects(run(session!), 'released once its user was done');
  });

  it('a model onnxruntime rejects is not kept: the error comes again', async () => {
    const junk = Uint8Array.of(1, 2, 3, 4);
    await assert.rejects(withSession(junk, OPTIONS, async (s) => s));
    await assert.rejects(withSession(junk, OPTIONS, async (s) => s));
  });
});

describe('calibrate with a kept session', () => {
  it('resnet_small.preserve13 calibrated twice: the same factors, statistics and report', async () => {
    const once = async () => {
      const model = readModelFile('fixtures/resnet_small.preserve13.onnx');
      const graph = buildGraph(model);
      const values = new Map([...graph.slots.values()].map((slot, k) => [slot.id, Float32Array.from({ length: slot.storedShape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i + k) * 0.1)]));
      const written = writeParameters(graph, values, { adopt: true });
      // 32 noise images, 8 a pass: four passes, the first-pass and the accumulating session.
      const report = await calibrate(graph, written, values, { seed: 3, passValues: 8 * 28 * 28 });
      const initializers = (written.model.proto.graph?.initializer ?? [])
        .filter((t) => t.dataType === DataType.FLOAT).map((t) => [t.name, [...readFloat32(t, written.model)]] as const);
      return { report: { ...report, ms: 0 }, initializers };
    };
    const [a, b] = [await once(), await once()];
    assert.ok(a.report.batchNorms > 0 && a.report.passes > 1, 'BN statistics over several passes: both kept sessions are used');
    assert.deepEqual(b.report, a.report);
    assert.deepEqual(b.initializers, a.initializers);
  });
});
