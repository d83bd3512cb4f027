/**
 * Evaluates a saved GHN on the test split of architectures:
 * `npx tsx scripts/eval-ghn.ts [--model models/ghn-fmnist.ghn] [--archs 40] [--finetune-archs 10]`.
 * Writes <model without .ghn>.metrics.json and stores the metrics in the model's header.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadFashionMnist } from '../src/data/fashion-mnist.js';
import { initBackend } from '../src/engine/backend.js';
import { evaluateGhn } from '../src/meta-training/evaluate.js';
import { loadGhn, saveGhn } from '../src/ghn/serialize.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/ghn-fmnist.ghn' },
    archs: { type: 'string', default: '40' },
    'finetune-archs': { type: 'string', default: '10' },
    images: { type: 'string', default: '2000' },
  },
});
await initBackend();
const path = values.model!;
const { model, header, hash } = loadGhn(path);
console.log(`model ${path} sha256 ${hash}`);
const test = loadFashionMnist({ split: 'test' });
const train = loadFashionMnist({ split: 'train', limit: 55000 });
const evaluation = await evaluateGhn(model, {
  data: test, trainData: train, archs: Number(values.archs), finetuneArchs: Number(values['finetune-archs']),
  images: Number(values.images), onProgress: (m) => console.log(m),
});
const savedMetrics = header.metrics as Record<string, unknown> | undefined;
const recipe = header.recipe as { stepsDone?: number; metaBatch?: number; images?: number; tails?: unknown } | undefined;
// A checkpoint's header carries { lastVal }; a finished train-ghn run's carries { training }.
const training = savedMetrics?.training ?? {
  stepsDone: recipe?.stepsDone, metaBatch: recipe?.metaBatch, images: recipe?.images, tails: recipe?.tails, lastVal: savedMetrics?.lastVal,
};
const metrics = { training, ...evaluation };
writeFileSync(path.replace(/\.ghn$/, '.metrics.json'), JSON.stringify(metrics, null, 2));
const newHash = saveGhn(path, model, { recipe: header.recipe, metrics });
console.log(`mean no-training accuracy ${(evaluation.meanPredicted * 100).toFixed(1)}% (default init ${(evaluation.meanDefault * 100).toFixed(1)}%); saved ${path} sha256 ${newHash}`);
