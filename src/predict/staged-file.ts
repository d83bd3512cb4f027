/**
 * A file written in the background while other work runs: the bytes go to a temp file beside the
 * destination through libuv's thread pool (the write and fsync of a 100 MB model take ~0.3 s, off
 * the main thread), and only commit() renames it into place, so the destination is complete or
 * untouched, as with writeFileAtomic.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { GhnError } from '../errors.js';

export interface StagedFile {
  /** Waits for the temp file, then renames it to the destination. */
  commit(): Promise<void>;
  /** Waits for the temp file, then removes it; the destination is left as it was. */
  discard(): Promise<void>;
}

/** Starts writing `bytes` for `file`; the array must not change until commit() or discard() returns. */
export function stageFile(file: string, bytes: Uint8Array): StagedFile {
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const written = writeAndSync(tmp, bytes);
  written.catch(() => {}); // reported by commit(); discard() ignores it
  const remove = () => fs.promises.rm(tmp, { force: true });
  return {
    async commit() {
      try {
        await written;
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

async function writeAndSync(tmp: string, bytes: Uint8Array): Promise<void> {
  const handle = await fs.promises.open(tmp, 'w');
  try {
    let done = 0;
    while (done < bytes.length) done += (await handle.write(bytes, done, bytes.length - done, done)).bytesWritten;
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function writeError(file: string, err: unknown): GhnError {
  if (err instanceof GhnError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  return new GhnError(code === 'ENOENT' ? 'not-found' : 'usage', `cannot write ${file}: ${code ?? (err instanceof Error ? err.message : String(err))}`, { cause: err });
}
