/**
 * Grows a trained GHN, keeping its function: classifier-specific decoder maps
 * (GhnConfig.classifierMaps, new maps start at zero) or a latent input (GhnConfig.latentDim:
 * `latent.proj` starts small, and without a latent draw the prediction is the original's). Every
 * other variable is copied and the optimizer state carried over (the new variables' moments start
 * at zero), so training resumes from the grown file as from the original.
 *
 *   npx tsx scripts/grow-ghn.ts <in.ghn> <out.ghn> [--classifier-maps] [--latent-dim N]
 *
 * Without an option: --classifier-maps (what the script did first).
 */
import { copyFileSync, existsSync } from 'node:fs';
import { initBackend } from '../src/engine/backend.js';
import type { GhnConfig } from '../src/ghn/config.js';
import { GhnModel } from '../src/ghn/model.js';
import { loadGhn, saveGhn } from '../src/ghn/serialize.js';

const args = process.argv.slice(2);
const [input, output] = args.filter((a, i) => !a.startsWith('--') && !(args[i - 1] === '--latent-dim'));
if (!input || !output) throw new Error('usage: grow-ghn.ts <in.ghn> <out.ghn> [--classifier-maps] [--latent-dim N]');
const latentAt = args.indexOf('--latent-dim');
const latentDim = latentAt >= 0 ? Number(args[latentAt + 1]) : 0;
if (latentAt >= 0 && !(Number.isInteger(latentDim) && latentDim > 0)) throw new Error('--latent-dim needs a positive integer');
const classifierMaps = args.includes('--classifier-maps') || latentAt < 0;

await initBackend();
const { model, header } = loadGhn(input);
const grow: Partial<GhnConfig> = {};
if (classifierMaps) {
  if (model.config.classifierMaps) throw new Error(`${input} already has classifier maps`);
  grow.classifierMaps = true;
}
if (latentDim) {
  if (model.config.latentDim) throw new Error(`${input} already has a latent input (width ${model.config.latentDim})`);
  grow.latentDim = latentDim;
}
const values = new Map([...model.variables].map(([name, v]) => [name, v.dataSync() as Float32Array]));
const config = { ...model.config, ...grow };
const grown = new GhnModel(config, values);
const recipe = header.recipe ? { ...header.recipe, ghn: config } : undefined;
const hash = saveGhn(output, grown, { recipe, metrics: header.metrics, ...(header.dataset ? { dataset: header.dataset } : {}) });
if (existsSync(`${input}.opt`)) copyFileSync(`${input}.opt`, `${output}.opt`);
console.log(`${output}: ${grown.parameterCount} parameters (was ${model.parameterCount}), sha256 ${hash}`);
