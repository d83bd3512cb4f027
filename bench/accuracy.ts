/**
 * Real-export accuracy benchmark (issue 18, "what ghn predict writes must classify"): for every
 * architecture exported by scripts/make_benchmark.py (ordinary torch.nn modules, never seen in
 * meta-training), what `predict()` with its default options gives on Fashion-MNIST — no training
 * in onnxruntime as written and with batch-statistics BatchNorm, and fine-tuning from the
 * prediction against fine-tuning PyTorch's default init with the same recipe.
 *
 *   /usr/bin/python3 scripts/make_benchmark.py          # once: fixtures/benchmark/ (git-ignored)
 *   npx tsx bench/accuracy.ts [--dir fixtures/benchmark] [--models a,b] [--steps 25,100,300]
 *       [--variant preserve13|eval13] [--json out.json] [--test-limit N] [--data-dir DIR] [--no-fit-head] [--mix t|auto]
 *       [--optimizer adamw|lamb|sgd|auto] [--lr 1e-3]   (the fine-tuning recipe, both starts; auto: ghn finetune's choice per start)
 *       [--head-refit IMAGES [--head-refit-every K]]  (closed-form head refit on the current features: FinetuneOptions.headRefit)
 *       [--start both|predicted|default]            (which starts to fine-tune)
 *   npm run bench:accuracy -- …
 *   npx tsx scripts/make-generated-split.ts && npx tsx bench/accuracy.ts --dir fixtures/generated --variant generated
 *
 * `--no-fit-head` measures the GHN's own classifier (predict's fitHead off), `--mix 0` the prediction
 * without PyTorch's default init mixed in: for comparison only.
 *
 * `--steps ''` or `--steps 0` skips fine-tuning. One fine-tuning run per start goes to the largest
 * count and is evaluated at the others on the way. Not part of `npm run bench` (it takes hours in full).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { progressBar } from '../src/cli/progress.js';
import { describeBackend, initBackend } from '../src/engine/backend.js';
import { GhnError } from '../src/errors.js';
import type { FinetuneProgress } from '../src/fine-tuning/finetune.js';
import {
  BATCH_STAT_BATCH, FINETUNE_RECIPE, type FinetuneRecipe, type FinetuneRun, FashionMnistSets, measureFinetuning, measureNoTraining, predictDefault, type Prediction,
} from './accuracy-measure.js';
import { environment, markdownTable, summary, type ModelResult } from './accuracy-report.js';

const VARIANTS = ['preserve13', 'eval13', 'generated'] as const;
type Variant = (typeof VARIANTS)[number];

interface IndexEntry {
  name: string;
  family: string;
  description: string;
  params: number;
  files: Record<string, { file: string }>;
}

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: 'fixtures/benchmark' },
    models: { type: 'string', default: '' },
    steps: { type: 'string', default: '25,100,300' },
    variant: { type: 'string', default: 'preserve13' },
    'no-fit-head': { type: 'boolean', default: false },
    mix: { type: 'string' },
    json: { type: 'string' },
    'test-limit': { type: 'string' },
    'data-dir': { type: 'string' },
    optimizer: { type: 'string', default: FINETUNE_RECIPE.optimizer },
    lr: { type: 'string', default: String(FINETUNE_RECIPE.lr) },
    'head-refit': { type: 'string', default: '0' },
    'head-refit-every': { type: 'string' },
    start: { type: 'string', default: 'both' },
  },
});

const refitImages = Number(values['head-refit']);
const refitEvery = values['head-refit-every'] === undefined ? undefined : Number(values['head-refit-every']);
const recipe: FinetuneRecipe = {
  ...FINETUNE_RECIPE, optimizer: values.optimizer as FinetuneRecipe['optimizer'], lr: values.lr === 'auto' ? 'auto' : Number(values.lr),
  ...(refitImages > 0 ? { headRefit: { images: refitImages, ...(refitEvery ? { every: refitEvery } : {}) } } : {}),
};
const STARTS = ['both', 'predicted', 'default'] as const;

function parseSteps(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const steps = parts.map(Number);
  if (steps.some((k) => !Number.isInteger(k) || k < 0)) throw new GhnError('usage', `--steps must list non-negative integers, got "${text}"`);
  // 0 means "no fine-tuning" (so `--steps 0` reads naturally).
  return [...new Set(steps.filter((k) => k > 0))].sort((a, b) => a - b);
}

function readIndex(dir: string): IndexEntry[] {
  const file = path.join(dir, 'index.json');
  if (!fs.existsSync(file)) {
    throw new GhnError('missing-data', `no ${file}: export the benchmark first with /usr/bin/python3 scripts/make_benchmark.py --out ${dir}`);
  }
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { models: IndexEntry[] }).models;
}

function selectModels(index: IndexEntry[], names: string): IndexEntry[] {
  const wanted = names.split(',').map((s) => s.trim()).filter(Boolean);
  if (!wanted.length) return index;
  const unknown = wanted.filter((n) => !index.some((m) => m.name === n));
  if (unknown.length) throw new GhnError('usage', `unknown model(s) ${unknown.join(', ')}; the index lists ${index.map((m) => m.name).join(', ')}`);
  return wanted.map((n) => index.find((m) => m.name === n)!);
}

const pct = (x: number | undefined) => (x === undefined ? '–' : `${(100 * x).toFixed(1)}%`);
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** A progress bar for one fine-tuning run (plain lines every 10% when stderr is not a TTY). */
function finetuneProgress(label: string, steps: number): { onProgress: (p: FinetuneProgress) => void; stop: () => void } {
  const bar = progressBar(steps, label, 'loss {loss} {speed} steps/s');
  return {
    onProgress: (p) => bar.update(p.step, { loss: p.loss.toFixed(3), speed: p.stepsPerSec.toFixed(2) }),
    stop: () => bar.stop(),
  };
}

