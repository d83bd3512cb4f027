/** The loss/accuracy plot `ghn train` writes beside the GHN: <prefix>.training.svg, from its training log. */
import path from 'node:path';
import { plotTrainingLog, type LogRecord } from '../meta-training/plot-log.js';
import { readTrainingLog, resolveTrainingLog, trainingLogPath } from '../meta-training/training-log.js';
import { writeFileAtomic } from '../onnx/write.js';

export const trainingPlotPath = (prefix: string): string => `${prefix}.training.svg`;

/** Writes the plot of the whole log (every resume included), whole or not at all; returns its path, or undefined without a log. */
export function writeTrainingPlot(prefix: string): string | undefined {
  const log = resolveTrainingLog(trainingLogPath(prefix));
  if (!log) return undefined;
  const svg = plotTrainingLog(readTrainingLog<LogRecord>(log), { title: path.basename(prefix) });
  const out = trainingPlotPath(prefix);
  writeFileAtomic(out, Buffer.from(svg), false);
  return out;
}
