/**
 * A file written in the background while other work runs: the bytes go to a temp file beside the
 * destination through libuv's thread pool (off the main thread), and only commit() renames it into
 * place, so the destination is complete or untouched whatever happens to the process.
 *
 * No fsync: it guards only against the machine itself going down before the kernel writes the page
 * cache out, and a prediction is made again in seconds; on the shared VM disk it was the last
 * ~0.3–0.6 s of every ResNet-50 prediction (the process waited on the flush of 100 MB). torch.save
 * and onnx.save do not sync either.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { GhnError } from '../errors.js';
import { writePartsFile, type EncodedParts } from '../onnx/index.js';

export interface StagedFile {
  /** Waits for the temp file, then renames it to the destination. */
  commit(): Promise<void>;
  /** Waits for the temp file, then removes it; the destination is left as it was. */
  discard(): Promise<void>;
}

export interface StagedWrite extends StagedFile {
  /** The temp file, complete once `written` resolves (it rejects with the GhnError commit() would throw). */
  tmpPath: string;
  written: Promise<void>;
}

/**
 * Starts writing `content` for `file`: bytes, or a model's encoded parts (written without joining
 * them into one buffer). Neither may change until commit() or discard() returns.
 */
export function stageFile(file: string, content: Uint8Array | EncodedParts): StagedWrite {
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const remove = () => fs.promises.rm(tmp, { force: true });
  const parts = content instanceof Uint8Array ? { parts: [content], size: content.length } : content;
  const written = writePartsFile(tmp, parts).catch(async (err) => {
    await remove();
    throw writeError(file, err);
  });
  written.catch(() => {}); // reported by `written`'s waiters and commit(); discard() ignores it
  return {
    tmpPath: tmp,
    written,
    async commit() {
      await written;
      try {
        await fs.promises.rename(tmp, file);
      } catch (err) {
        await remove();
        throw writeError(file, err);
      }
    },
    async discard() {
      await written.catch(() => {});
      await remove();
    },
  };
}

function writeError(file: string, err: unknown): GhnError {
  if (err instanceof GhnError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  return new GhnError(code === 'ENOENT' ? 'not-found' : 'usage', `cannot write ${file}: ${code ?? (err instanceof Error ? err.message : String(err))}`, { cause: err });
}
