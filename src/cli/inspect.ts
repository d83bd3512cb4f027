import type { Command } from 'commander';
import type { GraphSummary } from '../graph/index.js';
import { formatCount, table } from './format.js';
import { exitWith } from './run.js';

export function renderSummary(file: string, s: GraphSummary): string {
  const lines = [`${file}: ${s.producer || 'unknown producer'}, opset ${s.opset ?? '?'}, ${formatCount(s.onnxNodes)} ONNX nodes`];
  lines.push('', 'operations:');
  const ops = Object.entries(s.ops).sort((a, b) => b[1]! - a[1]!);
  lines.push(table(ops.map(([kind, n]) => [kind, n!])));
  const p = s.params;
  lines.push('', `parameters: ${formatCount(p.elements)} in ${formatCount(p.tensors)} tensors` +
    (p.initializers < p.tensors ? ` (${formatCount(p.initializers)} initializers; shared ones count once per use)` : ''));
  lines.push(table(Object.entries(p.byRole).map(([role, r]) => [role, r!.tensors, r!.elements])));
  if (s.buffers.tensors) lines.push(`buffers (BatchNorm running statistics): ${formatCount(s.buffers.elements)} in ${s.buffers.tensors} tensors`);
  lines.push('', s.unsupported.length ? 'not recognized:' : 'not recognized: nothing');
  if (s.unsupported.length) lines.push(table(s.unsupported.map((u) => [u.opType, u.node, u.detail])));
  return lines.join('\n');
}

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('summarize a model: operations, parameter tensors by role, anything not recognized')
    .argument('<model>', 'ONNX file')
    .option('--json', 'print the summary as JSON')
    .action(async (file: string, options: { json?: boolean }) => {
      const { inspect } = await import('../api/inspect.js');
      const summary = inspect(file);
      process.stdout.write((options.json ? JSON.stringify(summary, null, 2) : renderSummary(file, summary)) + '\n');
      if (summary.unsupported.length) {
        const names = [...new Set(summary.unsupported.map((u) => u.opType))].join(', ');
        exitWith(4, `${file}: unsupported: ${names} (the rest of the model was inspected)`);
      }
    });
}
