/**
 * Writes the first N architectures of the generated space's test split (never trained on) as ONNX
 * files with an index.json, so that `bench/accuracy.ts --dir DIR --variant generated` measures them
 * the user's way: `ghn predict` with default options, then onnxruntime as written and BN on batch
 * statistics. Same architectures as `ghn eval` (architectureSeed('test', i)); the files keep the
 * sampler's PyTorch-style default initialization, the fine-tuning baseline.
 *
 *   npx tsx scripts/make-generated-split.ts [--archs 40] [--out fixtures/generated]
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { encodeModel, writeFileAtomic } from '../src/onnx/index.js';
import { architectureSeed, sampleArchitecture } from '../src/space/sample.js';
import { untieSharedInitializers } from '../src/fine-tuning/untie.js';

const { values } = parseArgs({ options: { archs: { type: 'string', default: '40' }, out: { type: 'string', default: 'fixtures/generated' } } });
const count = Number(values.archs);
if (!Number.isInteger(count) || count <= 0) throw new Error(`--archs must be a positive integer, got "${values.archs}"`);
const out = values.out!;
fs.mkdirSync(out, { recursive: true });
const models = [];
for (let i = 0; i < count; i++) {
  const arch = sampleArchitecture(architectureSeed('test', i));
  const model = { proto: arch.model };
  untieSharedInitializers(model);
  const file = `${arch.id}.onnx`;
  writeFileAtomic(path.join(out, file), encodeModel(model));
  models.push({ name: arch.id, family: arch.family, description: `generated ${arch.family}, test split #${i}`, params: arch.params, files: { generated: { file } } });
}
fs.writeFileSync(path.join(out, 'index.json'), JSON.stringify({ generator: 'scripts/make-generated-split.ts', split: 'test', models }, null, 1) + '\n');
console.log(`${models.length} test-split architectures in ${out}`);
