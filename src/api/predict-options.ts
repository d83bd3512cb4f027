/**
 * What `predict` takes and its defaults, the shipped GHN's path among them: apart from the
 * prediction code so that the command line can show them without loading tfjs and onnxruntime.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// src/api/predict-options.ts and dist/api/predict-options.js are both two levels below the package root.
const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The GHN shipped with the package, used when no other is named. */
export const DEFAULT_GHN_PATH = path.join(PACKAGE_ROOT, 'models', 'ghn-fmnist.ghn');

export interface PredictOptions {
  /** Path of a .ghn file (default: the shipped model). */
  ghn?: string;
  seed?: number;
  /** Noise scale β of the diversity post-processing (0 turns the noise off). */
  noise?: number;
  /** Orthogonalize ≥ 2-D weights (QR) after the noise. */
  orthogonalize?: boolean;
  /** First weight (in topological order, counting ≥ 2-D weights from 0) that is post-processed. */
  fromLayer?: number;
  /**
   * One forward pass that rescales each weight layer to unit output standard deviation and writes
   * every BatchNorm's running statistics as measured on the batch (see src/predict/calibrate.ts;
   * default true): the model then works as exported, in inference mode.
   */
  calibrate?: boolean;
  /**
   * What the calibration pass runs on: 'auto' (default) the GHN's training images when they are on
   * the machine and fit the model's input, else standard-normal noise; 'noise'; or a directory of
   * Fashion-MNIST-style idx files.
   */
  calibrationData?: string;
  /**
   * With calibration on labeled images of the GHN's training set (the 'auto' data when it is on the
   * machine, or a directory), replace a Linear classifier by a closed-form ridge fit on 8,192 of them
   * (src/predict/fit-head.ts; default true). The GHN's features of an unfamiliar architecture carry
   * the classes; its predicted classifier often does not read them.
   */
  fitHead?: boolean;
  /**
   * The share t of PyTorch's default initialization mixed into the prediction, (1 − t)·GHN + t·default
   * per tensor (src/postprocess/default-init.ts). 'auto' (default): with labeled images for the
   * classifier fit, t ∈ {0, 0.5} chosen by the fitted classifier's held-out accuracy; else 0.
   */
  mix?: number | 'auto';
  /** Run the written model in onnxruntime-node and check its outputs are finite (default true). */
  validate?: boolean;
  /**
   * Also write the model to this file: in the background while onnxruntime checks it, renamed into
   * place only when the check passes (the file is complete or untouched). Required for a model that
   * keeps tensors in external data: they go to one data file beside it, `<output>.data`.
   */
  output?: string;
}

/** The options that shape the prediction (recorded in the report and the model's metadata). */
export type PredictionOptions = Required<Omit<PredictOptions, 'ghn' | 'output'>>;

export const DEFAULT_PREDICT_OPTIONS: Readonly<PredictionOptions> = {
  seed: 0, noise: 0, orthogonalize: false, fromLayer: 0, calibrate: true, calibrationData: 'auto', fitHead: true, mix: 'auto', validate: true,
};
