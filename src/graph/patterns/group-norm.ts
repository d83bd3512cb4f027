/**
 * GroupNorm as exporters write it below opset 18: Reshape to [N, groups, -1], InstanceNormalization
 * with constant unit scale and zero shift, Reshape back, then Mul by γ and Add of β (per channel).
 */
import type { OpMatch, PatternMatcher } from './match.js';
import { otherInput, soleConsumer } from './match.js';

export const matchDecomposedGroupNorm: PatternMatcher = (index, claimed) => {
  const matches: OpMatch[] = [];
  for (const norm of index.order) {
    if (claimed.has(norm) || index.opType(norm) !== 'InstanceNormalization') continue;
    const before = index.producerOf(index.inputs(norm)[0] ?? '');
    if (before === undefined || index.opType(before) !== 'Reshape' || claimed.has(before)) continue;
    // Its own scale must be a constant, not an initializer: otherwise it is a real InstanceNorm.
    if (index.inputs(norm).slice(1).some((v) => v && index.traceStatic(v)?.initializer)) continue;
    const after = soleConsumer(index, index.outputs(norm)[0]!);
    if (after === undefined || index.opType(after) !== 'Reshape') continue;
    const nodes = [before, norm, after];
    const params: { node: number; input: number; role: 'norm.scale' | 'norm.shift' }[] = [];
    let tail = index.outputs(after)[0]!;
    for (const [opType, role] of [['Mul', 'norm.scale'], ['Add', 'norm.shift']] as const) {
      const next = soleConsumer(index, tail);
      if (next === undefined || index.opType(next) !== opType || claimed.has(next)) break;
      const other = otherInput(index, next, tail);
      if (!other || index.isActivation(other) || !index.traceStatic(other)?.initializer) break;
      nodes.push(next);
      params.push({ node: next, input: index.inputs(next).indexOf(other), role });
      tail = index.outputs(next)[0]!;
    }
    matches.push({ kind: 'group_norm', anchor: norm, nodes, params, attrs: {} });
  }
  return matches;
};