async function main(): Promise<void> {
  const variant = values.variant as Variant;
  if (!VARIANTS.includes(variant)) throw new GhnError('usage', `--variant must be ${VARIANTS.join(' or ')}, got "${values.variant}"`);
  const steps = parseSteps(values.steps!);
  if (!(STARTS as readonly string[]).includes(values.start!)) throw new GhnError('usage', `--start must be ${STARTS.join(', ')}, got "${values.start}"`);
  if (!Number.isInteger(refitImages) || refitImages < 0 || refitImages === 1) throw new GhnError('usage', `--head-refit must be 0 (off) or a number of images ≥ 2, got "${values['head-refit']}"`);
  if (refitEvery !== undefined && (!Number.isInteger(refitEvery) || refitEvery <= 0)) throw new GhnError('usage', `--head-refit-every must be a positive integer`);
  const testLimit = values['test-limit'] === undefined ? undefined : Number(values['test-limit']);
  if (testLimit !== undefined && (!Number.isInteger(testLimit) || testLimit <= 0)) throw new GhnError('usage', `--test-limit must be a positive integer`);
  const dir = values.dir!;
  const models = selectModels(readIndex(dir), values.models!);

  const backend = describeBackend(await initBackend());
  const env = environment(backend);
  const sets = new FashionMnistSets(values['data-dir'], testLimit);
  console.log(`accuracy benchmark: ${models.length} models (${variant}) from ${dir}; ${steps.length ? `fine-tuning to ${steps.join('/')} steps` : 'no fine-tuning'}; ${backend}`);

  const results: ModelResult[] = [];
  let ghn: Prediction['report']['ghn'] | undefined;
  let predictOptions: Prediction['report']['options'] | undefined;
  const report = () => ({
    benchmark: 'bench/accuracy.ts',
    date: new Date().toISOString(),
    ...env,
    ghn,
    predictOptions,
    options: {
      dir, variant, steps, testLimit: testLimit ?? null, testImages: results[0]?.noTraining.testImages,
      batchStatBatch: BATCH_STAT_BATCH, finetune: steps.length ? recipe : null,
    },
    summary: summary(results, steps),
    models: results,
  });
  // Rewritten after every model, so a long run leaves its results so far.
  const writeJson = () => { if (values.json) fs.writeFileSync(values.json, JSON.stringify(report(), null, 1) + '\n'); };

  for (const [i, entry] of models.entries()) {
    const file = path.join(dir, entry.files[variant]?.file ?? `${entry.name}.${variant}.onnx`);
    const { prediction, ms: predictMs } = await predictDefault(file, {
      ...(values['no-fit-head'] ? { fitHead: false } : {}),
      ...(values.mix === undefined ? {} : { mix: values.mix === 'auto' ? 'auto' : Number(values.mix) }),
    });
    ghn ??= prediction.report.ghn;
    predictOptions ??= prediction.report.options;
    const noTraining = await measureNoTraining(file, prediction, predictMs, sets);
    const { mix, head } = prediction.report;
    const chosen = { mix, ...(head ? { head: { images: head.images, ridge: head.ridge, ...(head.heldOut === undefined ? {} : { heldOut: head.heldOut }) } } : {}) };
    const result: ModelResult = { name: entry.name, family: entry.family, description: entry.description, params: entry.params, file, noTraining, prediction: chosen };
    console.log(`[${i + 1}/${models.length}] ${entry.name} (${entry.params.toLocaleString('en-US')} params): ` +
      `ORT as written ${pct(noTraining.ortAsWritten)}, batch-stat BN ${noTraining.hasBatchNorm ? pct(noTraining.batchStatBn) : '(no BN)'}, ` +
      `default init ${pct(noTraining.defaultInitOrt)}; mix t ${mix.t}${mix.candidates ? ` (${mix.candidates.map((c) => `${c.t}: ${pct(c.heldOut)}`).join(', ')})` : ''}; predict ${secs(predictMs)}, no-training part ${secs(noTraining.ms.total)}`);

    if (steps.length) {
      const total = steps.at(-1)!;
      const start = values.start as (typeof STARTS)[number];
      let predicted: FinetuneRun | undefined, defaultInit: FinetuneRun | undefined;
      if (start !== 'default') {
        const fromPredicted = finetuneProgress(`${entry.name} from predicted`, total);
        predicted = await measureFinetuning(prediction.onnx, steps, sets, fromPredicted.onProgress, recipe).finally(fromPredicted.stop);
      }
      if (start !== 'predicted') {
        const fromDefault = finetuneProgress(`${entry.name} from default init`, total);
        defaultInit = await measureFinetuning(file, steps, sets, fromDefault.onProgress, recipe).finally(fromDefault.stop);
      }
      result.finetune = { ...(predicted ? { predicted } : {}), ...(defaultInit ? { defaultInit } : {}) };
      console.log(`    fine-tuned ${steps.map((k) => `${k}: ${pct(predicted?.atSteps[k])} / ${pct(defaultInit?.atSteps[k])}`).join(', ')} (predicted / default); ` +
        `${predicted?.msPerStep.toFixed(0) ?? '–'} / ${defaultInit?.msPerStep.toFixed(0) ?? '–'} ms per step`);
    }
    results.push(result);
    writeJson();
  }

  console.log(`\nGHN ${ghn?.path} (sha256 ${ghn?.hash}); predict options ${JSON.stringify(predictOptions)}`);
  console.log(`test images ${results[0]?.noTraining.testImages ?? 0}; batch-stat BN over batches of ${BATCH_STAT_BATCH}` +
    (steps.length ? `; fine-tuning ${recipe.optimizer} lr ${recipe.lr}, batch ${recipe.batch}, seed ${recipe.seed}` : '') + '\n');
  console.log(markdownTable(results, steps));
  writeJson();
  if (values.json) console.log(`\nreport: ${values.json}`);
}

main().catch((err: unknown) => {
  if (err instanceof GhnError) {
    console.error(`error: ${err.message}`);
    process.exit(err.exitCode);
  }
  throw err;
});
