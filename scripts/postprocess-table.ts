/**
 * Does the diversity post-processing help fine-tuning? For each fixture architecture (the small
 * Fashion-MNIST models in fixtures/), predict its parameters with each post-processing setting,
 * fine-tune 100 steps (AdamW lr 1e-3, batch 64, the library's finetune API) for several seeds and
 * measure Fashion-MNIST test accuracy of the result in onnxruntime. Prints a markdown table of
 * means (per architecture and overall) and, with --json, writes every run.
 *
 * Usage: npx tsx scripts/postprocess-table.ts [--steps 100] [--seeds 3] [--variant preserve13]
 *          [--archs cnn_small,resnet_small,…] [--settings raw,noise,default] [--test-limit N] [--json out.json]
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { finetuneModel } from '../src/api/finetune.js';
import { loadDataset } from '../src/api/datasets.js';
import { loadModel } from '../src/api/inspect.js';
import { predict, type PredictOptions } from '../src/api/predict.js';
import { buildGraph } from '../src/graph/index.js';
import { writeFileAtomic } from '../src/onnx/index.js';
import { isDiversifiable } from '../src/postprocess/diversify.js';
import { evaluateWithOrt } from '../src/fine-tuning/evaluate.js';

/** Post-processing settings compared; `default` is what `ghn predict` does without options. */
const SETTINGS: Record<string, { label: string; options: PredictOptions }> = {
  raw: { label: 'raw prediction', options: { noise: 0, orthogonalize: false } },
  noise: { label: 'noise only (β 3e-5)', options: { noise: 3e-5, orthogonalize: false } },
  orth: { label: 'QR only', options: { noise: 0, orthogonalize: true } },
  default: { label: 'noise + QR (β 3e-5)', options: { noise: 3e-5, orthogonalize: true } },
  late: { label: 'noise + QR from the middle weight on', options: { noise: 3e-5, orthogonalize: true } },
};

const program = new Command()
  .option('--steps <n>', 'fine-tuning steps', '100')
  .option('--seeds <n>', 'seeds per setting', '3')
  .option('--variant <v>', 'fixture export variant', 'preserve13')
  .option('--archs <list>', 'comma-separated architectures (default: every fixture)')
  .option('--settings <list>', `comma-separated settings (${Object.keys(SETTINGS).join(', ')})`, 'raw,default')
  .option('--test-limit <n>', 'test images (default: all 10,000)')
  .option('--json <file>', 'write every run as JSON')
  .parse();
const opts = program.opts<{ steps: string; seeds: string; variant: string; archs?: string; settings: string; testLimit?: string; json?: string }>();

const fixtureDir = path.resolve('fixtures');
const archs = opts.archs
  ? opts.archs.split(',')
  : [...new Set(fs.readdirSync(fixtureDir).filter((f) => f.endsWith(`.${opts.variant}.onnx`)).map((f) => f.split('.')[0]!))].sort();
const settings = opts.settings.split(',');
for (const s of settings) if (!SETTINGS[s]) throw new Error(`unknown setting ${s} (choose from ${Object.keys(SETTINGS).join(', ')})`);
const steps = Number(opts.steps);
const seeds = Number(opts.seeds);

const train = loadDataset('fashion-mnist', 'train');
const test = loadDataset('fashion-mnist', 'test', { limit: opts.testLimit ? Number(opts.testLimit) : undefined });

interface Run { arch: string; setting: string; seed: number; accuracy: number; msPerStep: number; ms: number }
const runs: Run[] = [];

/** Index of the middle ≥ 2-D weight (as `fromLayer` counts them), for the `late` setting. */
function middleWeight(file: string): number {
  const graph = buildGraph(loadModel(file));
  return Math.floor([...graph.slots.values()].filter(isDiversifiable).length / 2);
}

for (const arch of archs) {
  const file = path.join(fixtureDir, `${arch}.${opts.variant}.onnx`);
  for (const setting of settings) {
    const options: PredictOptions = { ...SETTINGS[setting]!.options, validate: false };
    if (setting === 'late') options.fromLayer = middleWeight(file);
    for (let seed = 0; seed < seeds; seed++) {
      const t0 = performance.now();
      const predicted = await predict(file, { ...options, seed });
      const { onnx, report } = await finetuneModel(predicted.onnx, { train, steps, batch: 64, lr: 1e-3, optimizer: 'adamw', seed });
      const { accuracy } = await evaluateWithOrt(onnx, test);
      const run = { arch, setting, seed, accuracy, msPerStep: report.msPerStep, ms: performance.now() - t0 };
      runs.push(run);
      console.error(`${arch} ${setting} seed ${seed}: ${(100 * accuracy).toFixed(2)}% (${(run.ms / 1000).toFixed(0)} s)`);
    }
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const cell = (arch: string | null, setting: string) => {
  const accs = runs.filter((r) => (arch === null || r.arch === arch) && r.setting === setting).map((r) => r.accuracy);
  return accs.length ? `${(100 * mean(accs)).toFixed(1)}%` : '–';
};
console.log(`Fashion-MNIST test accuracy after ${steps} fine-tuning steps from the prediction (AdamW lr 1e-3, batch 64; mean of ${seeds} seeds; ${opts.variant} exports)\n`);
console.log(`| architecture | ${settings.map((s) => SETTINGS[s]!.label).join(' | ')} |`);
console.log(`| --- | ${settings.map(() => '---').join(' | ')} |`);
for (const arch of archs) console.log(`| ${arch} | ${settings.map((s) => cell(arch, s)).join(' | ')} |`);
console.log(`| **mean (${archs.length})** | ${settings.map((s) => `**${cell(null, s)}**`).join(' | ')} |`);
if (opts.json) writeFileAtomic(opts.json, new TextEncoder().encode(JSON.stringify({ steps, seeds, variant: opts.variant, settings, runs }, null, 1)));
