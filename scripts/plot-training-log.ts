/**
 * `npm run plot -- [--log models/ghn-fmnist.log.jsonl.gz] [--out runs/ghn-fmnist.training.svg] [--title T] [--smooth N]`:
 * the meta-training curves of a training log (compressed or legacy plain) as one self-contained SVG
 * (src/meta-training/plot-log.ts).
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { plotTrainingLog, type LogRecord } from '../src/meta-training/plot-log.js';
import { readTrainingLog, resolveTrainingLog } from '../src/meta-training/training-log.js';

const { values } = parseArgs({
  options: {
    log: { type: 'string', default: 'models/ghn-fmnist.log.jsonl.gz' },
    out: { type: 'string', default: 'runs/ghn-fmnist.training.svg' },
    title: { type: 'string' },
    smooth: { type: 'string' },
  },
});
const file = resolveTrainingLog(values.log!);
if (!file) {
  console.error(`no training log at ${values.log}`);
  process.exit(2);
}
const records = readTrainingLog<LogRecord>(file);
const svg = plotTrainingLog(records, { title: values.title, smooth: values.smooth === undefined ? undefined : Number(values.smooth) });
const out = values.out!;
mkdirSync(dirname(out), { recursive: true });
// Whole or not at all: an interrupted write leaves the previous plot.
writeFileSync(`${out}.tmp`, svg);
renameSync(`${out}.tmp`, out);
console.log(`${out}: ${records.length} log lines from ${file}, ${(Buffer.byteLength(svg) / 1024).toFixed(0)} KB`);
