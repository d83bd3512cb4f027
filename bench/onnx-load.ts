/**
 * Times ONNX I/O on the given model files: readModelFile (lazy and eager), decoding from memory,
 * a lazy load followed by reading every float initializer, encodeModel and writeModelFile; checks
 * that the re-encoded and the written bytes are identical to the input.
 * Usage: npx tsx bench/onnx-load.ts fixtures/large/resnet50.eval13.onnx [more.onnx ...]
 *        npx tsx bench/onnx-load.ts --replace-all model.onnx   (load, replace every float tensor, write)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  DataType, allTensors, decodeModel, encodeModel, numElements, readFloat32, readModelFile, replaceTensorData, writeModelFile,
} from '../src/onnx/index.js';

const RUNS = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time<T>(fn: () => T): { ms: number; value: T } {
  const t0 = performance.now();
  const value = fn();
  return { ms: performance.now() - t0, value };
}

function timeMedian<T>(fn: () => T): { ms: number; value: T } {
  const runs = Array.from({ length: RUNS }, () => time(fn));
  return { ms: median(runs.map((r) => r.ms)), value: runs[runs.length - 1]!.value };
}

const args = process.argv.slice(2);
const files = args.filter((a) => !a.startsWith('--'));
if (files.length === 0) {
  console.error('usage: tsx bench/onnx-load.ts [--replace-all] model.onnx [...]');
  process.exit(64);
}

// What a predictor does: load, give every float tensor new values, write. Run alone for a clean peak RSS.
if (args.includes('--replace-all')) {
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-onnx-bench-'));
  const file = files[0]!;
  const t0 = performance.now();
  const model = readModelFile(file);
  const t1 = performance.now();
  const floats = allTensors(model.proto).filter((t) => t.dataType === DataType.FLOAT);
  for (const t of floats) replaceTensorData(t, new Float32Array(numElements(t)).fill(0.01), { adopt: true });
  const t2 = performance.now();
  writeModelFile(model, path.join(tmpDir, 'out.onnx'));
  const t3 = performance.now();
  fs.rmSync(tmpDir, { recursive: true, force: true });
  console.log(
    `${path.basename(file)} replace-all: load ${(t1 - t0).toFixed(0)} ms, replace ${floats.length} tensors ` +
    `${(t2 - t1).toFixed(0)} ms, write ${(t3 - t2).toFixed(0)} ms; peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`,
  );
  process.exit(0);
}
// Peak memory of one plain load, before the timing loops allocate more.
const first = readModelFile(files[0]!); // default options: lazy for big files
const loadRssMiB = process.resourceUsage().maxRSS / 1024;
console.log(`peak RSS after loading ${path.basename(files[0]!)} once: ${loadRssMiB.toFixed(0)} MiB (file ${(first.sourceBytes! / 2 ** 20).toFixed(0)} MiB)`);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-onnx-bench-'));
try {
  for (const file of files) {
    const bytes = fs.readFileSync(file);
    const load = timeMedian(() => readModelFile(file, { lazy: true }));
    const eager = timeMedian(() => readModelFile(file, { lazy: false }));
    const decode = timeMedian(() => decodeModel(bytes));
    const encode = timeMedian(() => encodeModel(load.value));
    const identical = Buffer.from(encode.value).equals(bytes);
    const out = path.join(tmp, path.basename(file));
    const write = timeMedian(() => writeModelFile(load.value, out));
    const writeNoSync = timeMedian(() => writeModelFile(load.value, out, { fsync: false }));
    const written = fs.readFileSync(out).equals(bytes);
    const floats = allTensors(load.value.proto).filter((t) => t.dataType === DataType.FLOAT);
    // a fresh lazy load each time, so every tensor is really read from the file
    const readAll = timeMedian(() => {
      const m = readModelFile(file, { lazy: true });
      const ts = allTensors(m.proto).filter((t) => t.dataType === DataType.FLOAT);
      return ts.reduce((n, t) => n + readFloat32(t, m).length, 0);
    });
    const mb = bytes.length / 2 ** 20;
    console.log(
      `${path.basename(file)}: ${mb.toFixed(1)} MiB, ${load.value.proto.graph?.node?.length ?? 0} nodes, ` +
      `${floats.length} float tensors (${(readAll.value / 1e6).toFixed(2)}M values)\n` +
      `  readModelFile lazy ${load.ms.toFixed(1)} ms, eager ${eager.ms.toFixed(1)} ms (decode from memory ${decode.ms.toFixed(1)} ms) | ` +
      `lazy load + readFloat32 of all ${readAll.ms.toFixed(1)} ms\n` +
      `  encodeModel ${encode.ms.toFixed(1)} ms | ` +
      `writeModelFile ${write.ms.toFixed(1)} ms (${writeNoSync.ms.toFixed(1)} ms without fsync) (medians of ${RUNS})\n` +
      `  re-encode byte-identical: ${identical ? 'yes' : 'NO'}; written file byte-identical: ${written ? 'yes' : 'NO'}`,
    );
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
console.log(`peak RSS overall ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
