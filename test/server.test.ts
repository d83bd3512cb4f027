/**
 * The HTTP API over a real socket: results equal the library's, bad inputs get their status and a
 * JSON error, overload gets 503 + Retry-After, slow jobs time out — and the service keeps serving.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { predict } from '../src/api/predict.js';
import { initBackend } from '../src/engine/backend.js';
import { DEFAULT_GHN_CONFIG, GhnModel } from '../src/ghn/model.js';
import { saveGhn } from '../src/ghn/serialize.js';
import { decodeModel, encodeModel, readModelFile } from '../src/onnx/index.js';
import { createServer, type GhnServer } from '../src/server/app.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-server-'));
const GHN_FILE = path.join(tmp, 'untrained.ghn');
const CNN = new Uint8Array(fs.readFileSync('fixtures/cnn_small.eval13.onnx'));
const MAX_BODY = 1024 * 1024;

interface ErrorBody { error: { status: number; code: string; message: string } }

function octet(bytes: Uint8Array, headers: Record<string, string> = {}): RequestInit {
  return { method: 'POST', headers: { 'content-type': 'application/octet-stream', ...headers }, body: bytes };
}

function form(bytes: Uint8Array, field = 'model', filename = 'upload.onnx'): RequestInit {
  const body = new FormData();
  body.append(field, new Blob([bytes]), filename);
  return { method: 'POST', body };
}

async function expectError(response: Response, status: number, code: string, message?: RegExp): Promise<ErrorBody> {
  assert.equal(response.status, status, `status of ${response.url}`);
  assert.match(response.headers.get('content-type') ?? '', /application\/json/);
  const body = await response.json() as ErrorBody;
  assert.equal(body.error.status, status);
  assert.equal(body.error.code, code);
  if (message) assert.match(body.error.message, message);
  return body;
}

/** cnn_small with one Relu renamed to an operator nobody knows. */
function unsupportedModel(): Uint8Array {
  const copy = decodeModel(encodeModel(readModelFile('fixtures/cnn_small.eval13.onnx')));
  const relu = copy.proto.graph!.node!.find((n) => n.opType === 'Relu')!;
  relu.opType = 'FancyActivation';
  relu.domain = 'com.example';
  return encodeModel(copy);
}

