/**
 * ONNX I/O on real PyTorch 1.13 exports (made by test/onnx-models.py into a temp dir) and on the
 * committed fixtures: byte-identical round trips, typed tensor access, data replacement checked by
 * decoding and by onnxruntime-node, external data, unknown fields, and bad inputs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import protobuf from 'protobufjs';
import { onnxRoot, ModelProtoType } from '../src/onnx/schema.js';
import { bfloat16ToFloat, floatToBfloat16, floatToHalf, halfToFloat } from '../src/onnx/float16.js';
import * as ort from 'onnxruntime-node';
import { GhnError, type GhnErrorKind } from '../src/errors.js';
import {
  allTensors, attrFloat, attrFloats, attrInt, attrInts, attrString, attrStrings, attrTensor, decodeModel,
  encodeModel, externalRef, isExternal, isLazy, numElements, opsetVersion, readFloat32, readModelFile, readTensorData,
  replaceTensorData, tensorShape, toBigInt, toInt64, toNumber, unknownFieldCount, writeModelFile, writeModelWithDataFile,
  DataType, type ModelProto, type NodeProto, type OnnxModel, type TensorProto,
} from '../src/onnx/index.js';

const ROOT = path.resolve(import.meta.dirname, '..');
let dir = '';
let expected: {
  external: Record<string, number>;
  full: Record<string, (number | string)[]>;
  rounding: { values: number[]; half: number[]; bfloat16: number[] };
};

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-onnx-io-'));
  execFileSync('/usr/bin/python3', [path.join(ROOT, 'test/onnx-models.py'), dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const p = (...parts: string[]): string => path.join(dir, ...parts);
const sha = (file: string): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const initializer = (m: OnnxModel, name: string): TensorProto => {
  const t = m.proto.graph!.initializer!.find((x) => x.name === name);
  assert.ok(t, `initializer ${name}`);
  return t;
};
const node = (m: OnnxModel, name: string): NodeProto => m.proto.graph!.node!.find((n) => n.name === name)!;

function expectGhnError(fn: () => unknown, kind: GhnErrorKind, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof GhnError, `expected GhnError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes('\n'), 'one-line message');
    return true;
  });
}

/** Runs a model in onnxruntime-node on a fixed input; returns the first output's raw bytes. */
async function runOrt(model: string | Uint8Array, shape: number[]): Promise<Buffer> {
  const session = await ort.InferenceSession.create(model as string);
  const n = shape.reduce((a, b) => a * b, 1);
  const input = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
  const result = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', input, shape) });
  const out = result[session.outputNames[0]!]!.data as Float32Array;
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

describe('round trip', () => {
  test('load -> save of real PyTorch exports is byte-identical', () => {
    const files = ['cnn_bn13.onnx', 'vit13.onnx', 'vit17.onnx', 'full_fields.onnx', 'external/model.onnx'].map((f) => p(f));
    const fixtures = fs.existsSync(path.join(ROOT, 'fixtures'))
      ? fs.readdirSync(path.join(ROOT, 'fixtures'), { recursive: true, encoding: 'utf8' })
          .filter((f) => f.endsWith('.onnx') && !f.startsWith('large'))
          .map((f) => path.join(ROOT, 'fixtures', f))
      : [];
    for (const [file, lazy] of [...files, ...fixtures].flatMap((f) => [[f, false], [f, true]] as const)) {
      const bytes = fs.readFileSync(file);
      const model = readModelFile(file, { lazy, lazyMinBytes: 256 });
      const bigRaw = allTensors(decodeModel(bytes).proto).some((t) => (t.rawData?.length ?? 0) >= 256);
      assert.equal(allTensors(model.proto).some(isLazy), lazy && bigRaw, `${file} lazy=${lazy}`);
      assert.equal(model.sourceBytes, bytes.length);
      assert.ok(Buffer.from(encodeModel(model)).equals(bytes), `${file} re-encodes to identical bytes`);
      const plain = ModelProtoType.encode(model.proto as never).finish(); // protobufjs in one call
      assert.ok(Buffer.from(plain).equals(bytes), `${file}: part-wise encoder matches protobufjs`);
      const out = path.join(dir, `rt-${lazy}-${path.basename(file)}`);
      writeModelFile(model, out);
      assert.equal(sha(out), sha(file), `${file} written identically`);
      assert.equal(unknownFieldCount(model.proto), 0);
    }
  });

  test('exports have the expected structure (BN kept, attention, opsets)', () => {
    const cnn = readModelFile(p('cnn_bn13.onnx'));
    const ops = (m: OnnxModel) => new Set(m.proto.graph!.node!.map((n) => n.opType));
    assert.ok(ops(cnn).has('BatchNormalization'));
    assert.equal(opsetVersion(cnn), 13);
    assert.equal(opsetVersion(cnn, 'ai.onnx'), 13);
    assert.equal(opsetVersion(cnn, 'com.example'), undefined);
    const vit17 = readModelFile(p('vit17.onnx'));
    for (const op of ['MatMul', 'Softmax', 'LayerNormalization']) assert.ok(ops(vit17).has(op), op);
    assert.equal(opsetVersion(vit17), 17);
    assert.ok(!ops(readModelFile(p('vit13.onnx'))).has('LayerNormalization'));
  });

  test('decoding keeps raw_data as views into the input buffer (no copy)', () => {
    const bytes = fs.readFileSync(p('vit13.onnx'));
    const model = decodeModel(bytes);
    const raws = allTensors(model.proto).filter((t) => t.rawData && t.rawData.length > 0);
    assert.ok(raws.length > 10);
    for (const t of raws) assert.equal(t.rawData!.buffer, bytes.buffer, `${t.name} shares the file buffer`);
    const plain = new Uint8Array(bytes); // a plain Uint8Array, not a Buffer
    const t0 = allTensors(decodeModel(plain).proto).find((t) => t.rawData && t.rawData.length > 0)!;
    assert.equal(t0.rawData!.buffer, plain.buffer);
  });

  test('onnxruntime gives bitwise-identical outputs for a round-tripped model', async () => {
    for (const [file, shape] of [['cnn_bn13.onnx', [2, 1, 16, 16]], ['vit17.onnx', [2, 1, 16, 16]]] as const) {
      const original = await runOrt(p(file), [...shape]);
      const roundTripped = await runOrt(encodeModel(readModelFile(p(file))), [...shape]);
      assert.ok(original.equals(roundTripped), file);
      assert.ok(original.length > 0);
    }
  });
});

describe('lazy loading', () => {
  const lazyCopy = (name: string): string => {
    const file = p(`lazy-${name}`);
    fs.copyFileSync(p(name), file);
    return file;
  };

  test('lazy tensors read the same values as eager ones, and only when asked', () => {
    const eager = readModelFile(p('vit13.onnx'), { lazy: false });
    const lazy = readModelFile(p('vit13.onnx'), { lazy: true, lazyMinBytes: 1024 });
    const a = allTensors(eager.proto);
    const b = allTensors(lazy.proto);
    const lazyOnes = b.filter(isLazy);
    assert.ok(lazyOnes.length >= 5, `${lazyOnes.length} lazy tensors`);
    for (const t of lazyOnes) assert.ok(numElements(t) * 4 >= 1024);
    for (let i = 0; i < a.length; i++) {
      assert.equal(a[i]!.name, b[i]!.name);
      if (a[i]!.dataType === DataType.FLOAT) assert.deepEqual(readFloat32(b[i]!, lazy), readFloat32(a[i]!, eager), a[i]!.name);
    }
    replaceTensorData(lazyOnes[0]!, new Float32Array(numElements(lazyOnes[0]!)).fill(3));
    assert.ok(!isLazy(lazyOnes[0]!), 'replaced data is in memory');
    assert.deepEqual([...new Set(readFloat32(lazyOnes[0]!))], [3]);
  });

  test('a file changed after loading is detected, not read', () => {
    const file = lazyCopy('vit13.onnx');
    const m = readModelFile(file, { lazy: true, lazyMinBytes: 1024 });
    const t = allTensors(m.proto).find(isLazy)!;
    const other = fs.readFileSync(p('vit17.onnx'));
    fs.writeFileSync(file, other);
    expectGhnError(() => readFloat32(t, m), 'missing-data', /changed since it was loaded/);
    expectGhnError(() => writeModelFile(m, p('lazy-out.onnx')), 'missing-data', /changed since it was loaded/);
    assert.ok(!fs.existsSync(p('lazy-out.onnx')));
    fs.rmSync(file);
    expectGhnError(() => readFloat32(t, m), 'missing-data', /gone/);
  });

  test('writing over its own file keeps the model usable', async () => {
    const file = lazyCopy('cnn_bn13.onnx');
    const reference = readModelFile(p('cnn_bn13.onnx'), { lazy: false });
    const m = readModelFile(file, { lazy: true, lazyMinBytes: 256 });
    const lazyOnes = allTensors(m.proto).filter(isLazy);
    assert.ok(lazyOnes.length >= 2);
    // replacing the first lazy tensor with float64-rounded values shifts nothing (same size) but
    // writing still moves the file: the remaining lazy tensors must be found at their new place
    replaceTensorData(lazyOnes[0]!, new Float32Array(numElements(lazyOnes[0]!)).fill(0.5));
    writeModelFile(m, file);
    for (const t of lazyOnes.slice(1)) {
      assert.ok(isLazy(t));
      const ref = reference.proto.graph!.initializer!.find((x) => x.name === t.name)!;
      assert.deepEqual(readFloat32(t, m), readFloat32(ref, reference), t.name);
    }
    writeModelFile(m, p('lazy-again.onnx'));
    assert.equal(sha(p('lazy-again.onnx')), sha(file));
    assert.ok((await runOrt(file, [2, 1, 16, 16])).length > 0);
  });

  test('bad files fail the same way when read lazily', () => {
    const whole = fs.readFileSync(p('vit13.onnx'));
    for (const cut of [10, 1000, 20000, whole.length - 7]) {
      fs.writeFileSync(p('lazy-truncated.onnx'), whole.subarray(0, cut));
      expectGhnError(() => readModelFile(p('lazy-truncated.onnx'), { lazy: true, lazyMinBytes: 256 }), 'bad-input', /not an ONNX model/);
    }
    fs.writeFileSync(p('lazy-random.onnx'), crypto.randomBytes(100000));
    expectGhnError(() => readModelFile(p('lazy-random.onnx'), { lazy: true }), 'bad-input', /not an ONNX model/);
    fs.writeFileSync(p('lazy-empty.onnx'), '');
    expectGhnError(() => readModelFile(p('lazy-empty.onnx'), { lazy: true }), 'bad-input', /the file is empty/);
  });
});

describe('every optional field', () => {
  test('fields set with onnx.helper decode to their values', () => {
    const m = readModelFile(p('full_fields.onnx'));
    const proto = m.proto;
    assert.equal(proto.producerName, 'ghn-test');
    assert.equal(proto.docString, 'model doc');
    assert.equal(toNumber(proto.modelVersion!), 7);
    assert.deepEqual(proto.metadataProps!.map((e) => [e.key, e.value]), [['author', 'ghn'], ['purpose', 'round trip']]);
    const g = proto.graph!;
    assert.equal(g.docString, 'graph doc');
    assert.equal(g.quantizationAnnotation![0]!.quantParameterTensorNames![0]!.value, 'w_double');
    assert.equal(g.sparseInitializer![0]!.values!.name, 'sp_values');
    assert.deepEqual(g.sparseInitializer![0]!.dims!.map((d) => toNumber(d)), [6]);
    assert.equal(g.input![0]!.type!.tensorType!.shape!.dim![0]!.dimParam, 'batch');
    assert.ok(g.valueInfo!.find((v) => v.name === 'seq')!.type!.sequenceType!.elemType!.tensorType);
    assert.equal(g.valueInfo!.find((v) => v.name === 'opt')!.type!.optionalType!.elemType!.tensorType!.elemType, DataType.INT64);
    assert.equal(toNumber(initializer(m, 'segmented').segment!.end!), 2);
    assert.equal(initializer(m, 'w_raw').docString, 'a raw float tensor');
    const fn = proto.functions![0]!;
    assert.deepEqual([fn.domain, fn.name, fn.docString], ['local.fns', 'MyFn', 'a local function']);
    assert.deepEqual(fn.attribute, ['scale', 'tags', 'ratios', 'mode']);
    const ti = proto.trainingInfo![0]!;
    assert.equal(ti.initialization!.initializer![0]!.name, 'step');
    assert.equal(ti.algorithm!.node![0]!.attribute![0]!.g!.name, 'then_body');
    assert.equal(ti.updateBinding![0]!.key, 'w_raw');
    // tensors inside subgraphs and attributes are visited too
    const names = allTensors(proto).map((t) => t.name);
    for (const n of ['w_raw', 'cval', 'sp_values', 'sp_indices', 'step']) assert.ok(names.includes(n), n);
  });

  test('IR 10/11 fields (not settable from onnx 1.12) survive encode -> decode -> encode', () => {
    const meta = [{ key: 'k', value: 'v' }];
    const proto: ModelProto = {
      irVersion: toInt64(10),
      opsetImport: [{ domain: '', version: toInt64(21) }],
      graph: {
        name: 'g',
        node: [{
          input: ['x'], output: ['y'], name: 'n', opType: 'F', domain: 'd', overload: 'o1', metadataProps: meta,
          attribute: [{ name: 'a', type: 2, i: toInt64(-3) }],
        }],
        initializer: [{ name: 'w', dims: [toInt64(2)], dataType: DataType.FLOAT, rawData: new Uint8Array(8), metadataProps: meta }],
        input: [{ name: 'x', type: { opaqueType: { domain: 'od', name: 'on' } }, metadataProps: meta }],
        metadataProps: meta,
      },
      functions: [{
        name: 'F', domain: 'd', overload: 'o1', input: ['a'], output: ['b'], metadataProps: meta,
        attributeProto: [{ name: 'alpha', type: 1, f: 0.5 }],
        valueInfo: [{ name: 'a', type: { tensorType: { elemType: 1 } } }],
        node: [{ input: ['a'], output: ['b'], opType: 'Identity' }],
      }],
    };
    proto.graph!.node![0]!.deviceConfigurations = [{
      configurationId: 'c', pipelineStage: 1,
      shardingSpec: [{ tensorName: 'x', device: [toInt64(0), toInt64(1)], shardedDim: [{ axis: toInt64(0), simpleSharding: [{ dimValue: toInt64(4), numShards: toInt64(2) }] }] }],
    }];
    proto.configuration = [{ name: 'c', numDevices: 2, device: ['cpu0', 'cpu1'] }];
    const bytes = encodeModel({ proto });
    const back = decodeModel(bytes);
    assert.ok(Buffer.from(encodeModel(back)).equals(Buffer.from(bytes)));
    const n = back.proto.graph!.node![0]!;
    assert.equal(n.overload, 'o1');
    assert.equal(n.metadataProps![0]!.value, 'v');
    assert.equal(n.deviceConfigurations![0]!.pipelineStage, 1);
    assert.equal(toNumber(n.deviceConfigurations![0]!.shardingSpec![0]!.shardedDim![0]!.simpleSharding![0]!.numShards), 2);
    assert.equal(back.proto.configuration![0]!.device![1], 'cpu1');
    assert.equal(back.proto.graph!.metadataProps![0]!.key, 'k');
    assert.equal(back.proto.graph!.initializer![0]!.metadataProps![0]!.key, 'k');
    assert.equal(back.proto.graph!.input![0]!.metadataProps![0]!.key, 'k');
    assert.equal(back.proto.graph!.input![0]!.type!.opaqueType!.name, 'on');
    const f = back.proto.functions![0]!;
    assert.deepEqual([f.overload, f.attributeProto![0]!.f, f.valueInfo![0]!.name, f.metadataProps![0]!.value], ['o1', 0.5, 'a', 'v']);
    assert.equal(attrInt(n, 'a'), -3);
    assert.equal(unknownFieldCount(back.proto), 0);
  });
});

describe('typed tensor access', () => {
  test('values from raw_data, float_data, double_data, int32_data (float16) and int64_data', () => {
    const m = readModelFile(p('full_fields.onnx'));
    const close = (a: ArrayLike<number>, b: (number | string)[], what: string) => {
      assert.equal(a.length, b.length, what);
      for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i]! - Number(b[i])) <= 1e-6 * Math.abs(Number(b[i])), `${what}[${i}]`);
    };
    for (const name of ['w_float_data', 'w_raw', 'w_double', 'w_half', 'w_half_raw']) {
      close(readFloat32(initializer(m, name), m), expected.full[name]!, name);
    }
    assert.ok(readTensorData(initializer(m, 'w_double'), m) instanceof Float64Array);
    assert.deepEqual(tensorShape(initializer(m, 'w_raw')), [2, 3]);
    assert.equal(numElements(initializer(m, 'w_raw')), 6);
    const i64 = readTensorData(initializer(m, 'shape_i64'), m);
    assert.ok(i64 instanceof BigInt64Array);
    assert.deepEqual([...i64].map(String), expected.full.shape_i64);
    assert.deepEqual([...readTensorData(initializer(m, 'q_i8'), m)], expected.full.q_i8);
    expectGhnError(() => readTensorData(initializer(m, 'labels'), m), 'unsupported', /labels.*STRING/);
    expectGhnError(() => readFloat32(initializer(m, 'q_i8'), m), 'unsupported', /INT8/);
    assert.deepEqual([...readFloat32(attrTensor(node(m, 'const0'), 'value')!, m)], [2]);
  });

  test('float16 / bfloat16 conversions round like numpy and torch, and are exact both ways', () => {
    const { values, half, bfloat16 } = expected.rounding;
    values.forEach((v, i) => {
      assert.equal(floatToHalf(v), half[i], `half(${v})`);
      assert.equal(floatToBfloat16(v), bfloat16[i], `bfloat16(${v})`);
    });
    assert.deepEqual([floatToHalf(Infinity), floatToHalf(-Infinity), floatToBfloat16(-Infinity)], [0x7c00, 0xfc00, 0xff80]);
    for (let h = 0; h < 0x10000; h++) {
      const f = halfToFloat(h);
      if (Number.isNaN(f)) assert.ok(Number.isNaN(halfToFloat(floatToHalf(f))));
      else assert.equal(floatToHalf(f), h, `half bits ${h}`);
      const b = bfloat16ToFloat(h);
      if (!Number.isNaN(b)) assert.equal(floatToBfloat16(b), h, `bfloat16 bits ${h}`);
    }
  });

  test('unaligned raw_data is copied into an aligned array; aligned raw_data is a view', () => {
    const bytes = fs.readFileSync(p('vit13.onnx'));
    const m = decodeModel(bytes);
    let views = 0;
    let copies = 0;
    for (const t of m.proto.graph!.initializer!.filter((x) => x.dataType === DataType.FLOAT)) {
      const data = readFloat32(t, m);
      const reference = new Float32Array(new Uint8Array(t.rawData!).buffer);
      assert.deepEqual(data, reference, t.name);
      if (data.buffer === bytes.buffer) views++;
      else copies++;
      assert.equal(t.rawData!.byteOffset % 4 === 0, data.buffer === bytes.buffer);
    }
    assert.ok(views + copies > 10);
  });

  test('replacing one tensor changes only that tensor; onnxruntime runs the result', async () => {
    const m = readModelFile(p('cnn_bn13.onnx'));
    const target = m.proto.graph!.initializer!.find((t) => tensorShape(t).length === 4)!;
    const fresh = Float32Array.from({ length: numElements(target) }, (_, i) => ((i * 7919) % 101) / 101 - 0.5);
    replaceTensorData(target, fresh);
    const out = p('cnn_replaced.onnx');
    writeModelFile(m, out);
    const before = readModelFile(p('cnn_bn13.onnx'));
    const afterModel = readModelFile(out);
    const a = allTensors(before.proto);
    const b = allTensors(afterModel.proto);
    assert.equal(a.length, b.length);
    for (let i = 0; i < a.length; i++) {
      assert.equal(a[i]!.name, b[i]!.name);
      assert.deepEqual(tensorShape(a[i]!), tensorShape(b[i]!));
      const same = Buffer.from(a[i]!.rawData!).equals(Buffer.from(b[i]!.rawData!));
      assert.equal(same, a[i]!.name !== target.name, `${a[i]!.name} changed iff replaced`);
    }
    assert.deepEqual(readFloat32(b.find((t) => t.name === target.name)!, afterModel), fresh);
    // Everything but the tensor is unchanged: restoring the old data gives the original bytes back.
    replaceTensorData(target, readFloat32(a.find((t) => t.name === target.name)!, before));
    assert.ok(Buffer.from(encodeModel(m)).equals(fs.readFileSync(p('cnn_bn13.onnx'))));
    const original = await runOrt(p('cnn_bn13.onnx'), [2, 1, 16, 16]);
    const changed = await runOrt(out, [2, 1, 16, 16]);
    assert.equal(changed.length, original.length);
    assert.ok(!changed.equals(original), 'outputs change with the weights');
    assert.ok(new Float32Array(changed.buffer, changed.byteOffset, changed.length / 4).every(Number.isFinite));
  });

  test('replacement keeps float16 / double dtypes and clears the typed fields', () => {
    const m = readModelFile(p('full_fields.onnx'));
    const half = initializer(m, 'w_half');
    replaceTensorData(half, Float32Array.from([0.1, 2, -7, 1 / 3]));
    assert.equal(half.dataType, DataType.FLOAT16);
    assert.equal(half.int32Data!.length, 0);
    assert.equal(half.rawData!.length, 8);
    assert.deepEqual([...readFloat32(half)], [0.0999755859375, 2, -7, 0.333251953125]);
    const dbl = initializer(m, 'w_double');
    replaceTensorData(dbl, Float32Array.from([1, 2, 3]));
    assert.equal(dbl.doubleData!.length, 0);
    assert.deepEqual([...readTensorData(dbl)], [1, 2, 3]);
    const back = decodeModel(encodeModel(m));
    assert.deepEqual([...readFloat32(initializer(back, 'w_half'))], [0.0999755859375, 2, -7, 0.333251953125]);
    assert.equal(initializer(back, 'w_half').name, 'w_half');
    expectGhnError(() => replaceTensorData(dbl, new Float32Array(2)), 'bad-input', /w_double.*2 values.*needs 3/);
    // adopt: a FLOAT tensor takes the array's bytes without a copy; other dtypes still convert
    const raw = initializer(m, 'w_raw');
    const owned = Float32Array.from([1, 2, 3, 4, 5, 6]);
    replaceTensorData(raw, owned, { adopt: true });
    assert.equal(raw.rawData!.buffer, owned.buffer);
    const copied = Float32Array.from([1, 2, 3, 4, 5, 6]);
    replaceTensorData(raw, copied);
    assert.notEqual(raw.rawData!.buffer, copied.buffer);
    replaceTensorData(dbl, Float32Array.from([4, 5, 6]), { adopt: true });
    assert.deepEqual([...readTensorData(dbl)], [4, 5, 6]);
    expectGhnError(() => replaceTensorData(initializer(m, 'q_i8'), new Float32Array(3)), 'unsupported', /INT8/);
  });
});

