import path from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_PREDICT_OPTIONS } from '../api/predict-options.js';
import { GhnError } from '../errors.js';
import { formatCount } from './format.js';
import { parseNumber } from './options.js';

interface PredictCliOptions {
  output?: string;
  ghn?: string;
  seed: string;
  noise: string;
  orth?: boolean;
  fromLayer: string;
  calibrate: boolean;
  calibrationData: string;
  fitHead: boolean;
  mix: string;
  validate: boolean;
  overwriteInput?: boolean;
  json?: boolean;
  samples?: string;
  sampleMix?: string;
}

/** `model.onnx` → `model.ghn.onnx` beside it. */
export function defaultOutputPath(input: string): string {
  const { dir, name, ext } = path.parse(input);
  return path.join(dir, `${ext === '.onnx' ? name : name + ext}.ghn.onnx`);
}

export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description('predict every parameter tensor with the GHN and write the model back as ONNX')
    .argument('<model>', 'ONNX file')
    .option('-o, --output <file>', 'output file (default: <model>.ghn.onnx beside the input); with --samples, the directory of the samples (default: the input\'s)')
    .option('--samples <k>', 'write k initializations <model>.<i>.onnx (i = 0…k−1), each mixing a default-init draw of seed --seed + i at the chosen share (one GHN forward pass)')
    .option('--sample-mix <t>', 'with --samples: default-init share of the samples when the prediction alone (t = 0) is chosen', undefined)
    .option('--ghn <file>', 'GHN to use (default: the shipped models/ghn-fmnist.ghn)')
    .option('--seed <n>', 'seed of the post-processing noise and of the default-init draw (sample i: seed + i)', String(DEFAULT_PREDICT_OPTIONS.seed))
    .option('--noise <beta>', 'noise scale β of the diversity post-processing (Knyazev et al. 2022 use 3e-5; default 0: it did not change fine-tuning)', String(DEFAULT_PREDICT_OPTIONS.noise))
    .option('--orth', 'orthogonalize the predicted weights (QR; off by default: it destroys the predicted function)')
    .option('--from-layer <k>', 'post-process weights from the k-th weight layer on', String(DEFAULT_PREDICT_OPTIONS.fromLayer))
    .option('--no-calibrate', 'keep the GHN\'s output scales and the file\'s BatchNorm statistics (no calibration pass)')
    .option('--calibration-data <dir>', 'images for the calibration pass: auto (the GHN\'s training images if on this machine), noise, or a dataset folder (IDX files, CIFAR-10 binary batches, or images in one subfolder per class)', String(DEFAULT_PREDICT_OPTIONS.calibrationData))
    .option('--no-fit-head', 'keep the GHN\'s classifier (default: a Linear classifier is refitted in closed form on 8,192 labeled calibration images)')
    .option('--mix <t>', 'share t of PyTorch\'s default init mixed into the prediction, (1−t)·GHN + t·default; auto: t ∈ {0, 0.5} chosen by the fitted classifier\'s held-out accuracy (0 without labeled images)', String(DEFAULT_PREDICT_OPTIONS.mix))
    .option('--no-validate', 'skip the onnxruntime check of the written model')
    .option('--overwrite-input', 'allow the output to replace the input file')
    .option('--json', 'print the report as JSON')
    .action(async (file: string, o: PredictCliOptions) => {
      if (o.samples !== undefined) return predictSamplesCommand(file, o);
      if (o.sampleMix !== undefined) throw new GhnError('usage', '--sample-mix needs --samples');
      const output = o.output ?? defaultOutputPath(file);
      if (path.resolve(output) === path.resolve(file) && !o.overwriteInput) {
        throw new GhnError('usage', `refusing to overwrite the input ${file} (pass --overwrite-input to allow it)`);
      }
      // The wasm backend's start-up (a chain of file reads, a compile and a module import, each
      // waiting for a turn of the event loop) runs while the prediction API's imports load, not
      // after the model's graph is built; predict's own call gets this one's result (or its error).
      import('../engine/backend.js').then((b) => b.initBackend(undefined, { gradients: false })).catch(() => undefined);
      const { predict } = await import('../api/predict.js'); // tfjs and onnxruntime load only for this command
      const { report } = await predict(file, { ...predictionOptions(o), output });
      const peakRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
      if (o.json) {
        process.stdout.write(JSON.stringify({ output, ...report, peakRssMiB }, null, 2) + '\n');
        return;
      }
      const t = report.timings;
      const total = Object.values(t).reduce((a, b) => a + b, 0);
      const cpu = Object.values(report.cpuTimings).reduce((a, b) => a + b, 0);
      process.stdout.write(
        `${output}${report.dataFile ? ` (tensors in ${report.dataFile})` : ''}: predicted ${formatCount(report.parameters)} parameters in ${report.tensors} tensors` +
          (report.splitTensors ? ` (${report.splitTensors} shared tensors split)` : '') + '\n' +
          `  load ${t.load.toFixed(0)} ms, graph ${t.graph.toFixed(0)} ms, GHN ${t.ghn.toFixed(0)} ms, ` +
          `post-processing ${t.postprocess.toFixed(0)} ms, calibration ${t.calibrate.toFixed(0)} ms, classifier fit ${t['fit-head'].toFixed(0)} ms, write ${t.write.toFixed(0)} ms, ` +
          `onnxruntime check ${t.validate.toFixed(0)} ms (total ${total.toFixed(0)} ms, CPU ${cpu.toFixed(0)} ms; backend ${report.backend}; peak memory ${peakRssMiB} MiB)\n` +
          (report.head
            ? `  classifier ${report.head.op}: ${report.head.kept === 'fitted' ? 'fitted' : 'kept as predicted'} on ${report.head.images} labeled images of ${report.head.data} ` +
              `(accuracy on them ${(100 * report.head.fitAccuracy.predicted).toFixed(1)}% predicted → ${(100 * report.head.fitAccuracy.fitted).toFixed(1)}% fitted)\n`
            : '') +
          (report.mix.chosenBy === 'held-out'
            ? `  mix with PyTorch's default init: t = ${report.mix.t} (held-out accuracy ${report.mix.candidates!.map((c) => `t ${c.t}: ${(100 * c.heldOut).toFixed(1)}%`).join(', ')})\n`
            : report.mix.t ? `  mix with PyTorch's default init: t = ${report.mix.t}\n` : '') +
          (report.validation ? `  onnxruntime: output ${JSON.stringify(report.validation.outputShape)}, std ${report.validation.outputStd.toPrecision(3)} on a standard-normal batch\n` : ''),
      );
    });
}

