/**
 * A newcomer's first minutes, end to end: the README's quick start run exactly as written in a fresh
 * checkout (a copy of this working tree's tracked and unignored files, without node_modules or
 * dist), the package packed from it, the README's install commands run in an empty project, and
 * `npx ghn` used there — with no npm warning anywhere. Also what the tarball holds.
 *
 * Offline: every dependency comes from the npm cache that `npm ci` filled. `npm install <tarball>`
 * in an empty project cannot run offline as is (it needs the registry's package documents to
 * resolve the dependency ranges, and `npm ci` caches only the tarballs), so the project is given a
 * package-lock.json made from this repository's: the tarball's entry plus every non-dev package, at
 * the same places. That is the tree npm resolves for a project that adds ghn (ghn's dependencies are
 * placed at the top, as here); npm still checks it against ghn's declared ranges, extracts the
 * tarball, links the bin and applies the install-script policy.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  REPO, classifiedBlocks, describeRun, onnxCheckErrors, run, runShellBlock, userEnv, type RunResult,
} from './readme-blocks.js';

const MB = 1024 * 1024;
const NPM_WARNING = /npm (warn|WARN|ERR)/;

interface PackedFile {
  path: string;
  size: number;
  mode: number;
}

/** The working tree as a fresh clone would have it (uncommitted edits included). */
function copyCheckout(dest: string): void {
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO })
    .toString().split('\0').filter(Boolean);
  for (const file of listed) {
    const from = path.join(REPO, file);
    if (!fs.existsSync(from) || !fs.statSync(from).isFile()) continue; // deleted in the working tree
    fs.mkdirSync(path.dirname(path.join(dest, file)), { recursive: true });
    fs.copyFileSync(from, path.join(dest, file));
    fs.chmodSync(path.join(dest, file), fs.statSync(from).mode);
  }
}

/** package-lock.json of a project depending on ghn's tarball, from the checkout's lock (see the top). */
function seedLock(checkout: string, app: string, tarball: string, integrity: string): void {
  const lock = JSON.parse(fs.readFileSync(path.join(checkout, 'package-lock.json'), 'utf8'));
  const root = lock.packages[''];
  const packages: Record<string, unknown> = {
    '': { name: 'app', version: '1.0.0' },
    'node_modules/ghn': {
      version: root.version, resolved: `file:${tarball}`, integrity, license: root.license,
      dependencies: root.dependencies, bin: root.bin, engines: root.engines,
    },
  };
  for (const [key, entry] of Object.entries(lock.packages as Record<string, { dev?: boolean }>)) {
    if (key !== '' && !entry.dev) packages[key] = entry;
  }
  fs.writeFileSync(path.join(app, 'package-lock.json'),
    JSON.stringify({ name: 'app', version: '1.0.0', lockfileVersion: 3, requires: true, packages }, null, 2));
}

