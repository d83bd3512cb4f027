/**
 * The GHNs a server offers. Requests name one by id (the file's sha256, or a unique prefix of at
 * least 8 hex digits) or by its file name without extension; nothing a request sends is ever used
 * as a path.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GhnError } from '../errors.js';
import { decodeGhn, type GhnHeader } from '../ghn/serialize.js';
import { HttpError } from './http-errors.js';

export interface GhnEntry {
  id: string;
  name: string;
  bytes: number;
  config: GhnHeader['config'];
  recipe: GhnHeader['recipe'] | null;
  metrics: GhnHeader['metrics'] | null;
  default: boolean;
}

export class GhnRegistry {
  private readonly entries: { entry: GhnEntry; path: string }[];

  /** Reads every file's header now, so a bad file fails the server's start, not a request. */
  constructor(files: readonly string[]) {
    if (!files.length) throw new GhnError('usage', 'the server needs at least one GHN file (--ghn)');
    this.entries = files.map((file, i) => {
      const resolved = path.resolve(file);
      if (!fs.existsSync(resolved)) throw new GhnError('not-found', `no GHN at ${resolved}: train one with \`ghn train\` or pass --ghn`);
      const bytes = new Uint8Array(fs.readFileSync(resolved));
      const { header, hash } = decodeGhn(bytes, resolved);
      const name = path.basename(resolved).replace(/\.ghn$/, '');
      return {
        path: resolved,
        entry: { id: hash, name, bytes: bytes.length, config: header.config, recipe: header.recipe ?? null, metrics: header.metrics ?? null, default: i === 0 },
      };
    });
  }

  list(): GhnEntry[] {
    return this.entries.map((e) => e.entry);
  }

  /** The server path of the GHN a request names (the default when it names none); 400 if unknown. */
  resolve(ref: string | undefined): { entry: GhnEntry; path: string } {
    if (ref === undefined || ref === '') return this.entries[0]!;
    const key = ref.toLowerCase();
    const matches = this.entries.filter(({ entry }) =>
      entry.id === key || entry.name === ref || (/^[0-9a-f]{8,64}$/.test(key) && entry.id.startsWith(key)));
    if (matches.length !== 1) {
      throw new HttpError(400, 'unknown-ghn', `no${matches.length ? ' unique' : ''} GHN '${ref}' on this server; GET /v1/models lists the ids`);
    }
    return matches[0]!;
  }
}
