/**
 * The documented own-data run (docs/training.md, "Training on your own dataset"), end to end through
 * the CLI as a user would run it: Fashion-MNIST written as an image folder of PNGs (one subfolder per
 * class), a GHN meta-trained on that folder from nothing, `ghn eval` on the folder's test split, and
 * PyTorch exports from fixtures/ predicted with that GHN and run in onnxruntime on the folder's test
 * split with no training — as predicted by default, with the GHN's own classifier (`--no-fit-head`),
 * and with PyTorch's default init in place of the prediction (`--mix 1`: what the closed-form
 * classifier fit gives without the GHN), next to the export as PyTorch initialized it.
 *
 *   npx tsx scripts/own-data-run.ts [--out runs/own-data] [--train 20000] [--test 2000] [--minutes 10]
 *       [--archs 20] [--models cnn_small,resnet_small,mobilenet_small,mlp] [--data-dir /usr/share/datasets/fashion-mnist]
 *
 * Prints one markdown table per measurement; --minutes bounds the meta-training (checkpointed).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadTrainTest, resolveDataset } from '../src/data/index.js';
import { evaluateWithOrt } from '../src/fine-tuning/evaluate.js';
import { writeFashionMnistFolder } from './make-image-folder.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(REPO, 'src/cli/main.ts');

const { values } = parseArgs({ options: {
  out: { type: 'string', default: 'runs/own-data' },
  train: { type: 'string', default: '20000' },
  test: { type: 'string', default: '2000' },
  minutes: { type: 'string', default: '10' },
  archs: { type: 'string', default: '20' },
  models: { type: 'string', default: 'cnn_small,resnet_small,mobilenet_small,mlp' },
  'data-dir': { type: 'string' },
} });

/** Runs `ghn ARGS` from source; stderr (progress) passes through; exits on failure with its code. */
function ghn(...args: string[]): string {
  process.stderr.write(`$ ghn ${args.join(' ')}\n`);
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 28 });
  if (r.status !== 0) {
    process.stderr.write(r.stdout);
    process.exit(r.status ?? 1);
  }
  process.stderr.write(`  (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  return r.stdout;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const out = path.resolve(values.out);
const folder = path.join(out, 'fmnist-png');
const prefix = path.join(out, 'ghn-fmnist-png');
const modelsDir = path.join(out, 'models');

// 1. The image folder (rewritten from scratch, so a rerun measures the same data).
fs.rmSync(folder, { recursive: true, force: true });
let t = Date.now();
for (const split of ['train', 'test'] as const) writeFashionMnistFolder(folder, split, Number(values[split]), { dir: values['data-dir'] });
process.stderr.write(`${folder}: ${values.train} train and ${values.test} test PNGs (${((Date.now() - t) / 1000).toFixed(0)} s)\n`);

// 2. Meta-training from nothing (a previous run's GHN is replaced).
for (const f of ['.ghn', '.ghn.opt', '.log.jsonl.gz', '.metrics.json']) fs.rmSync(prefix + f, { force: true });
t = Date.now();
const trained = ghn('train', '--data', folder, '--steps', '1000000', '--minutes', values.minutes, '--eval-archs', '0', '--out', prefix);
const trainMinutes = (Date.now() - t) / 60_000;
const steps = /(\d[\d,]*) (?:meta-)?steps/.exec(trained)?.[1] ?? '?';
process.stdout.write(`## ghn train --data ${path.relative(REPO, folder)} (${trainMinutes.toFixed(1)} min)\n\n${trained.trim()}\n\n`);

// 3. ghn eval: test-split architectures of the folder's space, no training, the GHN's own classifier.
const evaluation = JSON.parse(ghn('eval', '--ghn', `${prefix}.ghn`, '--archs', values.archs, '--finetune-archs', '0', '--json')) as {
  data: string; meanPredicted: number; meanDefault: number; perFamily: Record<string, { archs: number; predicted: number; defaultInit: number }>;
};
process.stdout.write(`## ghn eval on ${evaluation.data} (${values.archs} test-split architectures, no training, BN on batch statistics)\n\n`);
process.stdout.write('| family (archs) | predicted | default init |\n| --- | --- | --- |\n');
for (const [family, s] of Object.entries(evaluation.perFamily)) process.stdout.write(`| ${family} (${s.archs}) | ${pct(s.predicted)} | ${pct(s.defaultInit)} |\n`);
process.stdout.write(`| **mean (${values.archs})** | **${pct(evaluation.meanPredicted)}** | **${pct(evaluation.meanDefault)}** |\n\n`);

// 4. PyTorch exports predicted with that GHN, run in onnxruntime on the folder's test split as written.
const { test } = loadTrainTest(resolveDataset(folder));
const VARIANTS: { label: string; args: string[] }[] = [
  { label: 'ghn predict (default)', args: [] },
  { label: '--no-fit-head (GHN classifier)', args: ['--no-fit-head'] },
  { label: '--mix 1 (default init, fitted classifier)', args: ['--mix', '1'] },
];
fs.mkdirSync(modelsDir, { recursive: true });
const rows: string[] = [];
const sums = new Array(VARIANTS.length + 1).fill(0);
const names = values.models.split(',');
for (const name of names) {
  const model = path.join(REPO, 'fixtures', `${name}.preserve13.onnx`);
  const cells = [(await evaluateWithOrt(model, test!)).accuracy];
  for (const [i, v] of VARIANTS.entries()) {
    const file = path.join(modelsDir, `${name}.${i}.onnx`);
    ghn('predict', model, '--ghn', `${prefix}.ghn`, '-o', file, ...v.args);
    cells.push((await evaluateWithOrt(file, test!)).accuracy);
  }
  cells.forEach((c, i) => (sums[i] += c));
  rows.push(`| ${name} | ${cells.map(pct).join(' | ')} |`);
}
process.stdout.write(`## fixtures/*.preserve13.onnx predicted with ${path.basename(prefix)}.ghn (${steps} steps), onnxruntime on ${test!.count} test images of the folder\n\n`);
process.stdout.write(`| model | as exported (PyTorch init) | ${VARIANTS.map((v) => v.label).join(' | ')} |\n| --- | --- |${' --- |'.repeat(VARIANTS.length)}\n`);
process.stdout.write(`${rows.join('\n')}\n| **mean (${names.length})** | ${sums.map((s) => `**${pct(s / names.length)}**`).join(' | ')} |\n`);