describe('external data', () => {
  test('reads external tensors and saves them external beside the output', async () => {
    const m = readModelFile(p('external/model.onnx'));
    const ext = allTensors(m.proto).filter(isExternal);
    assert.equal(ext.length, Object.keys(expected.external).length);
    for (const t of ext) {
      const sum = readFloat32(t, m).reduce((s, v) => s + v, 0);
      assert.ok(Math.abs(sum - expected.external[t.name!]!) < 1e-4, t.name);
    }
    fs.mkdirSync(p('copy'));
    writeModelFile(m, p('copy', 'model.onnx'));
    assert.equal(sha(p('copy', 'model.onnx')), sha(p('external/model.onnx')));
    assert.equal(sha(p('copy', 'weights.bin')), sha(p('external/weights.bin')));
    const reference = await runOrt(p('cnn_bn13.onnx'), [2, 1, 16, 16]);
    assert.ok((await runOrt(p('copy', 'model.onnx'), [2, 1, 16, 16])).equals(reference));
  });

  test('a replaced external tensor keeps its offset; only its byte range changes', async () => {
    const m = readModelFile(p('external/model.onnx'));
    const target = allTensors(m.proto).filter(isExternal).find((t) => tensorShape(t).length === 4)!;
    const ref = externalRef(target);
    const fresh = Float32Array.from({ length: numElements(target) }, (_, i) => Math.cos(i));
    replaceTensorData(target, fresh);
    assert.deepEqual(readFloat32(target, m), fresh);
    expectGhnError(() => encodeModel(m), 'unsupported', /writeModelFile/);
    fs.mkdirSync(p('changed'));
    writeModelFile(m, p('changed', 'model.onnx'));
    assert.equal(sha(p('changed', 'model.onnx')), sha(p('external/model.onnx')), 'references unchanged');
    const oldData = fs.readFileSync(p('external/weights.bin'));
    const newData = fs.readFileSync(p('changed/weights.bin'));
    assert.equal(newData.length, oldData.length);
    const end = ref.offset + ref.length!;
    assert.ok(newData.subarray(0, ref.offset).equals(oldData.subarray(0, ref.offset)));
    assert.ok(newData.subarray(end).equals(oldData.subarray(end)));
    assert.ok(newData.subarray(ref.offset, end).equals(Buffer.from(fresh.buffer)));
    const reread = readModelFile(p('changed', 'model.onnx'));
    assert.deepEqual(readFloat32(allTensors(reread.proto).find((t) => t.name === target.name)!, reread), fresh);
    const original = await runOrt(p('external/model.onnx'), [2, 1, 16, 16]);
    assert.ok(!(await runOrt(p('changed', 'model.onnx'), [2, 1, 16, 16])).equals(original));
  });

  test('saving next to the input never touches the input data file', () => {
    const src = p('external/weights.bin');
    const inode = fs.statSync(src).ino;
    const hash = sha(src);
    const m = readModelFile(p('external/model.onnx'));
    writeModelFile(m, p('external/same-data.onnx')); // unchanged data: the data file is reused as is
    assert.equal(fs.statSync(src).ino, inode);
    assert.equal(sha(p('external/same-data.onnx')), sha(p('external/model.onnx')));
    const target = allTensors(m.proto).filter(isExternal)[0]!;
    replaceTensorData(target, new Float32Array(numElements(target)).fill(0.25));
    writeModelFile(m, p('external/edited.onnx'));
    assert.equal(sha(src), hash, 'input data file untouched');
    assert.equal(fs.statSync(src).ino, inode);
    assert.ok(fs.existsSync(p('external/edited.onnx.weights.bin')));
    const edited = readModelFile(p('external/edited.onnx'));
    const t = allTensors(edited.proto).find((x) => x.name === target.name)!;
    assert.equal(externalRef(t).location, 'edited.onnx.weights.bin');
    assert.deepEqual([...new Set(readFloat32(t, edited))], [0.25]);
    // the in-memory model still refers to its own data file
    assert.equal(externalRef(target).location, 'weights.bin');
  });

  test('writeModelWithDataFile gathers every external tensor, replaced or not, into <file>.data', async () => {
    const m = readModelFile(p('external/model.onnx'));
    const ext = allTensors(m.proto).filter(isExternal);
    const target = ext[0]!;
    const fresh = new Float32Array(numElements(target)).fill(0.5);
    replaceTensorData(target, fresh);
    const before = new Map(ext.map((t) => [t.name!, readFloat32(t, m)]));
    fs.mkdirSync(p('bundle'));
    const data = writeModelWithDataFile(m, p('bundle', 'out.onnx'));
    assert.equal(data, p('bundle', 'out.onnx.data'));
    assert.deepEqual(fs.readdirSync(p('bundle')).sort(), ['out.onnx', 'out.onnx.data']);
    const reread = readModelFile(p('bundle', 'out.onnx'));
    const again = allTensors(reread.proto).filter(isExternal);
    assert.equal(again.length, ext.length);
    for (const t of again) {
      const ref = externalRef(t);
      assert.equal(ref.location, 'out.onnx.data');
      assert.equal(ref.offset % 4096, 0, 'page-aligned');
      assert.deepEqual(readFloat32(t, reread), before.get(t.name!), t.name);
    }
    assert.equal(externalRef(target).location, 'weights.bin', 'the in-memory model still refers to its own data file');
    const original = await runOrt(p('external/model.onnx'), [2, 1, 16, 16]);
    assert.ok(!(await runOrt(p('bundle', 'out.onnx'), [2, 1, 16, 16])).equals(original), 'onnxruntime reads the new data file');
  });

  test('overwriting the model itself rewrites its data file atomically', () => {
    fs.mkdirSync(p('inplace'));
    for (const f of ['model.onnx', 'weights.bin']) fs.copyFileSync(p('external', f), p('inplace', f));
    const m = readModelFile(p('inplace/model.onnx'));
    const target = allTensors(m.proto).filter(isExternal).at(-1)!;
    replaceTensorData(target, new Float32Array(numElements(target)).fill(-1));
    writeModelFile(m, p('inplace/model.onnx'));
    assert.deepEqual(fs.readdirSync(p('inplace')).sort(), ['model.onnx', 'weights.bin']);
    assert.equal(sha(p('inplace/model.onnx')), sha(p('external/model.onnx')));
    const again = readModelFile(p('inplace/model.onnx'));
    assert.deepEqual([...new Set(readFloat32(allTensors(again.proto).find((t) => t.name === target.name)!, again))], [-1]);
    assert.equal(fs.statSync(p('inplace/weights.bin')).size, fs.statSync(p('external/weights.bin')).size);
  });
});

