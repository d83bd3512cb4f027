import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { DATA_HELP } from '../data/names.js';
import { GhnError } from '../errors.js';
import { checkWritableOutput } from '../util/user-files.js';
import { parseNumber } from './options.js';
import { DEFAULT_HEAD_REFIT_IMAGES } from '../fine-tuning/defaults.js';

interface DistillCliOptions {
  student: string;
  output: string;
  steps: string;
  batch: string;
  lr: string;
  optimizer: string;
  seed: string;
  headRefit: string;
  data: string;
  dataDir?: string;
  testLimit?: string;
  overwriteInput?: boolean;
  json?: boolean;
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/** Every named model file exists (one line naming the first that does not). */
export function requireFiles(files: readonly string[]): void {
  for (const f of files) {
    if (!fs.existsSync(f)) throw new GhnError('not-found', `no such file: ${f}`);
    if (fs.statSync(f).isDirectory()) throw new GhnError('usage', `${f} is a directory, not an ONNX file`);
  }
}

const OPTIMIZERS = ['auto', 'adamw', 'lamb', 'sgd'] as const;

export function registerDistill(program: Command): void {
  program
    .command('distill')
    .description("train one model on an ensemble's mean softmax (soft targets), from a student file's parameters")
    .argument('<files...>', 'the ensemble: ONNX files (e.g. the samples of ghn predict --samples)')
    .requiredOption('--student <file>', 'ONNX file whose parameters training starts from (typically one of the samples)')
    .requiredOption('-o, --output <file>', 'where to write the distilled model')
    .option('--steps <n>', 'training steps', '300')
    .option('--batch <n>', 'batch size', '64')
    .option('--lr <rate>', 'learning rate, or auto: 3e-3 for lamb from a ghn prediction, 1e-3 otherwise', 'auto')
    .option('--optimizer <name>', 'auto | adamw | lamb | sgd (auto: lamb for a student that is a ghn predict output, adamw otherwise; docs/benchmarks.md)', 'auto')
    .option('--seed <n>', 'seed of the batch order', '0')
    .option('--head-refit <images>', "refit the student's classifier in closed form on this many labeled training images after training (the body learns from the soft targets); 0: off", String(DEFAULT_HEAD_REFIT_IMAGES))
    .option('--data <name|dir>', `dataset: ${DATA_HELP}`, 'fashion-mnist')
    .option('--data-dir <dir>', 'folder of a dataset named by --data')
    .option('--test-limit <n>', 'evaluate on the first n test images only')
    .option('--overwrite-input', 'allow the output to replace an input file')
    .option('--json', 'print the report as JSON')
    .action(async (files: string[], o: DistillCliOptions) => {
      const steps = parseNumber(o.steps, '--steps', { integer: true, min: 1 });
      const batch = parseNumber(o.batch, '--batch', { integer: true, min: 1 });
      const lr = o.lr === 'auto' ? 'auto' : parseNumber(o.lr, '--lr', { min: 0 });
      if (!(OPTIMIZERS as readonly string[]).includes(o.optimizer)) throw new GhnError('usage', `--optimizer must be ${OPTIMIZERS.join(', ')}, got "${o.optimizer}"`);
      const seed = parseNumber(o.seed, '--seed', { integer: true, min: 0 });
      const refitImages = parseNumber(o.headRefit, '--head-refit', { integer: true, min: 0 });
      if (refitImages === 1) throw new GhnError('usage', '--head-refit needs at least 2 images (0: off)');
      const testLimit = o.testLimit === undefined ? undefined : parseNumber(o.testLimit, '--test-limit', { integer: true, min: 1 });
      requireFiles([...files, o.student]);
      if ([...files, o.student].some((f) => path.resolve(f) === path.resolve(o.output)) && !o.overwriteInput) {
        throw new GhnError('usage', `refusing to overwrite the input ${o.output} (pass --overwrite-input to allow it)`);
      }
      checkWritableOutput(o.output, '-o');
      const [{ distill, DatasetSplits }, { resolveDataset }, { progressBar }, { writeFileAtomic }] = await Promise.all([
        import('../api/ensemble.js'), import('../data/sources.js'), import('./progress.js'), import('../onnx/index.js'),
      ]);
      const splits = new DatasetSplits(resolveDataset(o.data, o.dataDir), testLimit);
      const bar = progressBar(steps, 'distill', 'loss {loss} acc {acc} {speed} steps/s');
      let result;
      try {
        result = await distill(files.map((f) => ({ name: f, model: f })), { name: o.student, model: o.student }, {
          splits, steps, batch, lr, seed, optimizer: o.optimizer as (typeof OPTIMIZERS)[number],
          ...(refitImages > 0 ? { headRefit: { images: refitImages } } : {}),
          onProgress: (p) => bar.update(p.step, { loss: p.loss.toFixed(3), acc: p.acc.toFixed(2), speed: p.stepsPerSec.toFixed(1) }),
        });
      } finally {
        bar.stop();
      }
      writeFileAtomic(o.output, result.onnx);
      const r = result.report;
      if (o.json) {
        process.stdout.write(JSON.stringify({ output: o.output, ...r }, null, 2) + '\n');
        return;
      }
      process.stdout.write(
        `${o.output}: ${o.student} distilled from ${files.length} models in ${r.steps} steps of ${r.optimizer} lr ${r.lr} (${r.msPerStep.toFixed(0)} ms/step), final loss ${r.finalLoss.toFixed(3)}\n` +
          `  test accuracy on ${r.testImages} images of ${r.data}: student ${pct(r.student)} (from ${pct(r.studentStart)}), ` +
          `ensemble ${pct(r.ensemble)}, mean single model ${pct(r.meanMember)} (disagreement ${pct(r.disagreement)})\n` +
          (r.headRefit ? `  classifier refitted in closed form on ${r.headRefit.images} labeled training images (${r.headRefit.kept === 'fitted' ? 'fit kept' : 'trained head kept: the fit was worse on those images'})\n` : ''),
      );
    });
}
