/**
 * LayerNorm as exporters decompose it below opset 17:
 *   m = ReduceMean(x); d = Sub(x, m); v = ReduceMean(Pow(d, 2) | Mul(d, d)); s = Sqrt(Add(v, eps));
 *   y = Div(d, s) [→ Mul(y, γ)] [→ Add(·, β)]
 * The single `LayerNormalization` operator (opset ≥ 17) is a plain table entry elsewhere.
 */
import type { ModelIndex } from '../model-index.js';
import { attrInts } from '../../onnx/attributes.js';
import type { OpMatch, ParamUse, PatternMatcher } from './match.js';
import { anchoredMatcher } from './match.js';
import { consumersOfType, otherInput, soleConsumer, staticElementCount } from './match.js';

function reduceAxes(index: ModelIndex, node: number): number[] | undefined {
  const fromAttr = attrInts(index.node(node), 'axes');
  if (fromAttr) return fromAttr;
  const axesInput = index.inputs(node)[1]; // opset 18: axes as an input
  if (!axesInput) return undefined;
  const value = index.scalar(axesInput);
  return value === undefined ? undefined : [value];
}

function matchAt(index: ModelIndex, mean: number, claimed: ReadonlySet<number>): OpMatch | undefined {
  const x = index.inputs(mean)[0];
  const m = index.outputs(mean)[0];
  if (!x || !m || !index.isActivation(x)) return undefined;
  for (const sub of consumersOfType(index, m, 'Sub', claimed)) {
    const [a, b] = index.inputs(sub);
    if (a !== x || b !== m) continue;
    const d = index.outputs(sub)[0]!;
    const dConsumers = index.consumersOf(d).map((c) => c.node);
    const square = dConsumers.find((n) => {
      const op = index.opType(n);
      if (op === 'Pow') return index.scalar(index.inputs(n)[1] ?? '') === 2;
      return op === 'Mul' && index.inputs(n)[0] === d && index.inputs(n)[1] === d;
    });
    const div = dConsumers.find((n) => index.opType(n) === 'Div' && index.inputs(n)[0] === d);
    if (square === undefined || div === undefined || dConsumers.length !== 2) continue;
    const varMean = soleConsumer(index, index.outputs(square)[0]!);
    if (varMean === undefined || index.opType(varMean) !== 'ReduceMean') continue;
    const addEps = soleConsumer(index, index.outputs(varMean)[0]!);
    if (addEps === undefined || index.opType(addEps) !== 'Add') continue;
    const epsilon = index.scalar(otherInput(index, addEps, index.outputs(varMean)[0]!) ?? '');
    if (epsilon === undefined) continue;
    const sqrt = soleConsumer(index, index.outputs(addEps)[0]!);
    if (sqrt === undefined || index.opType(sqrt) !== 'Sqrt' || index.inputs(div)[1] !== index.outputs(sqrt)[0]) continue;

    const nodes = [mean, sub, square, varMean, addEps, sqrt, div];
    const params: ParamUse[] = [];
    let tail = index.outputs(div)[0]!;
    // Optional affine part: Mul by γ then Add of β, each a static per-channel tensor.
    for (const [opType, role] of [['Mul', 'norm.scale'], ['Add', 'norm.shift']] as const) {
      const next = soleConsumer(index, tail);
      if (next === undefined || index.opType(next) !== opType || claimed.has(next)) break;
      const other = otherInput(index, next, tail);
      if (!other || index.isActivation(other) || (staticElementCount(index, other) ?? 0) < 1) break;
      nodes.push(next);
      params.push({ node: next, input: index.inputs(next).indexOf(other), role });
      tail = index.outputs(next)[0]!;
    }
    const axes = reduceAxes(index, mean);
    return { kind: 'layer_norm', anchor: div, nodes, params, attrs: { epsilon, axis: axes?.[0] ?? -1 } };
  }
  return undefined;
}

export const matchDecomposedLayerNorm: PatternMatcher = anchoredMatcher('ReduceMean', matchAt);
