/**
 * The web page end to end in real headless Chromium: upload a fixture, see its summary and graph,
 * predict, run the predicted model in the browser with onnxruntime-web, read the accuracy — and
 * check the browser's predictions against onnxruntime-node on the same file and images.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { chromium, type BrowserContext } from 'playwright-core';
import { initBackend } from '../src/engine/backend.js';
import { DEFAULT_GHN_CONFIG, GhnModel } from '../src/ghn/model.js';
import { saveGhn } from '../src/ghn/serialize.js';
import { createServer, type GhnServer } from '../src/server/app.js';

const CHROMIUM = '/usr/bin/chromium';
const FIXTURE = path.resolve('fixtures/cnn_small.eval13.onnx');
const skip = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (Debian package chromium)`;

describe('web page in headless Chromium', { skip, timeout: 90_000 }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-browser-'));
  let server: GhnServer;
  let base: string;
  let browser: BrowserContext;

  before(async () => {
    await initBackend();
    const ghn = new GhnModel(DEFAULT_GHN_CONFIG);
    saveGhn(path.join(tmp, 'untrained.ghn'), ghn);
    ghn.dispose();
    server = await createServer({ ghnFiles: [path.join(tmp, 'untrained.ghn')] });
    base = await server.listen(0);
    // A fresh profile directory each run (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(fs.mkdtempSync(path.join(tmp, 'profile-')), {
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('uploads, predicts, runs the model in the browser and shows the accuracy', async () => {
    const page = await browser.newPage();
    const foreign: string[] = [];
    const pageErrors: string[] = [];
    page.on('request', (r) => { if (!r.url().startsWith(base) && !r.url().startsWith('blob:') && !r.url().startsWith('data:')) foreign.push(r.url()); });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(base);
    await page.waitForFunction(() => (document.getElementById('ghn-select') as HTMLSelectElement).options.length > 0);

    await page.setInputFiles('#file-input', FIXTURE);
    await page.waitForSelector('#model-summary:not([hidden])', { timeout: 30_000 });
    assert.match(await page.textContent('#model-headline') ?? '', /19,466 parameters in 6 tensors/);
    assert.ok(await page.locator('#ops-table tbody tr').count() >= 3, 'ops table filled');
    const drawnNodes = await page.locator('#graph-view svg g.node').count();
    assert.ok(drawnNodes >= 5, `graph drawn with ${drawnNodes} nodes`);

    await page.click('#predict-button');
    await page.waitForSelector('#predict-result:not([hidden])', { timeout: 30_000 });
    assert.match(await page.textContent('#predict-headline') ?? '', /Predicted 19,466 parameters in 6 tensors/);
    assert.equal(await page.getAttribute('#download-link', 'download'), 'cnn_small.eval13.ghn.onnx');

    await page.click('#run-button');
    await page.waitForSelector('#accuracy:not([hidden])', { timeout: 45_000 });
    const shown = await page.$eval('#accuracy', (e) => ({ ...(e as HTMLElement).dataset, text: e.textContent }));
    const accuracy = Number(shown.accuracy);
    assert.ok(accuracy >= 0 && accuracy <= 100, `accuracy ${shown.accuracy}`);
    assert.equal(Number(shown.predictions), 64);
    assert.match(shown.text ?? '', /Accuracy \d+\.\d% \(\d+ of 64 correct/);
    assert.equal(await page.locator('#samples-grid .sample').count(), 64);
    assert.equal(await page.locator('#samples-grid .sample.correct').count(), Number(shown.correct));

    // The downloaded file, run by onnxruntime-node on the same images, gets the same number right.
    const bytes = new Uint8Array(await page.$eval('#download-link', async (a) =>
      Array.from(new Uint8Array(await (await fetch((a as HTMLAnchorElement).href)).arrayBuffer()))));
    const samples = await (await fetch(`${base}/v1/samples?count=64`)).json() as { labels: number[]; pixels: string };
    const pixels = Buffer.from(samples.pixels, 'base64');
    const input = Float32Array.from(pixels, (p) => (p / 255 - 0.286) / 0.353);
    const session = await ort.InferenceSession.create(bytes);
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', input, [64, 1, 28, 28]) });
    const logits = out[session.outputNames[0]!]!.data as Float32Array;
    let correct = 0;
    for (let i = 0; i < 64; i++) {
      const row = Array.from(logits.subarray(i * 10, i * 10 + 10));
      if (row.indexOf(Math.max(...row)) === samples.labels[i]) correct++;
    }
    await session.release();
    assert.equal(Number(shown.correct), correct, 'browser and onnxruntime-node agree');

    assert.deepEqual(pageErrors, []);
    assert.deepEqual(foreign, [], 'the page loads nothing from outside the server');
  });
});
