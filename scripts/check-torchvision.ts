/**
 * Issue-2 acceptance over every torchvision export in a folder (default fixtures/large, made by
 * scripts/export_torchvision.py): `inspect` has nothing unsupported; every float initializer a node
 * reads in a parameter position (by the operators' signatures, src/graph/consumed-parameters.ts) is
 * a slot, i.e. gets predicted (the "unslotted" column, counted per export and in total; must be 0);
 * and for PRESERVE/TRAINING exports the parameter count equals PyTorch's (from <model>.state.json).
 * Usage: npx tsx scripts/check-torchvision.ts [dir]
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../src/api/inspect.js';
import { distinctInitializers, consumedParameters, withoutSlots } from '../src/graph/consumed-parameters.js';
import { buildGraph, summarize } from '../src/graph/index.js';

const dir = path.resolve(process.argv[2] ?? 'fixtures/large');

/**
 * torchvision modules that only run in training mode (auxiliary classifiers): their parameters are
 * in `model.parameters()` but not in any export, so they are not expected in the count.
 */
const TRAINING_ONLY_MODULES: Readonly<Record<string, readonly string[]>> = {
  googlenet: ['aux1.', 'aux2.'],
  inception_v3: ['AuxLogits.'],
};

/**
 * Constant folding (do_constant_folding=True, every export_torchvision.py variant but the *nofold
 * ones) replaces Gather(relative_position_bias_table, relative_position_index) by its value: a
 * [1, heads, N, N] bias per attention layer (N = w² tokens per window, the table has (2w−1)² rows),
 * which ghn predicts as a position embedding. Measured on swin_t and maxvit_t (eval13, preserve13,
 * preserve17): no table is left, and the count is PyTorch's minus the tables plus exactly these
 * biases; the *nofold variants keep every table (Gather by a constant index) and match PyTorch's
 * count. Returns the count a folded export must have, or undefined if the model has no tables.
 */
function countWithFoldedTables(expected: number, state: { parameters: Record<string, number[]> }): number | undefined {
  let tables = 0, folded = 0;
  for (const [name, shape] of Object.entries(state.parameters)) {
    if (!name.endsWith('relative_position_bias_table') || shape.length !== 2) continue;
    const [rows, heads] = shape as [number, number];
    const side = (Math.sqrt(rows) + 1) / 2; // window side w
    tables += rows * heads;
    folded += heads * side ** 4;
  }
  return tables ? expected - tables + folded : undefined;
}

const isFolded = (variant: string): boolean => !variant.endsWith('nofold');

function expectedParams(model: string, state: { params: number; parameters: Record<string, number[]> }): number {
  const skip = TRAINING_ONLY_MODULES[model] ?? [];
  let unused = 0;
  for (const [name, shape] of Object.entries(state.parameters)) {
    if (skip.some((prefix) => name.startsWith(prefix))) unused += shape.reduce((a, b) => a * b, 1);
  }
  return state.params - unused;
}
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort();
let failures = 0;
let unslottedTotal = 0;
console.log('file                                        params      pytorch  unslotted  check  unsupported');
for (const file of files) {
  const [model, variant] = file.split('.');
  const stateFile = path.join(dir, `${model}.state.json`);
  const state = fs.existsSync(stateFile) ? JSON.parse(fs.readFileSync(stateFile, 'utf8')) : undefined;
  const expected = state ? expectedParams(model!, state) : undefined;
  let line: string;
  try {
    const onnx = loadModel(path.join(dir, file));
    const graph = buildGraph(onnx);
    const s = summarize(graph);
    // Learned tensors no slot reads: `ghn predict` would leave them as the file had them.
    const unslotted = distinctInitializers(withoutSlots(consumedParameters(onnx), graph.slots.values()));
    unslottedTotal += unslotted.length;
    const countChecked = !variant!.startsWith('eval');
    const countOk = !countChecked || s.params.elements === expected;
    const folded = expected !== undefined && isFolded(variant!) ? countWithFoldedTables(expected, state) : undefined;
    const explained = !countOk && folded === s.params.elements ? 'relative position bias tables folded by the exporter' : undefined;
    const ok = (countOk || Boolean(explained)) && s.unsupported.length === 0 && unslotted.length === 0;
    if (!ok) failures++;
    const unsupported = [...new Set(s.unsupported.map((u) => u.opType))].join(',') || '-';
    const detail = [explained, unslotted.length ? `unslotted: ${unslotted.slice(0, 3).join(', ')}${unslotted.length > 3 ? ', …' : ''}` : undefined].filter(Boolean).join('; ');
    line = `${file.padEnd(42)} ${String(s.params.elements).padStart(10)} ${String(expected ?? '?').padStart(12)} ${String(unslotted.length).padStart(10)}  ${(ok ? (explained ? 'expl' : 'ok') : 'FAIL').padEnd(5)} ${unsupported}${detail ? ` (${detail})` : ''}`;
  } catch (err) {
    failures++;
    line = `${file.padEnd(42)} error: ${(err as Error).message}`;
  }
  console.log(line);
}
console.log(`${files.length - failures} passed, ${failures} failed; ${unslottedTotal} consumed parameters not predicted (unslotted) in all`);
process.exitCode = failures ? 1 : 0;