before(async () => {
  await initBackend();
  const ghn = new GhnModel(DEFAULT_GHN_CONFIG);
  saveGhn(GHN_FILE, ghn);
  ghn.dispose();
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('ghn serve API', () => {
  let server: GhnServer;
  let base: string;
  const url = (p: string) => `${base}${p}`;

  before(async () => {
    server = await createServer({ ghnFiles: [GHN_FILE], maxBodyBytes: MAX_BODY, concurrency: 1, queueLimit: 2, timeoutMs: 60_000 });
    base = await server.listen(0);
    await server.context.pool.whenReady();
  });
  after(() => server.close());

  it('predicts: binary answer equals the library result byte for byte, report in headers', async () => {
    const r = await fetch(url('/v1/predict?seed=3&noise=0.0001'), octet(CNN));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/octet-stream');
    assert.equal(r.headers.get('content-disposition'), 'attachment; filename="model.ghn.onnx"');
    assert.equal(r.headers.get('x-ghn-parameters'), '19466');
    assert.equal(r.headers.get('x-ghn-tensors'), '6');
    assert.equal(r.headers.get('x-ghn-model'), createHash('sha256').update(fs.readFileSync(GHN_FILE)).digest('hex'));
    assert.ok(Number(r.headers.get('x-ghn-time-ms')) > 0);
    assert.deepEqual(JSON.parse(r.headers.get('x-ghn-normalization')!), { mean: [0.286], std: [0.353], scale: 1 / 255 });
    const bytes = new Uint8Array(await r.arrayBuffer());
    const local = await predict(CNN, { ghn: GHN_FILE, seed: 3, noise: 0.0001 });
    assert.ok(Buffer.from(bytes).equals(Buffer.from(local.onnx)), 'same bytes as predict() in-process');
  });

  it('predicts from a multipart form; the JSON variant links a held result with the same bytes', async () => {
    const r = await fetch(url('/v1/predict?seed=3&noise=0.0001'), { ...form(CNN, 'model', 'dir/cnn small.onnx'), headers: { accept: 'application/json' } });
    assert.equal(r.status, 200);
    const body = await r.json() as { report: { parameters: number; tensors: number; options: { seed: number } }; download: string; filename: string; bytes: number; signature: { inputs: { shape: unknown[] }[] } };
    assert.equal(body.report.parameters, 19466);
    assert.equal(body.report.options.seed, 3);
    assert.equal(body.filename, 'cnn_small.ghn.onnx');
    assert.deepEqual(body.signature.inputs[0]!.shape, ['batch', 1, 28, 28]);
    assert.ok(!JSON.stringify(body).includes(tmp), 'no server path in the report');
    assert.match(body.download, /^\/v1\/results\/[0-9a-f]{32}$/);
    const d = await fetch(url(body.download));
    assert.equal(d.status, 200);
    assert.equal(d.headers.get('content-disposition'), 'attachment; filename="cnn_small.ghn.onnx"');
    const held = new Uint8Array(await d.arrayBuffer());
    assert.equal(held.length, body.bytes);
    const binary = new Uint8Array(await (await fetch(url('/v1/predict?seed=3&noise=0.0001'), octet(CNN))).arrayBuffer());
    assert.ok(Buffer.from(held).equals(Buffer.from(binary)));
    await expectError(await fetch(url(`/v1/results/${'0'.repeat(32)}`)), 404, 'result-expired');
  });

  it('inspects, with the op graph on request', async () => {
    const r = await fetch(url('/v1/inspect?graph=1'), octet(CNN));
    assert.equal(r.status, 200);
    const s = await r.json() as { params: { elements: number; tensors: number }; ops: Record<string, number>; graph: { nodes: { id: string; params: number }[]; edges: [string, string][] } };
    assert.equal(s.params.elements, 19466);
    assert.equal(s.params.tensors, 6);
    const opCount = Object.values(s.ops).reduce((a, b) => a + b, 0);
    assert.equal(s.graph.nodes.length, opCount);
    assert.equal(s.graph.nodes.reduce((a, n) => a + n.params, 0), 19466, 'parameters drawn per node add up');
    const ids = new Set(s.graph.nodes.map((n) => n.id));
    assert.ok(s.graph.edges.length >= opCount - 1);
    for (const [a, b] of s.graph.edges) assert.ok(ids.has(a) && ids.has(b));
    const plain = await (await fetch(url('/v1/inspect'), form(CNN))).json() as Record<string, unknown>;
    assert.equal(plain.graph, undefined);
  });

  it('lists its GHNs by id, without paths', async () => {
    const r = await fetch(url('/v1/models'));
    const { models } = await r.json() as { models: { id: string; name: string; config: unknown; default: boolean }[] };
    assert.equal(models.length, 1);
    assert.equal(models[0]!.name, 'untrained');
    assert.deepEqual(models[0]!.config, DEFAULT_GHN_CONFIG);
    assert.equal(models[0]!.default, true);
    assert.ok(!JSON.stringify(models).includes(tmp));
    const byPrefix = await fetch(url(`/v1/predict?ghn=${models[0]!.id.slice(0, 12)}&validate=0`), octet(CNN));
    assert.equal(byPrefix.status, 200);
    assert.equal(byPrefix.headers.get('x-ghn-model'), models[0]!.id);
  });

  describe('bad requests get their status and a JSON error', () => {
    it('not ONNX → 400', async () => {
      await expectError(await fetch(url('/v1/predict'), octet(new TextEncoder().encode('this is not a model\n'.repeat(50)))), 400, 'bad-onnx', /not an ONNX model/);
      await expectError(await fetch(url('/v1/inspect'), octet(new TextEncoder().encode('hello'))), 400, 'bad-onnx');
    });
    it('truncated ONNX → 400', async () => {
      await expectError(await fetch(url('/v1/predict'), octet(CNN.subarray(0, CNN.length >> 1))), 400, 'bad-onnx', /not an ONNX model/);
    });
    it('empty body → 400', async () => {
      await expectError(await fetch(url('/v1/predict'), octet(new Uint8Array(0))), 400, 'empty-body');
    });
    it('too large → 413, raw and multipart', async () => {
      const big = new Uint8Array(MAX_BODY + 1);
      await expectError(await fetch(url('/v1/predict'), octet(big)), 413, 'too-large');
      await expectError(await fetch(url('/v1/inspect'), form(big)), 413, 'too-large');
    });
    it('unsupported operator → 422 on predict (named); inspect lists it', async () => {
      const bytes = unsupportedModel();
      await expectError(await fetch(url('/v1/predict'), octet(bytes)), 422, 'unsupported-operator', /FancyActivation/);
      const s = await (await fetch(url('/v1/inspect'), octet(bytes))).json() as { unsupported: { opType: string }[] };
      assert.equal(s.unsupported.length, 1);
      assert.match(s.unsupported[0]!.opType, /FancyActivation/);
    });
    it('external data cannot be uploaded → 422, nothing read from the server disk', async () => {
      const bytes = new Uint8Array(fs.readFileSync('fixtures/external/resnet_small.preserve13.onnx'));
      await expectError(await fetch(url('/v1/predict'), octet(bytes)), 422, 'missing-data', /external data/);
    });
    it('wrong content type → 415', async () => {
      await expectError(await fetch(url('/v1/predict'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": 1}' }), 415, 'unsupported-media-type');
      await expectError(await fetch(url('/v1/inspect'), { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }), 415, 'unsupported-media-type');
      await expectError(await fetch(url('/v1/predict'), { method: 'POST' }), 415, 'unsupported-media-type');
    });
    it('form without the model field → 400', async () => {
      await expectError(await fetch(url('/v1/predict'), form(CNN, 'file')), 400, 'missing-model');
    });
    it('bad options → 400; a GHN is named by id, never by path', async () => {
      await expectError(await fetch(url('/v1/predict?seed=-1'), octet(CNN)), 400, 'bad-option', /seed/);
      await expectError(await fetch(url('/v1/predict?noise=abc'), octet(CNN)), 400, 'bad-option', /noise/);
      await expectError(await fetch(url('/v1/predict?orth=maybe'), octet(CNN)), 400, 'bad-option', /orth/);
      await expectError(await fetch(url('/v1/predict?sed=1'), octet(CNN)), 400, 'bad-option', /unknown query parameter/);
      await expectError(await fetch(url(`/v1/predict?ghn=${encodeURIComponent(GHN_FILE)}`), octet(CNN)), 400, 'unknown-ghn');
      await expectError(await fetch(url('/v1/predict?ghn=../models/ghn-fmnist'), octet(CNN)), 400, 'unknown-ghn');
    });
    it('unknown route → 404; static files only from the allow-list', async () => {
      await expectError(await fetch(url('/v1/nothing')), 404, 'not-found');
      await expectError(await fetch(url('/web/..%2f..%2fpackage.json')), 404, 'not-found');
      await expectError(await fetch(url('/vendor/ort/ort.node.min.mjs')), 404, 'not-found');
    });
    it('still serves after all of that', async () => {
      const r = await fetch(url('/v1/predict?validate=0'), octet(CNN));
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-ghn-parameters'), '19466');
    });
  });

  it('under concurrent load: queue bound gives 503 + Retry-After, health stays fast, all else succeeds', async () => {
    // 1 worker + 2 queue places: of 8 simultaneous predictions at least 3 are served, the rest refused at once.
    const posts = Array.from({ length: 8 }, (_, i) => fetch(url(`/v1/predict?seed=${i}`), octet(CNN)));
    const healthMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const h = await fetch(url('/healthz'));
      healthMs.push(performance.now() - t0);
      assert.equal(h.status, 200);
      await h.arrayBuffer();
      await new Promise((r) => setTimeout(r, 50));
    }
    const responses = await Promise.all(posts);
    const statuses = responses.map((r) => r.status);
    assert.ok(statuses.every((s) => s === 200 || s === 503), `statuses ${statuses}`);
    assert.ok(statuses.filter((s) => s === 200).length >= 3, `statuses ${statuses}`);
    assert.ok(statuses.includes(503), `statuses ${statuses}`);
    for (const r of responses) {
      if (r.status === 503) {
        assert.ok(Number(r.headers.get('retry-after')) >= 1);
        await expectError(r, 503, 'busy', /retry later/);
      } else {
        assert.equal((await r.arrayBuffer()).byteLength > 70_000, true);
      }
    }
    assert.ok(Math.max(...healthMs) < 250, `/healthz took ${healthMs.map((m) => m.toFixed(0))} ms while predicting`);
    assert.equal((await fetch(url('/v1/predict?validate=0'), octet(CNN))).status, 200);
  });

  it('exposes Prometheus metrics that count what happened', async () => {
    const r = await fetch(url('/metrics'));
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    const value = (series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    assert.ok(value('ghn_http_requests_total{method="POST",route="/v1/predict",status="200"}')! >= 6);
    assert.ok(value('ghn_http_requests_total{method="POST",route="/v1/predict",status="400"}')! >= 9);
    assert.equal(value('ghn_http_requests_total{method="POST",route="/v1/predict",status="415"}'), 2);
    assert.ok(value('ghn_http_requests_total{method="POST",route="/v1/predict",status="503"}')! >= 1);
    assert.equal(value('ghn_jobs_rejected_total'), value('ghn_http_requests_total{method="POST",route="/v1/predict",status="503"}'));
    assert.equal(value('ghn_jobs_in_flight'), 0);
    assert.equal(value('ghn_jobs_queued'), 0);
    assert.equal(value('ghn_workers_ready'), 1);
    assert.ok(value('process_resident_memory_bytes')! > 10e6);
    const count = value('ghn_http_request_duration_seconds_count{route="/v1/predict"}')!;
    assert.equal(value('ghn_http_request_duration_seconds_bucket{route="/v1/predict",le="+Inf"}'), count);
    assert.ok(value('ghn_http_request_duration_seconds_sum{route="/v1/predict"}')! > 0);
    assert.ok(value('ghn_job_run_seconds_count{kind="predict"}')! >= 6);
  });
});

describe('ghn serve time limit', () => {
  it('a job over the limit gets 504 and its worker is replaced; a queued one past the limit gets 503', async () => {
    // The limit is far below a vit_small prediction with QR post-processing (~0.5–3 s; the default
    // prediction alone can finish within 0.3 s now) so the first job always runs out of time.
    const server = await createServer({ ghnFiles: [GHN_FILE], concurrency: 1, queueLimit: 4, timeoutMs: 100 });
    try {
      const base = await server.listen(0);
      await server.context.pool.whenReady();
      const vit = new Uint8Array(fs.readFileSync('fixtures/vit_small.eval13.onnx'));
      // Both arrive together; whichever reaches the worker first runs out of time there, the other in the queue.
      const slowQuery = `${base}/v1/predict?orth=1&noise=0.00003`;
      const both = await Promise.all([fetch(slowQuery, octet(vit)), fetch(slowQuery, octet(vit))]);
      const [slow, queued] = both.sort((a, b) => b.status - a.status);
      await expectError(slow!, 504, 'timeout', /0\.1 s time limit/);
      await expectError(queued!, 503, 'busy', /waited 0\.1 s in the queue/);
      assert.ok(Number(queued!.headers.get('retry-after')) >= 1);
      assert.equal(server.context.pool.stats.restarts, 1);
      assert.equal(server.context.pool.stats.timedOut, 2);
      const health = await (await fetch(`${base}/healthz`)).json() as { pool: { workers: number } };
      assert.equal(health.pool.workers, 1);
      await server.context.pool.whenReady();
      const ok = await fetch(`${base}/v1/inspect`, octet(CNN));
      assert.equal(ok.status, 200);
      assert.equal((await ok.json() as { params: { elements: number } }).params.elements, 19466);
    } finally {
      await server.close();
    }
  });
});
