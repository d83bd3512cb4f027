import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { initBackend } from '../src/engine/backend.js';
import { DEFAULT_GHN_CONFIG, GhnModel } from '../src/ghn/model.js';
import { loadGhn, saveGhn } from '../src/ghn/serialize.js';
import { wantsHugePagesRelaunch } from '../src/cli/huge-pages.js';
import { readModelFile } from '../src/onnx/index.js';

const CLI = path.resolve('src/cli/main.ts');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-cmd-'));
const GHN_FILE = path.join(tmp, 'untrained.ghn');

function ghn(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  await initBackend();
  const model = new GhnModel(DEFAULT_GHN_CONFIG);
  saveGhn(GHN_FILE, model);
  model.dispose();
});

describe('ghn predict', () => {
  it('writes <model>.ghn.onnx beside the input and prints a summary with stage times', () => {
    const input = path.join(tmp, 'resnet.onnx');
    fs.copyFileSync('fixtures/resnet_small.preserve13.onnx', input);
    const before = fs.readFileSync(input);
    const r = ghn('predict', input, '--ghn', GHN_FILE);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /predicted 82,426 parameters in 35 tensors/);
    assert.match(r.stdout, /GHN \d+ ms/);
    const out = path.join(tmp, 'resnet.ghn.onnx');
    assert.ok(readModelFile(out).proto.graph);
    assert.ok(before.equals(fs.readFileSync(input)), 'input untouched');
    assert.deepEqual(fs.readdirSync(tmp).filter((f) => f.includes('.tmp')), [], 'no temporary files left');
  });

  it('a model with external data gets its predicted tensors in one data file beside the output; the input files are untouched', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'external-'));
    for (const f of fs.readdirSync('fixtures/external')) fs.copyFileSync(path.join('fixtures/external', f), path.join(dir, f));
    const inputs = Object.fromEntries(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f))]));
    const r = ghn('predict', path.join(dir, 'resnet_small.preserve13.onnx'), '--ghn', GHN_FILE);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /tensors in .*resnet_small\.preserve13\.ghn\.onnx\.data\): predicted 82,426 parameters/);
    assert.deepEqual(fs.readdirSync(dir).sort(), [
      'resnet_small.preserve13.data', 'resnet_small.preserve13.ghn.onnx', 'resnet_small.preserve13.ghn.onnx.data', 'resnet_small.preserve13.onnx',
    ], 'the output pair and nothing half-written (no staging directory) beside the inputs');
    for (const [f, bytes] of Object.entries(inputs)) assert.ok(bytes.equals(fs.readFileSync(path.join(dir, f))), `${f} untouched`);
    const written = readModelFile(path.join(dir, 'resnet_small.preserve13.ghn.onnx'));
    const external = written.proto.graph!.initializer!.filter((t) => t.externalData?.length);
    assert.ok(external.length > 0);
    for (const t of external) assert.equal(t.externalData!.find((e) => e.key === 'location')?.value, 'resnet_small.preserve13.ghn.onnx.data');
  });

  it('refuses to overwrite the input', () => {
    const input = path.join(tmp, 'keep.onnx');
    fs.copyFileSync('fixtures/mlp.eval13.onnx', input);
    const r = ghn('predict', input, '-o', input, '--ghn', GHN_FILE);
    assert.equal(r.code, 64);
    assert.match(r.stderr, /refusing to overwrite the input/);
  });

  it('bad options and a missing GHN are one-line errors', () => {
    const bad = ghn('predict', 'fixtures/mlp.eval13.onnx', '--noise', 'lots', '--ghn', GHN_FILE);
    assert.equal(bad.code, 64);
    assert.match(bad.stderr.trim(), /^ghn: --noise must be a number/);
    const missing = ghn('predict', 'fixtures/mlp.eval13.onnx', '-o', path.join(tmp, 'x.onnx'), '--ghn', path.join(tmp, 'none.ghn'));
    assert.equal(missing.code, 5);
    assert.match(missing.stderr.trim(), /^ghn: no GHN at/);
  });
});

