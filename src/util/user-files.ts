/**
 * Files the user names on the command line, checked before long work starts: a GHN or model to
 * read gets a one-line error instead of a Node stack, and an output that cannot be written fails at
 * once rather than after minutes of training.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GhnError } from '../errors.js';

/** Fails unless `file` is a GHN file that can be opened (its contents are checked when decoded). */
export function checkGhnFile(file: string): void {
  const resolved = path.resolve(file);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(resolved);
  } catch {
    throw new GhnError('missing-data', `no GHN at ${resolved}: train one with \`ghn train\` or pass --ghn`);
  }
  if (stat.isDirectory()) throw new GhnError('bad-input', `${file}: is a directory, not a GHN file`);
  try {
    fs.accessSync(resolved, fs.constants.R_OK);
  } catch (err) {
    throw new GhnError('bad-input', `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

/**
 * Fails now if `file` could not be written later: a directory (or a name ending in a slash), a
 * missing or read-only folder. Probes by creating and removing a file beside it, the only check
 * that holds for root and for read-only mounts alike. Leaves an existing `file` untouched.
 */
export function checkWritableOutput(file: string, option: string): void {
  if (file.endsWith('/') || file.endsWith(path.sep) || (fs.existsSync(file) && fs.statSync(file).isDirectory())) {
    throw new GhnError('usage', `${option} ${file}: is a directory; give a file name`);
  }
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new GhnError('not-found', `${option} ${file}: folder ${dir} does not exist`);
  }
  const probe = path.join(dir, `.${path.basename(file)}.probe-${process.pid}`);
  try {
    fs.closeSync(fs.openSync(probe, 'wx'));
    fs.rmSync(probe, { force: true });
  } catch (err) {
    throw new GhnError('usage', `${option} ${file}: cannot write in ${dir} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}
