/**
 * Issue-2 acceptance over every torchvision export in a folder (default fixtures/large, made by
 * scripts/export_torchvision.py): `inspect` has nothing unsupported, and for PRESERVE/TRAINING exports
 * the parameter count equals PyTorch's (from <model>.state.json).
 * Usage: npx tsx scripts/check-torchvision.ts [dir]
 */
import fs from 'node:fs';
import path from 'node:path';
import { inspect } from '../src/api/inspect.js';

const dir = path.resolve(process.argv[2] ?? 'fixtures/large');
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort();
let failures = 0;
console.log('file                                        params      pytorch     check  unsupported');
for (const file of files) {
  const [model, variant] = file.split('.');
  const stateFile = path.join(dir, `${model}.state.json`);
  const expected = fs.existsSync(stateFile) ? (JSON.parse(fs.readFileSync(stateFile, 'utf8')).params as number) : undefined;
  let line: string;
  try {
    const s = inspect(path.join(dir, file));
    const countChecked = !variant!.startsWith('eval');
    const countOk = !countChecked || s.params.elements === expected;
    const ok = countOk && s.unsupported.length === 0;
    if (!ok) failures++;
    const unsupported = [...new Set(s.unsupported.map((u) => u.opType))].join(',') || '-';
    line = `${file.padEnd(42)} ${String(s.params.elements).padStart(10)} ${String(expected ?? '?').padStart(12)}  ${(ok ? 'ok' : 'FAIL').padEnd(5)} ${unsupported}`;
  } catch (err) {
    failures++;
    line = `${file.padEnd(42)} error: ${(err as Error).message}`;
  }
  console.log(line);
}
console.log(`${files.length - failures} passed, ${failures} failed`);
process.exitCode = failures ? 1 : 0;
