import type { Command } from 'commander';
import { DATA_HELP } from '../data/names.js';
import { requireFiles } from './distill.js';
import { parseNumber } from './options.js';
import { GhnError } from '../errors.js';
import { DEFAULT_HEAD_REFIT_IMAGES } from '../fine-tuning/defaults.js';

interface EnsembleCliOptions {
  data: string;
  dataDir?: string;
  testLimit?: string;
  finetuneSteps: string;
  headRefit: string;
  json?: boolean;
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

export function registerEnsemble(program: Command): void {
  program
    .command('ensemble')
    .description('test accuracy of each model and of their ensemble (mean softmax), and how often two of them disagree')
    .argument('<files...>', 'ONNX files (e.g. the samples of ghn predict --samples)')
    .option('--data <name|dir>', `dataset: ${DATA_HELP}`, 'fashion-mnist')
    .option('--data-dir <dir>', 'folder of a dataset named by --data')
    .option('--test-limit <n>', 'evaluate on the first n test images only')
    .option('--finetune-steps <n>', 'fine-tune each model n steps first (AdamW, lr 1e-3, batch 64; model i with the batch order of seed i)', '0')
    .option('--head-refit <images>', 'with --finetune-steps: refit each classifier in closed form on this many training images after its fine-tuning (as ghn finetune does); 0: off', String(DEFAULT_HEAD_REFIT_IMAGES))
    .option('--json', 'print the report as JSON')
    .action(async (files: string[], o: EnsembleCliOptions) => {
      const finetuneSteps = parseNumber(o.finetuneSteps, '--finetune-steps', { integer: true, min: 0 });
      const refitImages = parseNumber(o.headRefit, '--head-refit', { integer: true, min: 0 });
      if (refitImages === 1) throw new GhnError('usage', '--head-refit needs at least 2 images (0: off)');
      const testLimit = o.testLimit === undefined ? undefined : parseNumber(o.testLimit, '--test-limit', { integer: true, min: 1 });
      requireFiles(files);
      const [{ evaluateEnsemble, DatasetSplits }, { resolveDataset }, { progressBar }] = await Promise.all([
        import('../api/ensemble.js'), import('../data/sources.js'), import('./progress.js'),
      ]);
      const splits = new DatasetSplits(resolveDataset(o.data, o.dataDir), testLimit);
      let bar: ReturnType<typeof progressBar> | undefined;
      let current = -1;
      let report;
      try {
        report = await evaluateEnsemble(files.map((f) => ({ name: f, model: f })), {
          splits, finetuneSteps, ...(refitImages > 0 ? { headRefit: { images: refitImages } } : {}),
          onFinetuneProgress: (member, p) => {
            if (member !== current) {
              bar?.stop();
              bar = progressBar(p.steps, `finetune ${member + 1}/${files.length}`, 'loss {loss} acc {acc}');
              current = member;
            }
            bar!.update(p.step, { loss: p.loss.toFixed(3), acc: p.acc.toFixed(2) });
          },
        });
      } finally {
        bar?.stop();
      }
      if (o.json) {
        process.stdout.write(JSON.stringify(report, null, 2) + '\n');
        return;
      }
      const width = Math.max(...report.names.map((n) => n.length));
      process.stdout.write(
        `${report.names.length} models on ${report.testImages} images of ${report.data}` +
          (report.finetuneSteps ? `, each after ${report.finetuneSteps} fine-tuning steps` : '') + '\n' +
          report.names.map((n, i) => `  ${n.padEnd(width)}  ${pct(report.members[i]!)}\n`).join('') +
          `  mean member ${pct(report.meanMember)}, ensemble (mean softmax) ${pct(report.ensemble)}, mean pairwise disagreement ${pct(report.disagreement)}\n`,
      );
    });
}