describe('unknown fields', () => {
  /** The CNN with field 42 appended to its first node and field 99 to the model: in no ONNX IR. */
  function craft(): Uint8Array {
    const cnn = readModelFile(p('cnn_bn13.onnx')).proto;
    const nodeBytes = onnxRoot.lookupType('onnx.NodeProto').encode(cnn.graph!.node![0]! as never);
    nodeBytes.uint32((42 << 3) | 2).string('from the future');
    const graph = protobuf.Writer.create().uint32((1 << 3) | 2).bytes(nodeBytes.finish());
    onnxRoot.lookupType('onnx.GraphProto').encode({ ...cnn.graph!, node: cnn.graph!.node!.slice(1) } as never, graph);
    // ModelProto fields in field-number order: 1-3, graph (7), opset_import (8), then the unknown.
    const ModelType = onnxRoot.lookupType('onnx.ModelProto');
    const model = ModelType.encode({ ...cnn, graph: undefined, opsetImport: [] } as never);
    model.uint32((7 << 3) | 2).bytes(graph.finish());
    ModelType.encode({ opsetImport: cnn.opsetImport } as never, model);
    model.uint32((99 << 3) | 0).uint64(123456789);
    return model.finish();
  }

  test('are preserved through decode -> encode, at the end of their message', () => {
    const bytes = craft();
    const m = decodeModel(bytes);
    assert.equal(unknownFieldCount(m.proto), 2);
    assert.equal(m.proto.graph!.node!.length, readModelFile(p('cnn_bn13.onnx')).proto.graph!.node!.length);
    assert.ok(Buffer.from(encodeModel(m)).equals(Buffer.from(bytes)), 'byte-identical, unknowns included');
    // a second round trip still has them, and python's onnx reads the file
    const out = p('unknown.onnx');
    writeModelFile(m, out);
    assert.equal(unknownFieldCount(readModelFile(out).proto), 2);
    const check = execFileSync('/usr/bin/python3', ['-c',
      'import onnx,sys; m=onnx.load(sys.argv[1]); onnx.checker.check_model(m); print(len(m.graph.node))', out]);
    assert.equal(Number(check.toString().trim()), m.proto.graph!.node!.length);
  });
});

