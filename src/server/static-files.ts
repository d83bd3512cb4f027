/**
 * The page and the onnxruntime-web files it loads, served from an allow-list built at start-up:
 * a URL maps to a file only if that exact name was listed, so no request path reaches the disk.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { ORT_WEB_DIR, WEB_DIR } from './paths.js';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
};

/** The browser build of onnxruntime-web the page imports: the wasm-only ES module and its runtime. */
const ORT_FILES = ['ort.wasm.min.mjs', 'ort.wasm.min.mjs.map', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'];

interface StaticFile {
  file: string;
  type: string;
  cache: string;
}

function staticTable(): Map<string, StaticFile> {
  const table = new Map<string, StaticFile>();
  for (const name of fs.readdirSync(WEB_DIR)) {
    const type = CONTENT_TYPES[path.extname(name)];
    const file = path.join(WEB_DIR, name);
    if (!type || !fs.statSync(file).isFile()) continue;
    // The page changes with the server; revalidate every time.
    table.set(name === 'index.html' ? '/' : `/web/${name}`, { file, type, cache: 'no-cache' });
  }
  for (const name of ORT_FILES) {
    const file = path.join(ORT_WEB_DIR, name);
    if (fs.existsSync(file)) table.set(`/vendor/ort/${name}`, { file, type: CONTENT_TYPES[path.extname(name)]!, cache: 'public, max-age=86400' });
  }
  return table;
}

export function registerStaticFiles(app: FastifyInstance): void {
  for (const [url, entry] of staticTable()) {
    app.get(url, async (_req, reply) => {
      const stat = await fs.promises.stat(entry.file);
      reply.header('content-type', entry.type).header('content-length', stat.size).header('cache-control', entry.cache);
      return reply.send(fs.createReadStream(entry.file));
    });
  }
}
