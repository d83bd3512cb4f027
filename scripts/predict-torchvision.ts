/**
 * Issue-5 acceptance over the torchvision exports in fixtures/large (listed in its index.json by
 * scripts/export_torchvision.py): for every export, `predict` succeeds; every trainable parameter
 * (as many elements as `inspect` counts) is changed in the written file; every other initializer
 * but BatchNorm running statistics (which the calibration writes) is byte-identical; no float
 * initializer a node reads in a parameter position (by the operators' signatures,
 * src/graph/consumed-parameters.ts) is left byte-identical outside the slots ("consumed but
 * unpredicted", counted per export and in total, must be 0); and onnxruntime-node runs the file on a
 * standard-normal batch with finite logits whose standard deviation is in (0.01, 100). Each export
 * runs in its own process (a failure or an out-of-memory stays contained); outputs go to a
 * temporary folder and are deleted at once.
 *
 * Usage: npx tsx scripts/predict-torchvision.ts [--dir fixtures/large] [--models a,b] [--variants eval13,…]
 *          [--json summary.json] [--timeout 600]
 *        npx tsx scripts/predict-torchvision.ts --one <file.onnx>   (one export; prints its JSON result)
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import * as ort from 'onnxruntime-node';
import { inspect, loadModel } from '../src/api/inspect.js';
import { predict } from '../src/api/predict.js';
import { distinctInitializers, unpredictedParameters, withoutSlots } from '../src/graph/consumed-parameters.js';
import { buildGraph } from '../src/graph/index.js';
import { readModelFile, readTensorData, writeFileAtomic, type OnnxModel, type TensorProto } from '../src/onnx/index.js';
import { concreteInputShape } from '../src/predict/validate.js';
import { createRng, gaussian } from '../src/util/random.js';

const STD_RANGE = [0.01, 100] as const;

interface ExportResult {
  file: string;
  ok: boolean;
  error?: string;
  /** Trainable parameter elements by `inspect`, and how many of them the written file changed. */
  params?: number;
  changedParams?: number;
  /** Parameter tensors (slots) left exactly as they were: must be none. */
  unchangedTensors?: string[];
  /** Float initializers read as parameters, outside every slot, byte-identical after prediction: must be none. */
  unpredicted?: string[];
  /** Non-parameter initializers, and those whose bytes changed (must be none). */
  buffers?: number;
  changedBuffers?: string[];
  finite?: boolean;
  logitStd?: number;
  seconds?: number;
  peakRssMiB?: number;
}

/** Follows Identity nodes back to the value they copy (the exporter shares initializers through them). */
function identityResolver(model: OnnxModel): (name: string) => string {
  const producer = new Map<string, string>();
  for (const n of model.proto.graph?.node ?? []) if (n.opType === 'Identity') producer.set(n.output?.[0] ?? '', n.input?.[0] ?? '');
  return (name) => {
    for (let hops = 0; producer.has(name) && hops < 64; hops++) name = producer.get(name)!;
    return name;
  };
}

/** dtype, dims and data bytes, as one comparable byte string. */
function tensorBytes(t: TensorProto, model: OnnxModel): Uint8Array {
  const data = readTensorData(t, model);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

async function logitStd(file: string, original: OnnxModel): Promise<{ finite: boolean; std: number }> {
  const inits = new Set((original.proto.graph?.initializer ?? []).map((t) => t.name));
  const input = (original.proto.graph?.input ?? []).find((v) => !inits.has(v.name))!;
  const shape = concreteInputShape(input, 1);
  const rng = createRng(1);
  const x = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < x.length; i++) x[i] = gaussian(rng);
  const session = await ort.InferenceSession.create(file);
  try {
    const out = await session.run({ [input.name!]: new ort.Tensor('float32', x, shape) });
    const logits = out[session.outputNames[0]!]!.data as Float32Array;
    let finite = true, mean = 0;
    for (const v of logits) {
      if (!Number.isFinite(v)) finite = false;
      mean += v;
    }
    mean /= logits.length;
    let variance = 0;
    for (const v of logits) variance += (v - mean) ** 2;
    return { finite, std: Math.sqrt(variance / logits.length) };
  } finally {
    await session.release();
  }
}