describe('bad inputs', () => {
  test('each gives a one-line GhnError of the right kind', () => {
    expectGhnError(() => readModelFile(p('nope.onnx')), 'not-found', /nope\.onnx: no such file/);
    fs.writeFileSync(p('empty.onnx'), '');
    expectGhnError(() => readModelFile(p('empty.onnx')), 'bad-input', /empty\.onnx: not an ONNX model \(the file is empty\)/);
    fs.writeFileSync(p('random.onnx'), crypto.randomBytes(4096));
    expectGhnError(() => readModelFile(p('random.onnx')), 'bad-input', /random\.onnx: not an ONNX model/);
    const whole = fs.readFileSync(p('vit13.onnx'));
    for (const cut of [10, 1000, whole.length - 7]) {
      fs.writeFileSync(p('truncated.onnx'), whole.subarray(0, cut));
      expectGhnError(() => readModelFile(p('truncated.onnx')), 'bad-input', /truncated\.onnx: not an ONNX model/);
    }
    fs.writeFileSync(p('text.onnx'), 'hello, this is a text file\n'.repeat(20));
    expectGhnError(() => readModelFile(p('text.onnx')), 'bad-input', /not an ONNX model/);
    expectGhnError(() => readModelFile(dir), 'bad-input', /is a directory/);
    expectGhnError(() => readModelFile('/dev/zero'), 'bad-input', /not a regular file/);
  });

  test('missing external data names the file', () => {
    fs.mkdirSync(p('orphan'));
    fs.copyFileSync(p('external/model.onnx'), p('orphan/model.onnx'));
    expectGhnError(() => readModelFile(p('orphan/model.onnx')), 'missing-data', /weights\.bin/);
    const m = decodeModel(fs.readFileSync(p('external/model.onnx'))); // no baseDir: decodes, data unreachable
    expectGhnError(() => readFloat32(allTensors(m.proto).find(isExternal)!, m), 'missing-data', /weights\.bin/);
    fs.copyFileSync(p('external/weights.bin'), p('orphan/weights.bin'));
    fs.truncateSync(p('orphan/weights.bin'), 100);
    expectGhnError(() => readModelFile(p('orphan/model.onnx')), 'bad-input', /weights\.bin/);
  });

  test('failed writes leave no file behind', () => {
    const m = readModelFile(p('cnn_bn13.onnx'));
    expectGhnError(() => writeModelFile(m, p('no-such-dir', 'x.onnx')), 'not-found', /no-such-dir/);
    const ext = readModelFile(p('external/model.onnx'));
    expectGhnError(() => writeModelFile(ext, p('no-such-dir', 'x.onnx')), 'not-found', /no-such-dir/);
    assert.ok(!fs.existsSync(p('no-such-dir')), 'nothing created for a model with external data either');
    fs.mkdirSync(p('occupied.onnx'));
    assert.throws(() => writeModelFile(m, p('occupied.onnx')), GhnError);
    const leftovers = fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.includes('.tmp-'));
    assert.deepEqual(leftovers, []);
  });
});

