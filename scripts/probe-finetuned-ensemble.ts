/**
 * Probe (issue 19): an ensemble of `ghn predict --samples` files after N fine-tuning steps of each
 * member, for several recipes side by side: the batch order the same for every member or its own
 * (seed = member index), the head refitted in closed form after training or not.
 *
 *   npx tsx scripts/probe-finetuned-ensemble.ts DIR/*.onnx --steps 100 \
 *     --recipe same --recipe same:refit=8192 --recipe distinct:refit=8192 [--test-limit 2000]
 *
 * A recipe is SEEDS[:refit=IMAGES] (AdamW, lr 1e-3, batch 64). One line of JSON per recipe.
 */
import { parseArgs } from 'node:util';
import { DatasetSplits, evaluateEnsemble, recordedNormalization } from '../src/api/ensemble.js';
import { finetuneModel } from '../src/api/finetune.js';
import { resolveDataset } from '../src/data/sources.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    steps: { type: 'string', default: '100' },
    recipe: { type: 'string', multiple: true, default: ['same'] },
    'test-limit': { type: 'string', default: '2000' },
  },
});

async function main(): Promise<void> {
  const splits = new DatasetSplits(resolveDataset('fashion-mnist'), Number(values['test-limit']));
  const steps = Number(values.steps);
  for (const text of values.recipe!) {
    const [seeds, ...rest] = text.split(':');
    const opts = Object.fromEntries(rest.map((r) => r.split('=') as [string, string]));
    const t0 = performance.now();
    const tuned = [];
    for (const [i, f] of positionals.entries()) {
      const train = splits.get('train', recordedNormalization(f));
      const { onnx } = await finetuneModel(f, {
        train, steps, batch: 64, lr: 1e-3, optimizer: 'adamw', seed: seeds === 'distinct' ? i : 0,
        ...(opts.refit ? { headRefit: { images: Number(opts.refit) } } : {}),
      });
      tuned.push({ name: f, model: onnx });
    }
    const report = await evaluateEnsemble(tuned, { splits });
    const r = (x: number) => Math.round(1000 * x) / 10;
    console.log(JSON.stringify({
      recipe: text, steps, members: report.members.map(r), meanMember: r(report.meanMember), ensemble: r(report.ensemble),
      gain: r(report.ensemble - report.meanMember), disagreement: r(report.disagreement), s: Math.round((performance.now() - t0) / 1000),
    }));
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
