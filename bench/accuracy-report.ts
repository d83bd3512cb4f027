/** The accuracy benchmark's report: the run's environment, per-model results, the markdown table. */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import type { PredictReport } from '../src/api/predict.js';
import type { FinetuneRun, NoTrainingResult } from './accuracy-measure.js';

export interface ModelResult {
  name: string;
  family: string;
  description: string;
  params: number;
  file: string;
  noTraining: NoTrainingResult;
  /** What predict chose: the default-init share and its held-out figures, the classifier fit. */
  prediction: { mix: PredictReport['mix']; head?: { images: number; ridge: number; heldOut?: number } };
  /** Each start's run; a start left out by `--start` is absent. */
  finetune?: { predicted?: FinetuneRun; defaultInit?: FinetuneRun };
}

export interface Environment {
  machine: { cpu: string; cores: number; memoryGiB: number; loadAverageAtStart: number[]; platform: string; node: string };
  commit: { hash: string; dirty: boolean } | null;
  backend: string;
}

function gitCommit(): Environment['commit'] {
  try {
    const hash = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    // Tracked files only: scratch files lying around do not make the measured code differ.
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
    return { hash, dirty };
  } catch {
    return null;
  }
}

export function environment(backend: string): Environment {
  const cpus = os.cpus();
  return {
    machine: {
      cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length, memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      loadAverageAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100), platform: `${os.platform()} ${os.release()}`, node: process.version,
    },
    commit: gitCommit(),
    backend,
  };
}

const pct = (x: number | undefined): string => (x === undefined ? '–' : `${(100 * x).toFixed(1)}%`);
const mean = (xs: number[]): number | undefined => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined);

/** model | params | ORT as written | batch-stat BN | ft<k> pred / default …, with a mean row. */
export function markdownTable(results: ModelResult[], steps: number[]): string {
  const header = ['model', 'params', 'ORT as written', 'batch-stat BN', ...steps.map((k) => `ft${k} pred / default`)];
  const ft = (r: ModelResult, k: number) => r.finetune
    ? `${pct(r.finetune.predicted?.atSteps[k])} / ${pct(r.finetune.defaultInit?.atSteps[k])}` : '–';
  const rows = results.map((r) => [
    r.name, r.params.toLocaleString('en-US'), pct(r.noTraining.ortAsWritten), pct(r.noTraining.batchStatBn), ...steps.map((k) => ft(r, k)),
  ]);
  const tuned = results.filter((r) => r.finetune);
  const meanOf = (pick: (r: ModelResult) => number | undefined, rs: ModelResult[]) =>
    pct(mean(rs.map(pick).filter((x): x is number => x !== undefined)));
  rows.push([
    `**mean (${results.length})**`, '', meanOf((r) => r.noTraining.ortAsWritten, results), meanOf((r) => r.noTraining.batchStatBn, results),
    ...steps.map((k) => `${meanOf((r) => r.finetune?.predicted?.atSteps[k], tuned)} / ${meanOf((r) => r.finetune?.defaultInit?.atSteps[k], tuned)}`),
  ]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Means of every figure, for the JSON report. */
export function summary(results: ModelResult[], steps: number[]) {
  const tuned = results.filter((r) => r.finetune);
  const at = (pick: (r: ModelResult) => number | undefined) => mean(tuned.map(pick).filter((x): x is number => x !== undefined));
  return {
    models: results.length,
    ortAsWritten: mean(results.map((r) => r.noTraining.ortAsWritten)),
    batchStatBn: mean(results.map((r) => r.noTraining.batchStatBn)),
    defaultInitOrt: mean(results.map((r) => r.noTraining.defaultInitOrt)),
    finetune: tuned.length ? Object.fromEntries(steps.map((k) => [k, {
      predicted: at((r) => r.finetune!.predicted?.atSteps[k]), defaultInit: at((r) => r.finetune!.defaultInit?.atSteps[k]),
    }])) : undefined,
  };
}
