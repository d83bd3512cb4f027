/**
 * Grows a trained GHN into one with classifier-specific decoder maps (GhnConfig.classifierMaps),
 * keeping its function: the new maps start at zero, every other variable is copied, and the
 * optimizer state is carried over (the new variables' moments start at zero), so training resumes
 * from the grown file as from the original.
 *
 *   npx tsx scripts/grow-ghn.ts <in.ghn> <out.ghn>
 */
import { copyFileSync, existsSync } from 'node:fs';
import { initBackend } from '../src/engine/backend.js';
import { GhnModel } from '../src/ghn/model.js';
import { loadGhn, saveGhn } from '../src/ghn/serialize.js';

const [input, output] = process.argv.slice(2);
if (!input || !output) throw new Error('usage: grow-ghn.ts <in.ghn> <out.ghn>');
await initBackend();
const { model, header } = loadGhn(input);
if (model.config.classifierMaps) throw new Error(`${input} already has classifier maps`);
const values = new Map([...model.variables].map(([name, v]) => [name, v.dataSync() as Float32Array]));
const config = { ...model.config, classifierMaps: true };
const grown = new GhnModel(config, values);
const recipe = header.recipe ? { ...header.recipe, ghn: config } : undefined;
const hash = saveGhn(output, grown, { recipe, metrics: header.metrics });
if (existsSync(`${input}.opt`)) copyFileSync(`${input}.opt`, `${output}.opt`);
console.log(`${output}: ${grown.parameterCount} parameters (was ${model.parameterCount}), sha256 ${hash}`);
