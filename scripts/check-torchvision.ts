/**
 * Issue-2 acceptance over every torchvision export in a folder (default fixtures/large, made by
 * scripts/export_torchvision.py): `inspect` has nothing unsupported, and for PRESERVE/TRAINING exports
 * the parameter count equals PyTorch's (from <model>.state.json).
 * Usage: npx tsx scripts/check-torchvision.ts [dir]
 */
import fs from 'node:fs';
import path from 'node:path';
import { inspect } from '../src/api/inspect.js';

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
 * Models whose PRESERVE export cannot carry PyTorch's parameters as they are: the exporter folds
 * Gather(relative_position_bias_table, relative_position_index) into a constant bias per attention
 * layer ([heads, N, N] instead of the [(2w−1)², heads] table). ghn sees, and predicts, the folded bias.
 */
const FOLDED_BY_EXPORTER: Readonly<Record<string, string>> = {
  swin_t: 'relative position bias tables folded by the exporter',
  swin_s: 'relative position bias tables folded by the exporter',
  swin_b: 'relative position bias tables folded by the exporter',
  maxvit_t: 'relative position bias tables folded by the exporter',
};

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
console.log('file                                        params      pytorch     check  unsupported');
for (const file of files) {
  const [model, variant] = file.split('.');
  const stateFile = path.join(dir, `${model}.state.json`);
  const expected = fs.existsSync(stateFile) ? expectedParams(model!, JSON.parse(fs.readFileSync(stateFile, 'utf8'))) : undefined;
  let line: string;
  try {
    const s = inspect(path.join(dir, file));
    const countChecked = !variant!.startsWith('eval');
    const countOk = !countChecked || s.params.elements === expected;
    const explained = !countOk && FOLDED_BY_EXPORTER[model!];
    const ok = (countOk || Boolean(explained)) && s.unsupported.length === 0;
    if (!ok) failures++;
    const unsupported = [...new Set(s.unsupported.map((u) => u.opType))].join(',') || '-';
    line = `${file.padEnd(42)} ${String(s.params.elements).padStart(10)} ${String(expected ?? '?').padStart(12)}  ${(ok ? (explained ? 'expl' : 'ok') : 'FAIL').padEnd(5)} ${unsupported}${explained ? ` (${explained})` : ''}`;
  } catch (err) {
    failures++;
    line = `${file.padEnd(42)} error: ${(err as Error).message}`;
  }
  console.log(line);
}
console.log(`${files.length - failures} passed, ${failures} failed`);
process.exitCode = failures ? 1 : 0;
