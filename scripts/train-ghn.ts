/**
 * Trains the shipped GHN: `npx tsx scripts/train-ghn.ts [--minutes M] [--steps N] [--resume] [--out models/ghn-fmnist]`.
 * Writes <out>.ghn (checkpointed, with <out>.ghn.opt: the AdamW state a resume needs),
 * <out>.log.jsonl.gz (one JSON line per step, appended as gzip members; a legacy plain <out>.log.jsonl
 * is converted on the first append; src/meta-training/training-log.ts) and, at the end, evaluates on the test split of
 * architectures into <out>.metrics.json (unless --skip-eval).
 *
 * `--resume --steps N` with N beyond the saved step count extends the run: a new schedule tail
 * starts at the saved step (warm-up over --warmup steps, default 20, to --lr, default the recipe's
 * peak, then cosine to 0 at N; an unfinished schedule continues from its current lr instead), and
 * --meta-batch / --images / --pool, when given, apply from there on. The tails are recorded in the recipe
 * stored in the .ghn header (`recipe.tails`). Without --steps a resume finishes the saved schedule.
 *
 * `--replay models/ghn-fmnist.ghn --out <prefix>` trains that model's recorded run again from nothing:
 * the base schedule, then every tail, each stopped where the next began (src/meta-training/replay.ts);
 * resumable by running the same command again.
 *
 * `--stop-at N` stops (checkpointed) after step N, before the schedule's end (side-by-side runs).
 *
 * `--workers 2` shares each step's architectures between this process and a child (one core each;
 * src/meta-training/gradient-workers.ts): the same run bit for bit, faster when a core is free (figures in
 * the README).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadFashionMnist } from '../src/data/fashion-mnist.js';
import { initBackend } from '../src/engine/backend.js';
import { recordedRecipe, trainValidationSplit } from '../src/api/ghn-training.js';
import { evaluateGhn } from '../src/meta-training/evaluate.js';
import { replayTraining } from '../src/meta-training/replay.js';
import { saveGhn } from '../src/ghn/serialize.js';
import { DEFAULT_RECIPE, trainGhn, type TrainProgress } from '../src/meta-training/train.js';
import { trainingLogPath } from '../src/meta-training/training-log.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '40' },
    steps: { type: 'string' },
    'meta-batch': { type: 'string' },
    images: { type: 'string' },
    pool: { type: 'string' },
    lr: { type: 'string' },
    warmup: { type: 'string' },
    'checkpoint-minutes': { type: 'string', default: '3' },
    'val-every': { type: 'string', default: '100' },
    out: { type: 'string', default: 'models/ghn-fmnist' },
    resume: { type: 'boolean', default: false },
    replay: { type: 'string' },
    workers: { type: 'string', default: '1' },
    'stop-at': { type: 'string' },
    'eval-archs': { type: 'string', default: '30' },
    'skip-eval': { type: 'boolean', default: false },
  },
});
await initBackend();
const full = loadFashionMnist({ split: 'train' });
const { train, val } = trainValidationSplit(full);
const out = values.out!;
const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
const given = { steps: num(values.steps), metaBatch: num(values['meta-batch']), images: num(values.images), poolSize: num(values.pool) };
const run = {
  data: train,
  valData: val,
  valEvery: Number(values['val-every']),
  checkpointPath: `${out}.ghn`,
  checkpointEvery: 1000000,
  checkpointMinutes: Number(values['checkpoint-minutes']),
  logPath: trainingLogPath(out),
  maxMinutes: Number(values.minutes),
  workers: Number(values.workers),
  onProgress: (p: TrainProgress) => {
    if (p.step % 10 === 0 || p.val) {
      console.log(`step ${p.step}/${p.steps} loss ${p.loss.toFixed(3)} acc ${p.acc.toFixed(3)} lr ${p.lr.toExponential(2)} |g| ${p.gradNorm.toFixed(2)} ${p.stepsPerMin.toFixed(1)} steps/min (wall) cpu ${p.cpuSec?.toFixed(0)} s${p.val ? ` val acc ${p.val.acc.toFixed(3)} loss ${p.val.loss.toFixed(3)}` : ''}`);
    }
  },
};
const result = values.replay
  ? await replayTraining(recordedRecipe(values.replay), run)
  : await trainGhn({
    ...run,
    recipe: values.resume
      ? Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined))
      : { ...given, steps: given.steps ?? DEFAULT_RECIPE.steps, metaBatch: given.metaBatch ?? DEFAULT_RECIPE.metaBatch,
          images: given.images ?? DEFAULT_RECIPE.images, lr: num(values.lr) ?? DEFAULT_RECIPE.lr,
          warmupSteps: num(values.warmup) ?? DEFAULT_RECIPE.warmupSteps },
    extend: { lr: num(values.lr), warmupSteps: num(values.warmup) },
    resume: values.resume,
    stopAtStep: num(values['stop-at']),
  });
console.log(`trained ${result.stepsDone} steps at ${result.stepsPerMin.toFixed(1)} steps/min`);
if (!values['skip-eval']) {
  const test = loadFashionMnist({ split: 'test' });
  const metrics = await evaluateGhn(result.model, { data: test, trainData: train, archs: Number(values['eval-archs']),
    onProgress: (m) => console.log(m) });
  const training = { stepsDone: result.stepsDone, stepsPerMin: result.stepsPerMin, lastVal: result.lastVal };
  writeFileSync(`${out}.metrics.json`, JSON.stringify({ training, ...metrics }, null, 2));
  const hash = saveGhn(`${out}.ghn`, result.model, { recipe: { ...result.recipe, stepsDone: result.stepsDone }, metrics: { training, ...metrics } });
  console.log(`saved ${out}.ghn sha256 ${hash}`);
}