describe('attributes and int64', () => {
  test('typed getters, defaults and type errors', () => {
    const m = readModelFile(p('full_fields.onnx'));
    const fn = node(m, 'fn0');
    assert.equal(attrFloat(fn, 'scale'), 1.5);
    assert.deepEqual(attrStrings(fn, 'tags'), ['x', 'y']);
    assert.deepEqual(attrFloats(fn, 'ratios'), [0.25, 0.5]);
    assert.equal(attrString(fn, 'mode'), 'fast');
    assert.deepEqual(attrInts(node(m, 'tr'), 'perm'), [1, 0]);
    assert.ok(Math.abs(attrFloat(node(m, 'lrelu'), 'alpha')! - 0.2) < 1e-7);
    assert.equal(attrInt(fn, 'missing'), undefined);
    assert.equal(attrInt(fn, 'missing', 4), 4);
    assert.deepEqual(attrInts(fn, 'missing', [1]), [1]);
    expectGhnError(() => attrInt(fn, 'scale'), 'bad-input', /fn0 \(MyFn\): attribute 'scale' is FLOAT, expected INT/);
    const conv = readModelFile(p('cnn_bn13.onnx')).proto.graph!.node!.find((n) => n.opType === 'Conv')!;
    assert.deepEqual(attrInts(conv, 'kernel_shape'), [3, 3]);
  });

  test('int64 conversions are exact or fail', () => {
    const big = toInt64(2 ** 40);
    assert.equal(toNumber(big), 2 ** 40);
    assert.equal(toNumber(toInt64(-5)), -5);
    assert.equal(toBigInt(toInt64(2n ** 62n)), 2n ** 62n);
    expectGhnError(() => toNumber(toInt64(2n ** 62n)), 'unsupported', /4611686018427387904/);
    expectGhnError(() => toNumber(2n ** 60n), 'unsupported', /beyond/);
  });
});
