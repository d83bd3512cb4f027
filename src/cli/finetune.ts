import type { Command } from 'commander';
import { DATA_HELP } from '../data/names.js';
import { GhnError } from '../errors.js';
import { checkWritableOutput } from '../util/user-files.js';
import { DEFAULT_BN_RECALIBRATION_BATCHES, DEFAULT_HEAD_REFIT_IMAGES } from '../fine-tuning/defaults.js';
import { parseNumber } from './options.js';
import path from 'node:path';

interface FinetuneCliOptions {
  data: string;
  dataDir?: string;
  steps: string;
  batch: string;
  lr: string;
  optimizer: string;
  seed: string;
  testLimit?: string;
  bnRecalibration: string;
  headRefit: string;
  headRefitEvery?: string;
  output?: string;
  overwriteInput?: boolean;
  json?: boolean;
}

const OPTIMIZERS = ['auto', 'sgd', 'adamw', 'lamb'] as const;

export function registerFinetune(program: Command): void {
  program
    .command('finetune')
    .description("train a model's parameters on a dataset (from the values in the file) and write them back")
    .argument('<model>', 'ONNX file')
    .requiredOption('-o, --output <file>', 'where to write the trained model')
    .option('--data <name|dir>', `dataset: ${DATA_HELP}`, 'fashion-mnist')
    .option('--data-dir <dir>', 'folder of a dataset named by --data (default for fashion-mnist: /usr/share/datasets/fashion-mnist)')
    .option('--steps <n>', 'training steps', '300')
    .option('--batch <n>', 'batch size', '64')
    .option('--lr <rate>', 'learning rate, or auto: 3e-3 for lamb from a ghn prediction, 1e-3 otherwise', 'auto')
    .option('--optimizer <name>', 'auto | sgd | adamw | lamb (lamb: each tensor moves by lr relative to its norm, loses less of a prediction; auto: lamb for a ghn predict output, adamw otherwise; docs/benchmarks.md)', 'auto')
    .option('--seed <n>', 'seed of the batch order', '0')
    .option('--bn-recalibration <batches>', 'batches that re-estimate BatchNorm running statistics for the final weights (0: keep the running average)', String(DEFAULT_BN_RECALIBRATION_BATCHES))
    .option('--head-refit <images>', 'refit the classifier in closed form (ridge, as ghn predict fits it) on this many training images after training; 0: off', String(DEFAULT_HEAD_REFIT_IMAGES))
    .option('--head-refit-every <k>', 'also refit it every k steps during training')
    .option('--test-limit <n>', 'evaluate on the first n test images only')
    .option('--overwrite-input', 'allow the output to replace the input file')
    .option('--json', 'print the report as JSON')
    .action(async (file: string, o: FinetuneCliOptions) => {
      if (!(OPTIMIZERS as readonly string[]).includes(o.optimizer)) {
        throw new GhnError('usage', `--optimizer must be ${OPTIMIZERS.join(' or ')}, got "${o.optimizer}"`);
      }
      if (path.resolve(o.output!) === path.resolve(file) && !o.overwriteInput) {
        throw new GhnError('usage', `refusing to overwrite the input ${file} (pass --overwrite-input to allow it)`);
      }
      const steps = parseNumber(o.steps, '--steps', { integer: true, min: 1 });
      checkWritableOutput(o.output!, '-o');
      const refitImages = parseNumber(o.headRefit, '--head-refit', { integer: true, min: 0 });
      if (refitImages === 1) throw new GhnError('usage', '--head-refit needs at least 2 images (0: off)');
      const refitEvery = o.headRefitEvery === undefined ? undefined : parseNumber(o.headRefitEvery, '--head-refit-every', { integer: true, min: 1 });
      if (refitEvery !== undefined && refitImages === 0) throw new GhnError('usage', '--head-refit-every needs --head-refit > 0');
      const testLimit = o.testLimit === undefined ? undefined : parseNumber(o.testLimit, '--test-limit', { integer: true, min: 1 });
      // The data loaders, the training code and the progress bar load only for this command.
      const [{ finetuneModel }, { writeFileAtomic }, { progressBar }, { loadTrainTest, resolveDataset }] = await Promise.all([
        import('../api/finetune.js'), import('../onnx/index.js'), import('./progress.js'), import('../data/sources.js'),
      ]);
      // The test split is normalized with the train split's statistics.
      const { train, test } = loadTrainTest(resolveDataset(o.data, o.dataDir), { testLimit });
      const bar = progressBar(steps, 'finetune', 'loss {loss} acc {acc} {speed} steps/s');
      let result;
      try {
        result = await finetuneModel(file, {
          train, test, steps,
          batch: parseNumber(o.batch, '--batch', { integer: true, min: 1 }),
          lr: o.lr === 'auto' ? 'auto' : parseNumber(o.lr, '--lr', { min: 0 }),
          optimizer: o.optimizer as (typeof OPTIMIZERS)[number],
          seed: parseNumber(o.seed, '--seed', { integer: true, min: 0 }),
          bnRecalibrationBatches: parseNumber(o.bnRecalibration, '--bn-recalibration', { integer: true, min: 0 }),
          ...(refitImages > 0 ? { headRefit: { images: refitImages, ...(refitEvery ? { every: refitEvery } : {}) } } : {}),
          onProgress: (p) => bar.update(p.step, { loss: p.loss.toFixed(3), acc: p.acc.toFixed(2), speed: p.stepsPerSec.toFixed(1) }),
        });
      } finally {
        bar.stop();
      }
      writeFileAtomic(o.output!, result.onnx);
      const r = result.report;
      if (o.json) {
        process.stdout.write(JSON.stringify({ output: o.output, ...r }, null, 2) + '\n');
        return;
      }
      const pct = (x?: number) => (x === undefined ? '-' : `${(100 * x).toFixed(2)}%`);
      process.stdout.write(
        `${o.output}: ${r.steps} steps of ${r.optimizer} lr ${r.lr}${r.start ? ` (auto: ${r.start === 'ghn-prediction' ? 'a ghn prediction' : 'not a ghn prediction'})` : ''} (${r.msPerStep.toFixed(0)} ms/step, ${r.backend}), final loss ${r.finalLoss.toFixed(3)}\n` +
          `  test accuracy ${pct(r.testAccuracy)} (tfjs executor), ${pct(r.ortAccuracy)} (onnxruntime, written file)\n` +
          (r.headRefit ? `  classifier ${r.headRefit.op} refitted in closed form on ${r.headRefit.images} training images (${r.headRefit.kept === 'fitted' ? 'fit kept' : 'trained head kept: the fit was worse on those images'})\n` : ''),
      );
    });
}