describe('the package, as a newcomer meets it', { timeout: 300_000 }, () => {
  const blocks = classifiedBlocks();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-package-'));
  const checkout = path.join(tmp, 'ghn');
  const app = path.join(tmp, 'app');
  let quickStart: RunResult;
  let packed: { filename: string; integrity: string; files: PackedFile[] };
  let install: RunResult;

  before(async () => {
    // The quick start in a fresh checkout, and meanwhile the package packed from a second copy built
    // with this repository's node_modules, installed in an empty project: the two are independent.
    copyCheckout(checkout);
    const stage = path.join(tmp, 'stage');
    copyCheckout(stage);
    fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(stage, 'node_modules'), 'dir');
    const quickStartRun = runShellBlock(blocks.quickStart.code, checkout, userEnv(), 180_000);

    const build = await run('npm', ['run', 'build'], { cwd: stage, timeoutMs: 120_000 });
    assert.equal(build.status, 0, describeRun(build));
    // `npm pack` would run `prepare`, the build just run.
    const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: stage, timeoutMs: 60_000 });
    assert.equal(pack.status, 0, describeRun(pack));
    assert.doesNotMatch(build.stderr + pack.stderr, NPM_WARNING, build.stderr + pack.stderr);
    packed = JSON.parse(pack.stdout)[0];

    // The README's install block names the tarball it installs; it is the one npm pack wrote.
    const named = /\.\/(ghn-[\w.-]+\.tgz)/.exec(blocks.install.code)?.[1];
    assert.equal(named, packed.filename, 'the README installs a tarball of another name than npm pack writes');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }, null, 2) + '\n');
    fs.copyFileSync(path.join(tmp, packed.filename), path.join(app, packed.filename));
    seedLock(stage, app, packed.filename, packed.integrity);
    install = await runShellBlock(blocks.install.code, app, userEnv(), 180_000);
    quickStart = await quickStartRun;
  });

  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('runs the README quick start as written, printing no npm warning', async () => {
    const out = /-o\s+(\S+)/.exec(blocks.quickStart.code)?.[1];
    assert.ok(out, 'the quick start writes a file with -o');
    assert.equal(quickStart.status, 0, `README quick start failed in a fresh checkout:\n${describeRun(quickStart)}`);
    assert.doesNotMatch(quickStart.stdout + quickStart.stderr, NPM_WARNING, describeRun(quickStart));
    assert.match(quickStart.stdout, /predicted [\d,]+ parameters/);
    assert.equal(await onnxCheckErrors([path.join(checkout, out)]), '');
    // The build leaves the CLI entry executable (bin links and `npx` in a checkout run it directly).
    assert.ok(fs.statSync(path.join(checkout, 'dist/cli/main.js')).mode & 0o111, 'dist/cli/main.js is not executable');
  });

  it('packs dist, src, models and assets, and no fixtures, tests, logs or optimizer state', () => {
    const paths = packed.files.map((f) => f.path);
    for (const needed of ['dist/index.js', 'dist/cli/main.js', 'models/ghn-fmnist.ghn', 'models/ghn-fmnist.metrics.json',
      'assets/fashion-mnist/t10k-images-idx3-ubyte.gz', 'assets/fashion-mnist/t10k-labels-idx1-ubyte.gz', 'src/web/index.html']) {
      assert.ok(paths.includes(needed), `${needed} is not in the tarball`);
    }
    assert.equal(packed.files.find((f) => f.path === 'dist/cli/main.js')!.mode & 0o111, 0o111, 'the bin is packed without its execute bit');
    const unwanted = paths.filter((p) => /^(fixtures|test|bench|runs|docs)\//.test(p) || /\.log\.jsonl$|\.ghn\.opt$|\.tgz$/.test(p));
    assert.deepEqual(unwanted, []);
    const large = packed.files.filter((f) => f.size > 5 * MB && !/^models\/[^/]+\.ghn$/.test(f.path));
    assert.deepEqual(large.map((f) => `${f.path} (${(f.size / MB).toFixed(1)} MB)`), []);
  });

  it('installs into an empty project with the README commands, and npx ghn works there', async () => {
    assert.equal(install.status, 0, `README install commands failed:\n${describeRun(install)}`);
    assert.doesNotMatch(install.stdout + install.stderr, NPM_WARNING, describeRun(install));
    assert.match(install.stdout, /Usage: ghn/);
    // onnxruntime-node's CUDA download did not run.
    assert.ok(!fs.existsSync(path.join(app, 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so')));

    fs.copyFileSync(path.join(REPO, 'fixtures/cnn_small.preserve13.onnx'), path.join(app, 'cnn_small.onnx'));
    const predicted = await run('npx', ['ghn', 'predict', 'cnn_small.onnx', '-o', 'cnn_small.ghn.onnx'], { cwd: app, timeoutMs: 120_000 });
    assert.equal(predicted.status, 0, describeRun(predicted));
    assert.doesNotMatch(predicted.stderr, NPM_WARNING, predicted.stderr);
    assert.equal(await onnxCheckErrors([path.join(app, 'cnn_small.ghn.onnx')]), '');
  });

  it('runs the README Node API snippet against the installed package', async () => {
    assert.equal(install.status, 0, 'not installed');
    fs.copyFileSync(path.join(REPO, 'fixtures/resnet_small.preserve13.onnx'), path.join(app, 'resnet_small.preserve13.onnx'));
    fs.writeFileSync(path.join(app, 'node-api.mjs'), blocks.nodeApi.code);
    const r = await run(process.execPath, ['node-api.mjs'], { cwd: app, timeoutMs: 120_000 });
    assert.equal(r.status, 0, describeRun(r));
    assert.equal(await onnxCheckErrors([path.join(app, 'resnet_small.ghn.onnx')]), '');
  });

  it('serves the web page and the sample images from the installed package', async () => {
    assert.equal(install.status, 0, 'not installed');
    const server = spawn(path.join(app, 'node_modules/.bin/ghn'), ['serve', '--port', '0'], { cwd: app, env: userEnv(), detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    const closed = new Promise((r) => server.once('close', r));
    const killGroup = () => {
      try {
        process.kill(-server.pid!, 'SIGTERM');
      } catch { /* gone */ }
    };
    try {
      const base = await new Promise<string>((resolve, reject) => {
        let stderr = '';
        const timer = setTimeout(() => reject(new Error(`ghn serve did not start within 60 s:\n${stderr}`)), 60_000);
        server.stderr!.on('data', (d) => {
          stderr += d;
          const url = /listening on (http:\/\/\S+)/.exec(stderr)?.[1];
          if (url) {
            clearTimeout(timer);
            resolve(url.replace(/\/$/, ''));
          }
        });
        server.on('exit', (code) => reject(new Error(`ghn serve exited (${code}):\n${stderr}`)));
      });
      for (let i = 0; i < 120 && (await fetch(`${base}/healthz`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 250));
      const page = await fetch(`${base}/`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<html/i);
      const samples = await (await fetch(`${base}/v1/samples?count=4`)).json() as { labels: number[]; pixels: string };
      assert.equal(samples.labels.length, 4);
      assert.equal(Buffer.from(samples.pixels, 'base64').length, 4 * 28 * 28);
    } finally {
      killGroup();
      await closed;
      killGroup(); // anything of the group still running
    }
  });
});
