/** The service's small parts on their own: limits parsing, the result store, metrics text, naming. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { GhnError } from '../src/errors.js';
import { DEFAULT_GHN_CONFIG } from '../src/ghn/model.js';
import { encodeTensors } from '../src/ghn/serialize.js';
import { HttpError, resolveError } from '../src/server/http-errors.js';
import { Counter, Gauge, Histogram, Registry } from '../src/server/metrics.js';
import { GhnRegistry } from '../src/server/models.js';
import { parseDuration, parseSize } from '../src/server/options.js';
import { parsePredictQuery } from '../src/server/query.js';
import { ResultStore } from '../src/server/results.js';
import { wantsJson } from '../src/server/routes/predict.js';
import { downloadName } from '../src/server/upload.js';

describe('limits parsing', () => {
  it('sizes', () => {
    assert.equal(parseSize('200mb'), 200 * 2 ** 20);
    assert.equal(parseSize('512KB'), 512 * 1024);
    assert.equal(parseSize('1.5g'), 1.5 * 2 ** 30);
    assert.equal(parseSize('1048576'), 2 ** 20);
    for (const bad of ['', 'lots', '-1mb', '0', '12 parsecs']) assert.throws(() => parseSize(bad, '--max-body'), (e: GhnError) => e.kind === 'usage' && /--max-body/.test(e.message));
  });
  it('durations', () => {
    assert.equal(parseDuration('120s'), 120_000);
    assert.equal(parseDuration('2m'), 120_000);
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('30'), 30_000);
    assert.throws(() => parseDuration('soon'), GhnError);
  });
  it('predict query: defaults, flags, strictness', () => {
    assert.deepEqual(parsePredictQuery({}), { ghn: undefined, seed: 0, noise: 0, orthogonalize: false, fromLayer: 0, fitHead: true, mix: 'auto', validate: undefined });
    assert.deepEqual(parsePredictQuery({ seed: '7', noise: '0', orth: '1', fromLayer: '2', fitHead: '0', mix: '0.5', validate: '0', ghn: 'abc' }),
      { ghn: 'abc', seed: 7, noise: 0, orthogonalize: true, fromLayer: 2, fitHead: false, mix: 0.5, validate: false });
    assert.throws(() => parsePredictQuery({ mix: '2' }), (e: GhnError) => resolveError(e).status === 400);
    assert.throws(() => parsePredictQuery({ fitHead: 'maybe' }), (e: GhnError) => resolveError(e).status === 400);
    assert.throws(() => parsePredictQuery({ seed: '1.5' }), (e: GhnError) => resolveError(e).status === 400);
    assert.throws(() => parsePredictQuery({ seed: ['1', '2'] }), HttpError);
  });
});

describe('ResultStore', () => {
  it('evicts the oldest beyond the count or byte budget, and expires by age', () => {
    let now = 0;
    const store = new ResultStore({ maxCount: 3, maxBytes: 100, ttlMs: 1000 }, () => now);
    const ids = [1, 2, 3, 4].map((i) => store.put(new Uint8Array(10).fill(i), `m${i}.ghn.onnx`)!);
    assert.equal(store.count, 3);
    assert.equal(store.get(ids[0]!), undefined, 'oldest evicted by count');
    assert.equal(store.get(ids[3]!)!.bytes[0], 4);
    const big = store.put(new Uint8Array(85), 'big.ghn.onnx')!;
    assert.equal(store.bytes, 95);
    assert.deepEqual([ids[1], ids[2], ids[3]].map((id) => store.get(id!) !== undefined), [false, false, true], 'evicted by bytes');
    assert.equal(store.put(new Uint8Array(101), 'huge'), undefined, 'larger than the whole budget: not held');
    now = 999;
    assert.ok(store.get(big));
    now = 1001;
    assert.equal(store.get(big), undefined);
    assert.equal(store.count, 0);
    assert.equal(store.bytes, 0);
    assert.match(ids[3]!, /^[0-9a-f]{32}$/);
  });
});

describe('Prometheus text', () => {
  it('renders counters, gauges and cumulative histogram buckets', () => {
    const r = new Registry();
    const c = r.register(new Counter('x_requests_total', 'Requests.'));
    c.inc({ route: '/a', status: '200' });
    c.inc({ status: '200', route: '/a' });
    c.inc({ route: '/b"\n', status: '500' });
    r.register(new Gauge('x_queue', 'Queued.', () => 3));
    const h = r.register(new Histogram('x_seconds', 'Latency.', [0.1, 1]));
    h.observe(0.05, { route: '/a' });
    h.observe(0.5, { route: '/a' });
    h.observe(5, { route: '/a' });
    assert.equal(r.render(), [
      '# HELP x_requests_total Requests.', '# TYPE x_requests_total counter',
      'x_requests_total{route="/a",status="200"} 2',
      'x_requests_total{route="/b\\"\\n",status="500"} 1',
      '# HELP x_queue Queued.', '# TYPE x_queue gauge', 'x_queue 3',
      '# HELP x_seconds Latency.', '# TYPE x_seconds histogram',
      'x_seconds_bucket{route="/a",le="0.1"} 1', 'x_seconds_bucket{route="/a",le="1"} 2', 'x_seconds_bucket{route="/a",le="+Inf"} 3',
      'x_seconds_sum{route="/a"} 5.55', 'x_seconds_count{route="/a"} 3', '',
    ].join('\n'));
  });
});

describe('errors, names and negotiation', () => {
  it('maps library errors to statuses', () => {
    assert.equal(resolveError(new GhnError('bad-input', 'x')).status, 400);
    assert.equal(resolveError(new GhnError('unsupported', 'x')).status, 422);
    assert.deepEqual(resolveError(new HttpError(503, 'busy', 'full', { 'retry-after': '2' })).headers, { 'retry-after': '2' });
    const internal = resolveError(new TypeError('oops'));
    assert.equal(internal.status, 500);
    assert.ok(internal.internal);
  });
  it('download names are safe header values', () => {
    assert.equal(downloadName('C:\\models\\My Net (v2).onnx'), 'My_Net_v2_.ghn.onnx');
    assert.equal(downloadName('../../etc/passwd'), 'passwd.ghn.onnx');
    assert.equal(downloadName('"; x=".onnx'), 'x_.ghn.onnx');
    assert.equal(downloadName('.onnx'), 'model.ghn.onnx');
  });
  it('JSON only when asked for', () => {
    assert.equal(wantsJson('application/json'), true);
    assert.equal(wantsJson('application/json, */*'), true);
    assert.equal(wantsJson('*/*'), false);
    assert.equal(wantsJson(undefined), false);
    assert.equal(wantsJson('application/octet-stream, application/json'), false);
  });
});

