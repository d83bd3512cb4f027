/**
 * Every README block that test/package.test.ts does not run: the PyTorch snippet (python3-torch),
 * the onnxruntime snippet (onnxruntime-node), the service and the training commands, each as
 * written, in a scratch folder laid out like a clone (fixtures/ and scripts/ linked in) where
 * `npx ghn` is this working tree's CLI run from source. Also that no README block escapes the tests.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO, classifiedBlocks, describeRun, onnxCheckErrors, run, runShellBlock, startShellBlock } from './readme-blocks.js';

const blocks = classifiedBlocks();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe('README snippets', { timeout: 240_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-readme-'));

  before(() => {
    for (const d of ['fixtures', 'scripts']) fs.symlinkSync(path.join(REPO, d), path.join(dir, d), 'dir');
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'readme-snippets', private: true }) + '\n');
    // `npx ghn` finds the local bin first (and the environment is offline, so it never fetches one).
    fs.mkdirSync(path.join(dir, 'node_modules/.bin'), { recursive: true });
    const tsx = import.meta.resolve('tsx');
    const bin = path.join(dir, 'node_modules/.bin/ghn');
    fs.writeFileSync(bin, `#!/bin/sh\nexec "${process.execPath}" --import "${tsx}" "${path.join(REPO, 'src/cli/main.ts')}" "$@"\n`);
    fs.chmodSync(bin, 0o755);
    fs.symlinkSync(path.join(REPO, 'node_modules/onnxruntime-node'), path.join(dir, 'node_modules/onnxruntime-node'), 'dir');
    // `npx tsx scripts/…` as in a clone, where tsx is a dev dependency.
    fs.symlinkSync(path.join(REPO, 'node_modules/.bin/tsx'), path.join(dir, 'node_modules/.bin/tsx'));
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('runs every runnable block in a test (this file or package.test.ts)', () => {
    // classifiedBlocks() threw at load time otherwise; the test block is what CI runs.
    assert.equal(blocks.tests.code.trim(), 'npm test');
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
    assert.ok(pkg.scripts.test, 'package.json has a test script');
    assert.match(fs.readFileSync(path.join(REPO, '.ci/run'), 'utf8'), /^npm test$/m, '.ci/run runs npm test');
    assert.ok(fs.readFileSync(path.join(REPO, 'README.md'), 'utf8').split('\n').length <= 250, 'README.md is at most 250 lines');
  });

  it('loads a prediction into PyTorch as the README shows', async () => {
    fs.writeFileSync(path.join(dir, 'load.py'), blocks.pytorch.code);
    const r = await run('/usr/bin/python3', ['load.py'], { cwd: dir, timeoutMs: 180_000 });
    assert.equal(r.status, 0, describeRun(r));
    assert.match(r.stdout, /^(\d+) parameters loaded, missing: \[\]$/m, describeRun(r));
    const std = Number(/logits std (\S+)/.exec(r.stdout)?.[1]);
    assert.ok(std > 0.01 && std < 100, `logits std ${std}`);
  });

  it('runs the quick start prediction in onnxruntime as the README shows', async () => {
    const predictLine = blocks.quickStart.code.split('\n').find((l) => /^npx ghn predict /.test(l));
    assert.ok(predictLine, 'the quick start has an npx ghn predict line');
    const predicted = await runShellBlock(predictLine, dir, undefined, 120_000);
    assert.equal(predicted.status, 0, describeRun(predicted));
    fs.writeFileSync(path.join(dir, 'ort.mjs'), blocks.onnxruntime.code);
    const r = await run(process.execPath, ['ort.mjs'], { cwd: dir, timeoutMs: 60_000 });
    assert.equal(r.status, 0, describeRun(r));
    assert.match(r.stdout, /\[ 1, 10 \] class \d/);
  });

  it('runs the service and the requests to it as the README shows (on a free port)', async () => {
    const port = String(await freePort());
    assert.match(blocks.serve.code, /--port 8080/);
    const out = /-o (\S+)/.exec(blocks.serveClient.code)?.[1];
    assert.ok(out, 'the request block writes a file with -o');
    const server = startShellBlock(blocks.serve.code.replaceAll('8080', port), dir, undefined, 120_000);
    let client;
    try {
      client = await runShellBlock(blocks.serveClient.code.replaceAll('8080', port), dir, undefined, 90_000);
    } finally {
      server.kill(); // Ctrl-C: the whole process group
    }
    const served = await server.done;
    assert.equal(client.status, 0, `${describeRun(client)}\n--- server\n${describeRun(served)}`);
    assert.match(client.stdout, /"status":"ok"/, describeRun(client));
    assert.equal(await onnxCheckErrors([path.join(dir, out)]), '');
  });

  it('trains and evaluates a GHN as the README shows', async () => {
    const r = await runShellBlock(blocks.train.code, dir, undefined, 180_000);
    assert.equal(r.status, 0, describeRun(r));
    const ghns = [...blocks.train.code.matchAll(/\bghn train\b.*--out (\S+)/g)].map((m) => m[1]!);
    assert.ok(ghns.length >= 2, 'the block trains on Fashion-MNIST and on an image folder');
    for (const out of ghns) assert.ok(fs.existsSync(path.join(dir, `${out}.ghn`)), `${out}.ghn was not written`);
    assert.match(r.stdout, /mean\s+\d+\s+[\d.]+%/, describeRun(r));
    // The folder's GHN: trained on the folder's shape and classes, and the file it predicts is calibrated and fitted on it.
    assert.match(r.stdout, /trained on [^\n]*my-images[^\n]*1×28×28, 10 classes/, describeRun(r));
    const predicted = /-o (\S+\.onnx)/.exec(blocks.train.code)?.[1];
    assert.ok(predicted, 'the block predicts a model with the folder GHN');
    assert.match(r.stdout, /fitted on \d+ labeled images of my-images/, describeRun(r));
    assert.equal(await onnxCheckErrors([path.join(dir, predicted)]), '');
  });
});
