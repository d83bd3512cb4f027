/**
 * A model that keeps tensors in an external data file, written so that the pair appears together or
 * not at all: both files go to a staging directory beside the destination (same file system), where
 * onnxruntime can check them (it resolves the data file relative to the model's path); commit()
 * moves the data file, then the model, into place.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { GhnError } from '../errors.js';
import { writeModelWithDataFile, type OnnxModel } from '../onnx/index.js';
import type { StagedFile } from './staged-file.js';

export interface StagedModel extends StagedFile {
  /** The staged model file (its data file beside it), to check before commit(). */
  stagedPath: string;
  /** The model file's bytes (the proto, its external tensors referring to the data file). */
  bytes: Uint8Array;
  /** Where the data file goes: `<file>.data`. */
  dataFile: string;
}

export function stageModelWithData(model: OnnxModel, file: string): StagedModel {
  const target = path.resolve(file);
  const dir = path.dirname(target);
  if (!fs.existsSync(dir)) throw new GhnError('not-found', `cannot write ${file}: directory ${dir} does not exist`);
  const staging = path.join(dir, `.${path.basename(target)}.staging-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  fs.mkdirSync(staging);
  const remove = () => fs.promises.rm(staging, { recursive: true, force: true });
  try {
    const stagedPath = path.join(staging, path.basename(target));
    const stagedData = writeModelWithDataFile(model, stagedPath);
    const dataFile = path.join(dir, path.basename(stagedData));
    return {
      stagedPath,
      dataFile,
      bytes: fs.readFileSync(stagedPath),
      async commit() {
        try {
          await fs.promises.rename(stagedData, dataFile);
          await fs.promises.rename(stagedPath, target);
        } finally {
          await remove();
        }
      },
      discard: remove,
    };
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}
