/**
 * ImageNet-size torchvision exports for benchmarks: made on demand by scripts/export_torchvision.py
 * (Debian's PyTorch), never committed.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const LARGE_DIR = path.resolve('fixtures/large');
const PYTHON = '/usr/bin/python3';

/** Path of `<model>.<variant>.onnx`, exporting it first if needed; undefined when PyTorch is missing. */
export function largeFixture(model: string, variant = 'eval13'): string | undefined {
  const file = path.join(LARGE_DIR, `${model}.${variant}.onnx`);
  if (fs.existsSync(file)) return file;
  const probe = spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { stdio: 'ignore' });
  if (probe.status !== 0) {
    console.log(`(skipping ${model}: PyTorch not installed — apt-get install python3-torch python3-torchvision python3-onnx)`);
    return undefined;
  }
  console.log(`exporting ${model}.${variant} with PyTorch …`);
  spawnSync(PYTHON, ['scripts/export_torchvision.py', '--models', model, '--variants', variant, '--out', LARGE_DIR], { stdio: 'inherit' });
  return fs.existsSync(file) ? file : undefined;
}
