/** `ghn train` and `ghn eval`: meta-training and evaluation of the GHN, thin over src/api/ghn-training. */
import type { Command } from 'commander';
import { DEFAULT_GHN_PATH } from '../api/predict-options.js';
import type { GhnEvaluation } from '../meta-training/evaluate.js';
import { DEFAULT_RECIPE } from '../meta-training/recipe.js';
import { DATA_HELP } from '../data/names.js';
import { GhnError } from '../errors.js';
import { table } from './format.js';
import { parseNumber } from './options.js';
import { registerRedisWorker } from './redis-worker.js';

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function renderEvaluation(e: GhnEvaluation, data = 'Fashion-MNIST'): string {
  const rows: (string | number)[][] = [['family', 'archs', 'predicted', 'default init']];
  for (const [family, f] of Object.entries(e.perFamily)) rows.push([family, f.archs, pct(f.predicted), pct(f.defaultInit)]);
  rows.push(['mean', e.archs, pct(e.meanPredicted), pct(e.meanDefault)]);
  const lines = [`test-split architectures, ${data} test images (${e.images} per architecture), no training, BN on batch statistics:`, table(rows)];
  if (e.finetune) {
    const f = e.finetune;
    lines.push('', `fine-tuning (${f.archs} architectures, AdamW lr 1e-3, batch 64): ` +
      `${f.predictedSteps} steps from predicted ${pct(f.predicted)}; default init ${f.predictedSteps} steps ${pct(f.defaultSameSteps)}, ` +
      `${f.defaultSteps} steps ${pct(f.defaultMoreSteps)}`);
  }
  if (e.skipped.length) lines.push('', `skipped: ${e.skipped.map((s) => `${s.id} (${s.reason})`).join('; ')}`);
  lines.push(`prediction: ${e.msPerPrediction.toFixed(0)} ms per architecture`);
  return lines.join('\n');
}