describe('GhnRegistry', () => {
  it('names models by id, prefix or file name, and refuses anything else', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-registry-'));
    const files = ['alpha', 'beta'].map((name, i) => {
      const file = path.join(dir, `${name}.ghn`);
      fs.writeFileSync(file, encodeTensors({ ...DEFAULT_GHN_CONFIG, seed: i }, new Map(), { recipe: { steps: i } }));
      return file;
    });
    const registry = new GhnRegistry(files);
    const [a, b] = registry.list();
    assert.equal(a!.default, true);
    assert.deepEqual(b!.recipe, { steps: 1 });
    assert.equal(registry.resolve(undefined).path, files[0]);
    assert.equal(registry.resolve(b!.id).path, files[1]);
    assert.equal(registry.resolve(b!.id.slice(0, 8).toUpperCase()).path, files[1]);
    assert.equal(registry.resolve('beta').path, files[1]);
    for (const bad of [b!.id.slice(0, 7), files[1]!, 'gamma', '../beta']) assert.throws(() => registry.resolve(bad), (e: HttpError) => e.status === 400);
    assert.throws(() => new GhnRegistry([path.join(dir, 'missing.ghn')]), (e: GhnError) => e.kind === 'not-found');
    fs.rmSync(dir, { recursive: true });
  });
});