/** The prediction's options from the command line (every one checked before anything runs). */
function predictionOptions(o: PredictCliOptions) {
  return {
    ghn: o.ghn,
    seed: parseNumber(o.seed, '--seed', { integer: true, min: 0 }),
    noise: parseNumber(o.noise, '--noise', { min: 0 }),
    orthogonalize: o.orth ?? false,
    fromLayer: parseNumber(o.fromLayer, '--from-layer', { integer: true, min: 0 }),
    calibrate: o.calibrate,
    calibrationData: o.calibrationData,
    fitHead: o.fitHead,
    mix: o.mix === 'auto' ? 'auto' as const : parseNumber(o.mix, '--mix', { min: 0, max: 1 }),
    validate: o.validate,
  };
}

/** `ghn predict model.onnx --samples K [-o DIR]`: K initializations, DIR/<model>.<i>.onnx. */
async function predictSamplesCommand(file: string, o: PredictCliOptions): Promise<void> {
  const count = parseNumber(o.samples!, '--samples', { integer: true, min: 1 });
  const sampleMix = o.sampleMix === undefined ? undefined : parseNumber(o.sampleMix, '--sample-mix', { min: Number.MIN_VALUE, max: 1 });
  const options = predictionOptions(o);
  const dir = o.output ?? path.dirname(file);
  const { checkOutputDir, predictSamples, sampleName, samplePath } = await import('../api/predict-samples.js');
  checkOutputDir(dir);
  const stem = sampleName(file);
  for (let i = 0; i < count; i++) {
    if (path.resolve(samplePath(dir, stem, i)) === path.resolve(file) && !o.overwriteInput) {
      throw new GhnError('usage', `refusing to overwrite the input ${file} (pass --overwrite-input to allow it)`);
    }
  }
  const result = await predictSamples(file, count, { ...options, outputDir: dir, keepTensors: false, ...(sampleMix === undefined ? {} : { sampleMix }) });
  if (o.json) {
    process.stdout.write(JSON.stringify({
      outputs: result.samples.map((s) => s.output), mix: result.mix, timings: result.timings, cpuTimings: result.cpuTimings,
      samples: result.samples.map((s) => ({ output: s.output, sample: s.sample, ...s.report })),
    }, null, 2) + '\n');
    return;
  }
  const total = (t: Record<string, number>) => Object.values(t).reduce((a, b) => a + b, 0);
  const first = result.samples[0]!.sample;
  const how = result.mix.chosenBy === 'held-out'
    ? `chosen t = ${result.mix.t} (held-out ${result.mix.candidates!.map((c) => `t ${c.t}: ${(100 * c.heldOut).toFixed(1)}%`).join(', ')})`
    : `t = ${result.mix.t} (${result.mix.chosenBy})`;
  process.stdout.write(
    `${count} samples of ${file} in ${dir}: default-init share ${first.mix} (deterministic prediction: ${how}), seeds ${first.seed}…${first.seed + count - 1}; ` +
      `shared stages ${total(result.timings).toFixed(0)} ms\n` +
      result.samples.map((s) => {
        const h = s.report.head;
        return `  ${s.output}: seed ${s.sample.seed}, ${total(s.report.timings).toFixed(0)} ms` +
          (h ? `, classifier ${h.kept === 'fitted' ? 'fitted' : 'kept'} (accuracy on its ${h.images} images ${(100 * h.fitAccuracy.fitted).toFixed(1)}%)` : '') + '\n';
      }).join(''),
  );
}