export function registerGhnCommands(program: Command): void {
  program
    .command('train')
    .description('meta-train a GHN on a dataset (default Fashion-MNIST) over the architecture space generated for its input shape and classes')
    .option('--out <prefix>', 'writes <prefix>.ghn, <prefix>.log.jsonl.gz, <prefix>.metrics.json', 'models/ghn-fmnist')
    .option('--steps <n>', 'meta-steps', String(DEFAULT_RECIPE.steps))
    .option('--meta-batch <n>', 'architectures per meta-step', String(DEFAULT_RECIPE.metaBatch))
    .option('--images <n>', 'images per architecture per step', String(DEFAULT_RECIPE.images))
    .option('--pool <n>', 'train-split architectures the steps draw from', String(DEFAULT_RECIPE.poolSize))
    .option('--minutes <m>', 'stop after this many minutes (checkpointed; continue with --resume)')
    .option('--resume', 'continue from <prefix>.ghn and its optimizer state')
    .option('--replay <ghn>', 'train again, from nothing, the run recorded in <ghn> (base schedule and every extension; resumable: run it again)')
    .option('--workers <n>', 'processes sharing each meta-step, one core each (the same run, bit for bit, as with 1)', '1')
    .option('--data <name|dir>', `training data: ${DATA_HELP}`, 'fashion-mnist')
    .option('--data-dir <dir>', 'folder of a dataset named by --data (default for fashion-mnist: /usr/share/datasets/fashion-mnist)')
    .option('--eval-archs <n>', 'test-split architectures to evaluate at the end (0: none)', '30')
    .option('--diversity <weight>', 'for a GHN with a latent input: train two latent samples per architecture, loss = mean cross-entropy − weight × their Jensen–Shannon divergence')
    .option('--train-only <prefixes>', 'train only the GHN variables whose names start with one of these (comma-separated, e.g. latent.)')
    .option('--redis <url>', 'coordinate the run over Redis: each step\'s architectures become jobs for `ghn worker` processes on any machine (the same run, bit for bit)')
    .option('--run <name>', 'with --redis: the run\'s name, which workers join', 'ghn')
    .option('--job-lock <seconds>', 'with --redis: a worker silent this long loses its job to another', '30')
    .action(async (o: Record<string, string | boolean | undefined>, command: Command) => {
      // A resumed run keeps its recorded meta-batch, images and pool unless they are given again.
      const given = (name: string) => !(o.resume && command.getOptionValueSource(name) === 'default');
      if (o.redis !== undefined && o.workers !== '1') throw new GhnError('usage', '--redis and --workers exclude each other: start `ghn worker` processes instead');
      // Connected before any data is loaded, so a wrong URL or password fails at once.
      const redis = o.redis === undefined ? undefined : await (await import('../meta-training/redis-coordinator.js')).RedisCoordinator.open({
        url: String(o.redis), run: String(o.run), lockSeconds: parseNumber(String(o.jobLock), '--job-lock', { min: 0.5 }),
      });
      // The training code and the progress bar load only for this command.
      const [{ trainAndSave, recordedRecipe }, { progressBar }] = await Promise.all([import('../api/ghn-training.js'), import('./progress.js')]);
      const replay = o.replay === undefined ? undefined : recordedRecipe(String(o.replay));
      const steps = replay?.steps ?? parseNumber(String(o.steps), '--steps', { integer: true, min: 1 });
      const bar = progressBar(steps, 'train', 'loss {loss} acc {acc} {speed} steps/min {diversity} {val}');
      const result = await trainAndSave({
        out: String(o.out),
        recipe: {
          steps,
          ...(given('metaBatch') ? { metaBatch: parseNumber(String(o.metaBatch), '--meta-batch', { integer: true, min: 1 }) } : {}),
          ...(given('images') ? { images: parseNumber(String(o.images), '--images', { integer: true, min: 1 }) } : {}),
          ...(given('pool') ? { poolSize: parseNumber(String(o.pool), '--pool', { integer: true, min: 1 }) } : {}),
          ...(o.diversity === undefined ? {} : { diversity: parseNumber(String(o.diversity), '--diversity', { min: 0 }) }),
          ...(o.trainOnly === undefined ? {} : { trainVariables: String(o.trainOnly).split(',').map((p) => p.trim()).filter(Boolean) }),
        },
        minutes: o.minutes === undefined ? undefined : parseNumber(String(o.minutes), '--minutes', { min: 0 }),
        resume: Boolean(o.resume),
        replay,
        workers: parseNumber(String(o.workers), '--workers', { integer: true, min: 1 }),
        distribute: redis?.distribute,
        data: String(o.data),
        dataDir: o.dataDir as string | undefined,
        evalArchs: parseNumber(String(o.evalArchs), '--eval-archs', { integer: true, min: 0 }),
        onProgress: (p) => bar.update(p.step, {
          loss: p.loss.toFixed(3), acc: p.acc.toFixed(2), speed: p.stepsPerMin.toFixed(1),
          diversity: p.disagreement === undefined ? '' : `js ${p.disagreement.toFixed(4)}`,
          val: p.val ? `val acc ${p.val.acc.toFixed(3)}` : '',
        }),
        onEvalProgress: (m) => process.stderr.write(`${m}\n`),
      }).finally(() => bar.stop());
      const d = result.dataset;
      process.stdout.write(`${o.out}.ghn: ${result.training.stepsDone} meta-steps at ${result.training.stepsPerMin.toFixed(1)}/min, sha256 ${result.hash}\n` +
        `  trained on ${d.name} (${d.trainImages} images, ${d.shape.join('×')}, ${d.classes} classes), normalization mean [${d.normalization.mean.map((m) => m.toFixed(4))}] std [${d.normalization.std.map((m) => m.toFixed(4))}]\n`);
      // The curves of the whole run (resumes included), beside the GHN.
      const plot = (await import('./training-plot.js')).writeTrainingPlot(String(o.out));
      if (plot) process.stdout.write(`  loss and accuracy plot: ${plot}\n`);
      if (result.evaluation) process.stdout.write(renderEvaluation(result.evaluation, d.name) + '\n');
    });

  program
    .command('eval')
    .description('accuracy of predicted parameters on test-split architectures, with no training and after fine-tuning')
    .option('--ghn <file>', 'GHN to evaluate', DEFAULT_GHN_PATH)
    .option('--archs <n>', 'test-split architectures', '30')
    .option('--images <n>', 'test images per architecture', '2000')
    .option('--finetune-archs <n>', 'of those, how many to fine-tune (25 steps from predicted vs 25/100 from default init)', '5')
    .option('--data <name|dir>', `test data (default: the dataset the GHN was trained on): ${DATA_HELP}`)
    .option('--data-dir <dir>', 'folder of a dataset named by --data (default for fashion-mnist: /usr/share/datasets/fashion-mnist)')
    .option('--json', 'print the evaluation as JSON')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const [{ evaluateSavedGhn }, { progressBar }] = await Promise.all([import('../api/ghn-training.js'), import('./progress.js')]);
      const archs = parseNumber(String(o.archs), '--archs', { integer: true, min: 1 });
      // One progress message per architecture (evaluated or skipped): the bar counts them.
      const bar = o.json ? undefined : progressBar(archs, 'eval', '{last}');
      let evaluated = 0;
      const { hash, evaluation, dataset } = await evaluateSavedGhn(String(o.ghn), {
        archs,
        images: parseNumber(String(o.images), '--images', { integer: true, min: 1 }),
        finetuneArchs: parseNumber(String(o.finetuneArchs), '--finetune-archs', { integer: true, min: 0 }),
        data: o.data as string | undefined,
        dataDir: o.dataDir as string | undefined,
        onProgress: bar && ((m) => bar.update(++evaluated, { last: m })),
      }).finally(() => bar?.stop());
      if (o.json) process.stdout.write(JSON.stringify({ ghn: o.ghn, sha256: hash, data: dataset, ...evaluation }, null, 2) + '\n');
      else process.stdout.write(`${o.ghn} (sha256 ${hash.slice(0, 12)}…)\n${renderEvaluation(evaluation, dataset.replace(/\/test$/, ''))}\n`);
    });

  registerRedisWorker(program);
}
