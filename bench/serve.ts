/**
 * Load benchmark of `ghn serve`: starts the server as a child process (so its memory is its own),
 * runs N concurrent clients on 127.0.0.1 posting a small fixture for a bounded time, and reports
 * throughput, latency percentiles, counts by status, and the server's RSS sampled every second
 * from /metrics (first vs last 10 s: memory should stay flat).
 *
 *   npx tsx bench/serve.ts [--clients 32] [--seconds 60] [--fixture fixtures/cnn_small.eval13.onnx]
 *                          [--concurrency 1] [--queue 16] [--ghn file.ghn]
 *
 * Clients that get 503 wait the Retry-After the server asked for, as a well-behaved client would.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_GHN_PATH } from '../src/api/predict.js';
import { initBackend } from '../src/engine/backend.js';
import { DEFAULT_GHN_CONFIG, GhnModel } from '../src/ghn/model.js';
import { saveGhn } from '../src/ghn/serialize.js';

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '32' },
    seconds: { type: 'string', default: '60' },
    fixture: { type: 'string', default: 'fixtures/cnn_small.eval13.onnx' },
    concurrency: { type: 'string', default: '1' },
    queue: { type: 'string', default: '16' },
    ghn: { type: 'string' },
  },
});
const CLIENTS = Number(args.clients);
const SECONDS = Number(args.seconds);

async function ghnFile(): Promise<{ file: string; note: string }> {
  if (args.ghn) return { file: args.ghn, note: args.ghn };
  if (fs.existsSync(DEFAULT_GHN_PATH)) return { file: DEFAULT_GHN_PATH, note: 'shipped models/ghn-fmnist.ghn' };
  // Timing does not depend on the weights, only on the architecture: an untrained GHN will do.
  await initBackend();
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-bench-serve-')), 'untrained.ghn');
  const ghn = new GhnModel(DEFAULT_GHN_CONFIG);
  saveGhn(file, ghn);
  ghn.dispose();
  return { file, note: 'untrained GHN (models/ghn-fmnist.ghn not present)' };
}

function startServer(ghn: string): Promise<{ base: string; stop: () => void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--port', '0', '--ghn', ghn,
    '--concurrency', args.concurrency!, '--queue', args.queue!], { stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) resolve({ base: m[1]!, stop: () => child.kill('SIGTERM') });
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${err}`)));
  });
}

async function waitReady(base: string): Promise<void> {
  for (;;) {
    const r = await fetch(`${base}/healthz`).catch(() => undefined);
    if (r?.status === 200) return;
    await new Promise((res) => setTimeout(res, 200));
  }
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const body = new Uint8Array(fs.readFileSync(args.fixture!));
  const ghn = await ghnFile();
  const server = await startServer(ghn.file);
  try {
    await waitReady(server.base);
    console.log(`ghn serve on ${server.base} (--concurrency ${args.concurrency}, --queue ${args.queue}, ${ghn.note})`);
    console.log(`${CLIENTS} clients posting ${args.fixture} (${body.length.toLocaleString()} bytes) for ${SECONDS} s …`);

    const byStatus = new Map<string, number>();
    const okLatency: number[] = [];
    const rss: number[] = [];
    const scrapeMs: number[] = [];
    const t0 = performance.now();
    const deadline = t0 + SECONDS * 1000;

    const sampler = (async () => {
      for (let s = 1; performance.now() < deadline; s++) {
        await new Promise((res) => setTimeout(res, Math.max(0, t0 + s * 1000 - performance.now())));
        const ts = performance.now();
        const text = await (await fetch(`${server.base}/metrics`)).text();
        scrapeMs.push(performance.now() - ts);
        rss.push(Number(/^process_resident_memory_bytes (\S+)$/m.exec(text)![1]));
      }
    })();

    const client = async () => {
      while (performance.now() < deadline) {
        const start = performance.now();
        let status: string;
        let retryAfter = 0;
        try {
          const r = await fetch(`${server.base}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body });
          await r.arrayBuffer();
          status = String(r.status);
          if (r.status === 200) okLatency.push(performance.now() - start);
          if (r.status === 503) retryAfter = Number(r.headers.get('retry-after') ?? 1);
        } catch (e) {
          status = `network error (${(e as Error).message})`;
        }
        byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
        if (retryAfter) await new Promise((res) => setTimeout(res, retryAfter * 1000));
      }
    };
    await Promise.all([sampler, ...Array.from({ length: CLIENTS }, client)]);
    const elapsed = (performance.now() - t0) / 1000;

    const sorted = okLatency.sort((a, b) => a - b);
    const mb = (xs: number[]) => (xs.reduce((a, b) => a + b, 0) / xs.length / 2 ** 20).toFixed(0);
    const window = Math.min(10, Math.floor(rss.length / 2));
    const total = [...byStatus.values()].reduce((a, b) => a + b, 0);
    const failed = [...byStatus].filter(([s]) => s !== '200' && s !== '503').reduce((a, [, n]) => a + n, 0);
    const scrapes = scrapeMs.sort((a, b) => a - b);
    console.log(`requests: ${total} in ${elapsed.toFixed(1)} s; by status: ${[...byStatus].map(([s, n]) => `${s}: ${n}`).join(', ')}`);
    console.log(`throughput: ${(sorted.length / elapsed).toFixed(2)} predictions/s`);
    console.log(`latency of 200s: p50 ${percentile(sorted, 50).toFixed(0)} ms, p90 ${percentile(sorted, 90).toFixed(0)} ms, p99 ${percentile(sorted, 99).toFixed(0)} ms, max ${sorted.at(-1)?.toFixed(0)} ms`);
    console.log(`/metrics while loaded: p50 ${percentile(scrapes, 50).toFixed(1)} ms, max ${scrapes.at(-1)?.toFixed(1)} ms (${scrapes.length} scrapes)`);
    console.log(`server RSS: first ${window} s ${mb(rss.slice(0, window))} MiB, last ${window} s ${mb(rss.slice(-window))} MiB, max ${(Math.max(...rss) / 2 ** 20).toFixed(0)} MiB`);
    console.log(failed ? `FAILED requests (not 200/503): ${failed}` : 'no failed requests (every answer was 200 or a deliberate 503)');
    process.exitCode = failed ? 1 : 0;
  } finally {
    server.stop();
  }
}

await main();
