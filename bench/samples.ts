/**
 * Samples and ensembles (issue 19), the user's way: for each benchmark model, `ghn predict` once
 * (the deterministic prediction) and with `--samples K`, then `ghn ensemble` on the samples — no
 * training, or after `--finetune-steps N` of each member. Prints, per model, the deterministic
 * accuracy, the mean / min / max sample, the samples' mean pairwise disagreement and the ensemble,
 * and the means over the models. Every figure comes from the CLI's own output (child processes).
 *
 *   npx tsx bench/samples.ts [--models lenet5,resnet_basic] [--samples 8] [--ghn FILE]
 *       [--dir fixtures/benchmark] [--variant preserve13] [--test-limit 2000] [--finetune-steps 0] [--json out.json]
 *   npx tsx bench/samples.ts --dir fixtures/generated --variant '' --models cnn-23,resnet-11,vit-8   (the generated test split)
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readModelFile } from '../src/onnx/index.js';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'lenet5,resnet_basic,mobilenet_v2,vit_encoder,mlp_wide,squeezenet' },
    samples: { type: 'string', default: '8' },
    ghn: { type: 'string' },
    dir: { type: 'string', default: 'fixtures/benchmark' },
    variant: { type: 'string', default: 'preserve13' },
    'test-limit': { type: 'string', default: '2000' },
    'finetune-steps': { type: 'string', default: '0' },
    json: { type: 'string' },
  },
});

const CLI = path.resolve('src/cli/main.ts');

function ghn(...cliArgs: string[]): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...cliArgs], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`ghn ${cliArgs.join(' ')}: exit ${r.status}\n${r.stderr}`);
  return r.stdout;
}

interface EnsembleJson {
  members: number[];
  meanMember: number;
  ensemble: number;
  disagreement: number;
}

interface ModelRow {
  model: string;
  mix: number;
  deterministic: number;
  samples: number[];
  meanSample: number;
  disagreement: number;
  ensemble: number;
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ghn-bench-samples-'));
const ghnArgs = args.ghn ? ['--ghn', args.ghn] : [];
const evalArgs = ['--test-limit', args['test-limit']!, '--finetune-steps', args['finetune-steps']!, '--json'];
const rows: ModelRow[] = [];
const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
console.log(`K = ${args.samples} samples, ${args['test-limit']} test images, ${args['finetune-steps']} fine-tuning steps, GHN ${args.ghn ?? '(shipped)'}`);
console.log('| model | t | deterministic | mean sample (min–max) | mean − det. | disagreement | ensemble | ensemble − mean sample |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const model of args.models!.split(',')) {
  const file = path.join(args.dir!, args.variant ? `${model}.${args.variant}.onnx` : `${model}.onnx`);
  const det = path.join(work, `${model}.det.onnx`);
  ghn('predict', file, '-o', det, ...ghnArgs);
  const detFigures = JSON.parse(ghn('ensemble', det, ...evalArgs)) as EnsembleJson;
  const dir = path.join(work, model);
  ghn('predict', file, '--samples', args.samples!, '-o', dir, ...ghnArgs);
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort((a, b) => Number(a.split('.').at(-2)) - Number(b.split('.').at(-2))).map((f) => path.join(dir, f));
  const sampleInfo = JSON.parse(readModelFile(files[1] ?? files[0]!).proto.metadataProps?.find((p) => p.key === 'ghn.sample')?.value ?? '{}') as { mix?: number };
  const figures = JSON.parse(ghn('ensemble', ...files, ...evalArgs)) as EnsembleJson;
  const row: ModelRow = {
    model, mix: sampleInfo.mix ?? NaN, deterministic: detFigures.ensemble, samples: figures.members,
    meanSample: figures.meanMember, disagreement: figures.disagreement, ensemble: figures.ensemble,
  };
  rows.push(row);
  const [lo, hi] = [Math.min(...row.samples), Math.max(...row.samples)];
  console.log(`| ${model} | ${row.mix} | ${pct(row.deterministic)} | ${pct(row.meanSample)} (${(100 * lo).toFixed(2)}–${(100 * hi).toFixed(2)}) | ${(100 * (row.meanSample - row.deterministic)).toFixed(2)} | ${pct(row.disagreement)} | ${pct(row.ensemble)} | ${(100 * (row.ensemble - row.meanSample)).toFixed(2)} |`);
}
const mean = (f: (r: ModelRow) => number) => rows.reduce((s, r) => s + f(r), 0) / rows.length;
console.log(`| **mean (${rows.length})** | | ${pct(mean((r) => r.deterministic))} | ${pct(mean((r) => r.meanSample))} | ${(100 * mean((r) => r.meanSample - r.deterministic)).toFixed(2)} | ${pct(mean((r) => r.disagreement))} | ${pct(mean((r) => r.ensemble))} | ${(100 * mean((r) => r.ensemble - r.meanSample)).toFixed(2)} |`);
if (args.json) fs.writeFileSync(args.json, JSON.stringify({ args, rows }, null, 1));
fs.rmSync(work, { recursive: true, force: true });