describe('ghn finetune', () => {
  it('trains on the bundled subset and writes a model that onnxruntime evaluates alike', () => {
    const out = path.join(tmp, 'tuned.onnx');
    const r = ghn('finetune', 'fixtures/resnet_small.preserve13.onnx', '--data-dir', 'fixtures/fashion-mnist',
      '--steps', '8', '--test-limit', '300', '-o', out, '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.steps, 8);
    assert.ok(Math.abs(report.testAccuracy - report.ortAccuracy) <= 0.01, JSON.stringify(report));
    assert.ok(fs.existsSync(out));
  });

  it('a missing dataset names the Debian package', () => {
    const r = ghn('finetune', 'fixtures/mlp.eval13.onnx', '--data-dir', path.join(tmp, 'nowhere'), '-o', path.join(tmp, 'y.onnx'));
    assert.equal(r.code, 5);
    assert.match(r.stderr, /dataset-fashion-mnist/);
  });
});

describe('heavy commands re-run with huge pages for malloc (src/cli/huge-pages.ts)', () => {
  it('only for heavy commands, on Linux, unless turned off or already set', () => {
    const argv = (...args: string[]) => ['node', 'ghn', ...args];
    assert.equal(wantsHugePagesRelaunch(argv('inspect', 'm.onnx'), {}), false);
    assert.equal(wantsHugePagesRelaunch(argv('--version'), {}), false);
    assert.equal(wantsHugePagesRelaunch(argv('serve'), {}), false);
    // predict runs in place: huge pages cost it more than they saved (see huge-pages.ts).
    assert.equal(wantsHugePagesRelaunch(argv('predict', 'm.onnx'), {}), false);
    assert.equal(wantsHugePagesRelaunch(argv('finetune', 'm.onnx'), { GHN_HUGE_PAGES: '0' }), false);
    assert.equal(wantsHugePagesRelaunch(argv('finetune', 'm.onnx'), { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1' }), false);
    if (process.platform !== 'linux') assert.equal(wantsHugePagesRelaunch(argv('finetune', 'm.onnx'), {}), false);
  });

  it('the re-run is invisible: same output file, summary and exit codes as running in place', () => {
    const input = path.join(tmp, 'relaunch.onnx');
    fs.copyFileSync('fixtures/cnn_small.preserve13.onnx', input);
    const run = (env: NodeJS.ProcessEnv, ...args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
    const relaunched = run({}, 'predict', input, '--ghn', GHN_FILE, '-o', path.join(tmp, 'a.onnx'));
    const inPlace = run({ GHN_HUGE_PAGES: '0' }, 'predict', input, '--ghn', GHN_FILE, '-o', path.join(tmp, 'b.onnx'));
    assert.equal(relaunched.status, 0, relaunched.stderr);
    assert.equal(inPlace.status, 0, inPlace.stderr);
    assert.match(relaunched.stdout, /predicted [\d,]+ parameters/);
    assert.ok(fs.readFileSync(path.join(tmp, 'a.onnx')).equals(fs.readFileSync(path.join(tmp, 'b.onnx'))));
    const missing = run({}, 'predict', path.join(tmp, 'missing.onnx'));
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /no such file/);
  });
});

describe('bad input fails at once, in one line, before any long work', () => {
  const oneLine = (r: { stderr: string }) => assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);

  it('an unknown option or command is one line with a suggestion', () => {
    const r = ghn('predict', 'fixtures/mlp.eval13.onnx', '--nosie', '0');
    assert.equal(r.code, 64);
    oneLine(r);
    assert.equal(r.stderr.trim(), "ghn: unknown option '--nosie' (did you mean --noise?)");
    const cmd = ghn('frobnicate');
    assert.equal(cmd.code, 64);
    oneLine(cmd);
  });

  it('ghn eval: a missing GHN, a folder, or not a GHN', () => {
    const missing = ghn('eval', '--ghn', path.join(tmp, 'none.ghn'));
    assert.equal(missing.code, 5);
    oneLine(missing);
    assert.match(missing.stderr, /^ghn: no GHN at/);
    const folder = ghn('eval', '--ghn', tmp);
    assert.equal(folder.code, 3);
    oneLine(folder);
    const junk = path.join(tmp, 'junk.ghn');
    fs.writeFileSync(junk, 'not a ghn');
    const notGhn = ghn('eval', '--ghn', junk);
    assert.equal(notGhn.code, 3);
    oneLine(notGhn);
  });

  it('ghn train: --out a folder or in an unwritable place, refused before the data loads; nothing written', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'train-out-'));
    const folder = ghn('train', '--out', `${dir}/`, '--steps', '1', '--eval-archs', '0');
    assert.equal(folder.code, 64);
    oneLine(folder);
    assert.match(folder.stderr, /is a folder; --out is a file prefix/);
    const unwritable = ghn('train', '--out', '/proc/ghn-test', '--steps', '1', '--eval-archs', '0');
    assert.notEqual(unwritable.code, 0);
    oneLine(unwritable);
    assert.match(unwritable.stderr, /cannot write in \/proc/);
    const missingDir = ghn('train', '--out', path.join(dir, 'no', 'such', 'ghn'), '--steps', '1', '--eval-archs', '0');
    assert.equal(missingDir.code, 2);
    assert.match(missingDir.stderr, /does not exist/);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it('ghn train never overwrites a trained GHN unless told to continue it', () => {
    const prefix = path.join(fs.mkdtempSync(path.join(tmp, 'train-keep-')), 'mine');
    fs.copyFileSync(GHN_FILE, `${prefix}.ghn`);
    const before = fs.readFileSync(`${prefix}.ghn`);
    const r = ghn('train', '--out', prefix, '--steps', '1', '--eval-archs', '0');
    assert.equal(r.code, 64);
    assert.match(r.stderr.trim(), /^ghn: \S+mine\.ghn exists: pass --resume/);
    assert.deepEqual(fs.readFileSync(`${prefix}.ghn`), before);
  });

  it('ghn train --resume keeps the recorded meta-batch, images and pool unless given again', () => {
    const prefix = path.join(fs.mkdtempSync(path.join(tmp, 'train-resume-')), 'g');
    const data = ['--data-dir', 'fixtures/fashion-mnist', '--eval-archs', '0'];
    const first = ghn('train', '--out', prefix, '--steps', '1', '--meta-batch', '1', '--images', '8', '--pool', '2', ...data);
    assert.equal(first.code, 0, first.stderr);
    const resumed = ghn('train', '--out', prefix, '--resume', '--steps', '2', ...data);
    assert.equal(resumed.code, 0, resumed.stderr);
    const again = ghn('train', '--out', prefix, '--resume', '--steps', '3', '--images', '4', ...data);
    assert.equal(again.code, 0, again.stderr);
    const tails = (loadGhn(`${prefix}.ghn`).header.recipe as { tails: { metaBatch: number; images: number; poolSize: number }[] }).tails;
    assert.deepEqual(tails.map((t) => [t.metaBatch, t.images, t.poolSize]), [[1, 8, 2], [1, 4, 2]]);
  });

  it('ghn finetune: -o a folder or unwritable, refused before training; the folder is unchanged', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'ft-out-'));
    const folder = ghn('finetune', 'fixtures/mlp.eval13.onnx', '-o', dir, '--data-dir', 'fixtures/fashion-mnist', '--steps', '1');
    assert.equal(folder.code, 64);
    oneLine(folder);
    assert.match(folder.stderr, /is a directory; give a file name/);
    const unwritable = ghn('finetune', 'fixtures/mlp.eval13.onnx', '-o', '/proc/ghn-test.onnx', '--data-dir', 'fixtures/fashion-mnist', '--steps', '1');
    assert.notEqual(unwritable.code, 0);
    oneLine(unwritable);
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});