/** Predicts one export and checks the written file. */
async function checkOne(file: string): Promise<ExportResult> {
  const t0 = performance.now();
  const result: ExportResult = { file: path.basename(file), ok: false };
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-sweep-'));
  try {
    const params = inspect(file).params.elements;
    const original = loadModel(file);
    const graph = buildGraph(original);
    // Written the way the CLI writes it (models with external data get theirs beside it).
    const outFile = path.join(tmpDir, 'predicted.onnx');
    const { initializerOf } = await predict(original, { validate: false, output: outFile });
    const written = readModelFile(outFile);
    const writtenByName = new Map((written.proto.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
    const originalByName = new Map((original.proto.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));

    // Parameters: each slot's tensor in the written file (its own initializer, split from a shared
    // one if needed) differs from the initializer the export had for it.
    let changed = 0;
    const unchanged: string[] = [];
    for (const slot of graph.slots.values()) {
      const before = tensorBytes(originalByName.get(slot.initializer)!, original);
      const after = writtenByName.get(initializerOf.get(slot.id) ?? '');
      if (after && !sameBytes(before, tensorBytes(after, written))) changed += slot.shape.reduce((a, b) => a * b, 1);
      else unchanged.push(slot.initializer);
    }
    // Buffers: every value a node reads from an initializer that does not hold a parameter (BN
    // running statistics, shapes, constants — also when the exporter merged them with a parameter,
    // which the writer then splits) is byte-identical to what the same node read in the export.
    const parameterTensors = new Set(initializerOf.values());
    const writtenNodes = new Map((written.proto.graph?.node ?? []).map((n) => [n.output?.[0] ?? '', n]));
    const changedBuffers = new Set<string>();
    const checked = new Set<string>();
    const resolveOriginal = identityResolver(original);
    const resolveWritten = identityResolver(written);
    for (const node of original.proto.graph?.node ?? []) {
      if (node.opType === 'Identity') continue; // its readers are checked through it
      const twin = writtenNodes.get(node.output?.[0] ?? '');
      if (!twin) continue;
      (node.input ?? []).forEach((name, k) => {
        // BatchNorm running statistics: the calibration writes them as measured (docs/design.md).
        if (node.opType === 'BatchNormalization' && k >= 3) return;
        const before = originalByName.get(resolveOriginal(name));
        const readName = resolveWritten(twin.input?.[k] ?? '');
        if (!before || parameterTensors.has(readName)) return;
        checked.add(readName);
        const after = writtenByName.get(readName);
        if (!after || !sameBytes(tensorBytes(before, original), tensorBytes(after, written))) changedBuffers.add(readName || name);
      });
    }
    const buffers = checked.size;
    // Learned tensors the graph has no slot for keep the file's values: the audit reads the operators'
    // signatures, not the graph builder's patterns.
    const unpredicted = distinctInitializers(withoutSlots(unpredictedParameters(original, written), graph.slots.values()));
    const { finite, std } = await logitStd(outFile, original);
    Object.assign(result, {
      params, changedParams: changed, unchangedTensors: unchanged, unpredicted, buffers, changedBuffers: [...changedBuffers], finite, logitStd: std,
    });
    result.ok = changed === params && unchanged.length === 0 && unpredicted.length === 0 && changedBuffers.size === 0 && finite && std > STD_RANGE[0] && std < STD_RANGE[1];
  } catch (err) {
    result.error = (err as Error).message.split('\n')[0];
  } finally {
    fs.rmSync(tmpDir, { recursive: true, force: true });
  }
  result.seconds = (performance.now() - t0) / 1000;
  result.peakRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
  return result;
}

const program = new Command()
  .option('--dir <dir>', 'folder with the exports and index.json', 'fixtures/large')
  .option('--models <list>', 'only these models (comma-separated)')
  .option('--variants <list>', 'only these variants (comma-separated, e.g. eval13,preserve17)')
  .option('--json <file>', 'write the summary as JSON')
  .option('--timeout <s>', 'seconds allowed per export', '900')
  .option('--one <file>', 'check one export and print its result as JSON (used per export)')
  .parse();
const opts = program.opts<{ dir: string; models?: string; variants?: string; json?: string; timeout: string; one?: string }>();

if (opts.one) {
  process.stdout.write(JSON.stringify(await checkOne(opts.one)) + '\n');
  process.exit(0);
}

/** The model file plus its external-data file (same stem, `.data`, as export_torchvision.py writes it). */
function exportBytes(dir: string, file: string): number {
  const data = path.join(dir, file.replace(/\.onnx$/, '.data'));
  return fs.statSync(path.join(dir, file)).size + (fs.existsSync(data) ? fs.statSync(data).size : 0);
}

const dir = path.resolve(opts.dir);
const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as { exports: { model: string; variant: string; file: string; status: string }[] };
const models = opts.models ? new Set(opts.models.split(',')) : undefined;
const variants = opts.variants ? new Set(opts.variants.split(',')) : undefined;
const todo = index.exports.filter((e) => e.status === 'ok' && fs.existsSync(path.join(dir, e.file))
  && (!models || models.has(e.model)) && (!variants || variants.has(e.variant)))
  // Smallest models first (external data counted): most results arrive early; the giants come last.
  .sort((a, b) => exportBytes(dir, a.file) - exportBytes(dir, b.file));
const self = path.resolve(process.argv[1]!);
const results: ExportResult[] = [];
console.log(`${todo.length} exports in ${dir}`);
console.log('export                                  params        changed  unpredicted  buffers  logit std   s      MiB  result');
for (const e of todo) {
  const child = spawnSync(process.execPath, ['--import', 'tsx', self, '--one', path.join(dir, e.file)], {
    encoding: 'utf8', timeout: Number(opts.timeout) * 1000, maxBuffer: 1 << 26,
  });
  let r: ExportResult;
  try {
    r = JSON.parse(child.stdout.trim().split('\n').at(-1) ?? '');
  } catch {
    const why = child.error ? child.error.message : child.signal ? `killed by ${child.signal}` : (child.stderr.trim().split('\n').at(-1) ?? `exit ${child.status}`);
    r = { file: e.file, ok: false, error: why };
  }
  results.push(r);
  const n = (x?: number) => (x === undefined ? '?' : x.toLocaleString('en-US'));
  const verdict = r.ok ? 'ok' : `FAIL${r.error ? `: ${r.error}` : ''}${r.unchangedTensors?.length ? ` unchanged ${r.unchangedTensors.slice(0, 3).join(',')}` : ''}${r.unpredicted?.length ? ` unpredicted ${r.unpredicted.slice(0, 3).join(',')}` : ''}${r.changedBuffers?.length ? ` buffers changed ${r.changedBuffers.slice(0, 3).join(',')}` : ''}`;
  console.log(`${e.file.padEnd(38)} ${n(r.params).padStart(12)} ${n(r.changedParams).padStart(12)} ${String(r.unpredicted?.length ?? '?').padStart(12)} ${String(r.buffers ?? '?').padStart(7)}  ${(r.logitStd?.toPrecision(3) ?? '?').padStart(9)} ${(r.seconds?.toFixed(1) ?? '?').padStart(5)} ${String(r.peakRssMiB ?? '?').padStart(7)}  ${verdict}`);
}
const passed = results.filter((r) => r.ok).length;
const unpredictedTotal = results.reduce((a, r) => a + (r.unpredicted?.length ?? 0), 0);
const stds = results.filter((r) => r.logitStd !== undefined).map((r) => r.logitStd!);
const summary = {
  exports: results.length, passed, failed: results.length - passed, unpredicted: unpredictedTotal,
  logitStd: stds.length ? { min: Math.min(...stds), max: Math.max(...stds) } : null,
  failures: results.filter((r) => !r.ok).map((r) => ({ file: r.file, error: r.error, unchangedTensors: r.unchangedTensors?.length, unpredicted: r.unpredicted?.length, changedBuffers: r.changedBuffers?.length, logitStd: r.logitStd })),
  results,
};
console.log(`\n${passed}/${results.length} exports pass; ${unpredictedTotal} consumed parameters left unpredicted in all${stds.length ? `; logit std ${summary.logitStd!.min.toPrecision(3)}–${summary.logitStd!.max.toPrecision(3)}` : ''}`);
console.log(JSON.stringify({ exports: summary.exports, passed, failed: summary.failed, unpredicted: unpredictedTotal, logitStd: summary.logitStd, failures: summary.failures }));
if (opts.json) writeFileAtomic(opts.json, new TextEncoder().encode(JSON.stringify(summary, null, 1)));
process.exitCode = passed === results.length ? 0 : 1;
