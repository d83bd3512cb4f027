/**
 * Probe (issue 18): fine-tuning recipes from the default prediction and from PyTorch's default
 * init, side by side, on real exports of the benchmark. Predictions are written once to --cache
 * and reused, so recipes are compared on the same predicted files.
 *
 *   npx tsx scripts/probe-finetune-recipes.ts --models lenet5,vgg_plain --steps 25,100,300 \
 *     --recipe pred:adamw:1e-3 --recipe pred:adamw:1e-3:refit=8192 --recipe default:adamw:1e-3 [--test-limit 2000]
 *
 * A recipe is START:OPTIMIZER:LR[:refit=IMAGES][:every=K]; START is pred or default. One line of
 * JSON per (model, recipe) goes to stdout: test accuracy (tfjs executor, BatchNorm re-estimated)
 * after each step count.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { finetuneModel } from '../src/api/finetune.js';
import { predict } from '../src/api/predict.js';
import { FASHION_MNIST_NORMALIZATION, loadFashionMnist, readNormalization } from '../src/data/index.js';
import { initBackend } from '../src/engine/backend.js';
import type { HeadRefitOptions } from '../src/fine-tuning/finetune.js';
import type { OptimizerKind } from '../src/fine-tuning/optimizers.js';
import { decodeModel } from '../src/onnx/index.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: 'fixtures/benchmark' },
    models: { type: 'string', default: 'lenet5' },
    steps: { type: 'string', default: '25,100' },
    recipe: { type: 'string', multiple: true, default: ['pred:adamw:1e-3'] },
    'test-limit': { type: 'string', default: '2000' },
    cache: { type: 'string', default: '/tmp/ghn-finetune-probe' },
  },
});

interface Recipe { label: string; start: 'pred' | 'default'; optimizer: OptimizerKind; lr: number; headRefit?: HeadRefitOptions }

function parseRecipe(text: string): Recipe {
  const [start, optimizer, lr, ...rest] = text.split(':');
  if ((start !== 'pred' && start !== 'default') || !optimizer || !(Number(lr) > 0)) throw new Error(`bad recipe ${text}`);
  const opts = Object.fromEntries(rest.map((r) => r.split('=') as [string, string]));
  const images = opts.refit ? Number(opts.refit) : 0;
  return {
    label: text, start, optimizer: optimizer as OptimizerKind, lr: Number(lr),
    ...(images ? { headRefit: { images, ...(opts.every ? { every: Number(opts.every) } : {}) } } : {}),
  };
}

async function main(): Promise<void> {
  await initBackend();
  const steps = values.steps!.split(',').map(Number);
  const recipes = values.recipe!.map(parseRecipe);
  const testLimit = Number(values['test-limit']);
  fs.mkdirSync(values.cache!, { recursive: true });
  const train = loadFashionMnist({ split: 'train', normalization: FASHION_MNIST_NORMALIZATION });
  const test = loadFashionMnist({ split: 'test', normalization: FASHION_MNIST_NORMALIZATION, limit: testLimit });
  for (const name of values.models!.split(',')) {
    const file = path.join(values.dir!, `${name}.preserve13.onnx`);
    const cached = path.join(values.cache!, `${name}.pred.onnx`);
    if (!fs.existsSync(cached)) fs.writeFileSync(cached, (await predict(file)).onnx);
    const normalization = readNormalization(decodeModel(fs.readFileSync(cached)).proto);
    if (normalization && JSON.stringify(normalization) !== JSON.stringify(FASHION_MNIST_NORMALIZATION)) throw new Error(`${name}: another normalization`);
    for (const r of recipes) {
      const t0 = performance.now();
      const { report } = await finetuneModel(r.start === 'pred' ? cached : file, {
        train, test, steps: Math.max(...steps), evaluateAt: steps, batch: 64, seed: 0, optimizer: r.optimizer, lr: r.lr,
        ...(r.headRefit ? { headRefit: r.headRefit } : {}),
      });
      const round = (x: number) => Math.round(1000 * x) / 10;
      const at = Object.fromEntries(report.checkpoints.map((c) => [c.step, round(c.testAccuracy)]));
      const trainedHead = r.headRefit ? Object.fromEntries(report.checkpoints.map((c) => [c.step, round(c.trainedHeadAccuracy!)])) : undefined;
      console.log(JSON.stringify({ model: name, recipe: r.label, at, trainedHead, ort: report.ortAccuracy, s: Math.round((performance.now() - t0) / 1000), refit: report.headRefit?.kept }));
    }
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
