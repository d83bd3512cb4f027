/**
 * Linear layers spelled as MatMul with a 2-D static weight (stored [in, out], or [out, in] behind a
 * Transpose) and an optional following Add of a bias, which is how exporters write nn.Linear on
 * inputs of rank > 2. Gemm is a single-op table entry.
 */
import type { ModelIndex } from '../model-index.js';
import type { OpMatch, ParamUse, PatternMatcher } from './match.js';
import { anchoredMatcher } from './match.js';
import { otherInput, soleConsumer, staticElementCount } from './match.js';

function matchAt(index: ModelIndex, matmul: number, claimed: ReadonlySet<number>): OpMatch | undefined {
  const [a, b] = index.inputs(matmul);
  if (!a || !b || !index.isActivation(a) || index.isActivation(b)) return undefined;
  const weight = index.traceStatic(b);
  if (!weight || (weight.tensor.dims ?? []).length !== 2) return undefined;
  const params: ParamUse[] = [{ node: matmul, input: 1, role: 'linear.weight' }];
  const nodes = [matmul];
  const out = index.outputs(matmul)[0]!;
  const add = soleConsumer(index, out);
  if (add !== undefined && !claimed.has(add) && index.opType(add) === 'Add') {
    const bias = otherInput(index, add, out);
    const outFeatures = staticElementCount(index, b) ?? 0;
    const biasCount = bias && !index.isActivation(bias) ? staticElementCount(index, bias) : undefined;
    if (biasCount !== undefined && biasCount > 1 && outFeatures % biasCount === 0) {
      nodes.push(add);
      params.push({ node: add, input: index.inputs(add).indexOf(bias!), role: 'linear.bias' });
    }
  }
  return { kind: 'linear', anchor: matmul, nodes, params, attrs: {} };
}

export const matchMatMulLinear: PatternMatcher = anchoredMatcher('MatMul', matchAt);
