import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { decodeModel, encodeModel, readModelFile } from '../src/onnx/index.js';

const CLI = path.resolve('src/cli/main.ts');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-cli-'));

function ghn(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertOneLineError(r: ReturnType<typeof ghn>, code: number, pattern: RegExp) {
  assert.equal(r.code, code, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got: ${r.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\bat .*\.(ts|js):\d+/, 'no stack trace');
}

describe('ghn inspect', () => {
  it('prints a readable summary', () => {
    const r = ghn('inspect', 'fixtures/resnet_small.preserve13.onnx');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /parameters: 82,426 in 35 tensors/);
    assert.match(r.stdout, /batch_norm\s+11/);
    assert.match(r.stdout, /not recognized: nothing/);
  });

  it('--json gives params, ops and unsupported', () => {
    const r = ghn('inspect', 'fixtures/vit_small.preserve17.onnx', '--json');
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    const torch = JSON.parse(fs.readFileSync('fixtures/vit_small.state.json', 'utf8'));
    assert.equal(json.params.elements, torch.params);
    assert.equal(json.params.tensors, Object.keys(torch.parameters).length);
    assert.equal(json.ops.layer_norm, 9);
    assert.deepEqual(json.unsupported, []);
  });

  it('reads tensors stored as external data', () => {
    const r = ghn('inspect', 'fixtures/external/resnet_small.preserve13.onnx', '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).params.elements, 82426);
  });

  it('missing file', () => assertOneLineError(ghn('inspect', path.join(tmp, 'nope.onnx')), 2, /no such file/));

  it('not ONNX', () => {
    const file = path.join(tmp, 'text.onnx');
    fs.writeFileSync(file, 'this is not a model\n'.repeat(50));
    assertOneLineError(ghn('inspect', file), 3, /not an ONNX model/);
  });

  it('truncated file', () => {
    const bytes = fs.readFileSync('fixtures/cnn_small.eval13.onnx');
    const file = path.join(tmp, 'truncated.onnx');
    fs.writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2)));
    assertOneLineError(ghn('inspect', file), 3, /not an ONNX model/);
  });

  it('missing external data file', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'ext-'));
    fs.copyFileSync('fixtures/external/resnet_small.preserve13.onnx', path.join(dir, 'm.onnx'));
    assertOneLineError(ghn('inspect', path.join(dir, 'm.onnx')), 5, /resnet_small\.preserve13\.data/);
  });

  it('unknown operator: named, listed, the rest still inspected, non-zero exit', () => {
    const model = readModelFile('fixtures/resnet_small.eval13.onnx');
    const bytes = encodeModel(model);
    const copy = decodeModel(bytes);
    const relu = copy.proto.graph!.node!.find((n) => n.opType === 'Relu')!;
    relu.opType = 'FancyActivation';
    relu.domain = 'com.example';
    const file = path.join(tmp, 'custom.onnx');
    fs.writeFileSync(file, encodeModel(copy));
    const r = ghn('inspect', file, '--json');
    assert.equal(r.code, 4);
    const json = JSON.parse(r.stdout);
    assert.equal(json.unsupported.length, 1);
    assert.equal(json.unsupported[0].opType, 'com.example::FancyActivation');
    assert.equal(json.params.elements, 82058, 'the rest of the model is still inspected');
    assert.match(r.stderr.trim(), /^ghn: .*unsupported: com\.example::FancyActivation/);
  });

  it('bad usage exits non-zero', () => {
    const r = ghn('inspect');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /missing required argument/);
  });
});
