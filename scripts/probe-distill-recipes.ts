/**
 * Probe (issue 19): distillation recipes for one ensemble of `ghn predict --samples` files, side
 * by side: the student (default: the first file) trained on the members' mean softmax.
 *
 *   npx tsx scripts/probe-distill-recipes.ts DIR/*.onnx --steps 300 \
 *     --recipe adamw:1e-3 --recipe adamw:1e-3:refit=8192 --recipe lamb:1e-3:refit=8192 [--test-limit 2000]
 *
 * A recipe is OPTIMIZER:LR[:refit=IMAGES][:every=K]. One line of JSON per recipe on stdout.
 */
import { parseArgs } from 'node:util';
import { DatasetSplits, distill } from '../src/api/ensemble.js';
import { resolveDataset } from '../src/data/sources.js';
import type { HeadRefitOptions } from '../src/fine-tuning/finetune.js';
import type { OptimizerKind } from '../src/fine-tuning/optimizers.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    steps: { type: 'string', default: '300' },
    recipe: { type: 'string', multiple: true, default: ['adamw:1e-3'] },
    student: { type: 'string' },
    'test-limit': { type: 'string', default: '2000' },
  },
});

async function main(): Promise<void> {
  const splits = new DatasetSplits(resolveDataset('fashion-mnist'), Number(values['test-limit']));
  const student = values.student ?? positionals[0]!;
  for (const text of values.recipe!) {
    const [optimizer, lr, ...rest] = text.split(':');
    const opts = Object.fromEntries(rest.map((r) => r.split('=') as [string, string]));
    const headRefit: HeadRefitOptions | undefined = opts.refit ? { images: Number(opts.refit), ...(opts.every ? { every: Number(opts.every) } : {}) } : undefined;
    const t0 = performance.now();
    const { report } = await distill(positionals.map((f) => ({ name: f, model: f })), { name: student, model: student }, {
      splits, steps: Number(values.steps), optimizer: optimizer as OptimizerKind, lr: Number(lr), ...(headRefit ? { headRefit } : {}),
    });
    const r = (x: number) => Math.round(1000 * x) / 10;
    console.log(JSON.stringify({
      recipe: text, steps: report.steps, student: r(report.student), start: r(report.studentStart), ensemble: r(report.ensemble),
      meanMember: r(report.meanMember), gap: r(report.ensemble - report.student), s: Math.round((performance.now() - t0) / 1000),
    }));
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
