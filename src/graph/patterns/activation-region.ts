/**
 * Activation functions that exporters spell as several elementwise nodes (GELU as Div/Erf/Add/Mul/Mul
 * or with Tanh and Pow, SiLU as Sigmoid·x, HardSwish as x·HardSigmoid(x), ReLU6 as Clip, …).
 *
 * Rather than one matcher per spelling, we grow the region of elementwise nodes around each
 * nonlinearity until it reads a single activation x and writes a single value, then evaluate that
 * region on a grid of x and compare it with reference functions. Any spelling of a known function is
 * recognized; anything else is left to the single-op table.
 */
import type { ModelIndex } from '../model-index.js';
import type { ActivationKind } from '../vocabulary.js';
import type { OpMatch, PatternMatcher } from './match.js';
import { REFERENCE_ACTIVATIONS, SCALAR_OPS } from './scalar-ops.js';

const ANCHORS: ReadonlySet<string> = new Set([
  'Erf', 'Tanh', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Clip', 'Relu', 'Softplus', 'Elu', 'LeakyRelu',
]);
const MAX_REGION = 12;
// Wide enough to tell ReLU6 from ReLU and the saturating functions from each other.
const GRID = Array.from({ length: 65 }, (_, k) => -8 + k * 0.25);

/**
 * Elementwise node whose static inputs are all scalar constants, so it can be evaluated pointwise.
 * A scalar initializer may be a learned gain (a parameter), so it stops the region.
 */
function isPointwise(index: ModelIndex, node: number): boolean {
  if (!(index.opType(node) in SCALAR_OPS)) return false;
  return index.inputs(node).every(
    (v) => !v || index.isActivation(v) || (index.scalar(v) !== undefined && !index.traceStatic(v)?.initializer),
  );
}

interface Region {
  readonly nodes: Set<number>;
  readonly source: string;
  readonly output: string;
}

function producedBy(index: ModelIndex, nodes: ReadonlySet<number>): Set<string> {
  const values = new Set<string>();
  for (const n of nodes) for (const v of index.outputs(n)) values.add(v);
  return values;
}

function externalActivationInputs(index: ModelIndex, nodes: ReadonlySet<number>): Set<string> {
  const produced = producedBy(index, nodes);
  const external = new Set<string>();
  for (const n of nodes) for (const v of index.activationInputs(n)) if (!produced.has(v)) external.add(v);
  return external;
}

/** Values of the region read outside it (or graph outputs). */
function escapingValues(index: ModelIndex, nodes: ReadonlySet<number>): string[] {
  return [...producedBy(index, nodes)].filter(
    (v) => index.isGraphOutput(v) || index.consumersOf(v).some((c) => !nodes.has(c.node)),
  );
}

function growRegion(index: ModelIndex, anchor: number, claimed: ReadonlySet<number>): Region | undefined {
  const nodes = new Set([anchor]);
  const position = new Map(index.order.map((n, k) => [n, k]));
  // Backward: absorb producers until a single activation feeds the region, then keep absorbing
  // pointwise producers that only the region reads (Div(x, √2) before Erf, for instance).
  for (;;) {
    if (nodes.size >= MAX_REGION) return undefined;
    const external = [...externalActivationInputs(index, nodes)];
    if (external.length === 0) return undefined;
    const latest = external
      .map((v) => index.producerOf(v))
      .filter((p): p is number => p !== undefined)
      .sort((a, b) => position.get(b)! - position.get(a)!)[0];
    const absorbable = latest !== undefined && !claimed.has(latest) && isPointwise(index, latest);
    if (external.length > 1) {
      if (!absorbable) return undefined;
      nodes.add(latest!);
      continue;
    }
    const readOnlyHere = absorbable && index.outputs(latest!).every(
      (v) => !index.isGraphOutput(v) && index.consumersOf(v).every((c) => nodes.has(c.node)),
    );
    if (!readOnlyHere) break;
    nodes.add(latest!);
  }
  const source = [...externalActivationInputs(index, nodes)][0]!;
  // Forward: absorb consumers that read only the region and its source, keeping one escaping value.
  let grown = true;
  while (grown && nodes.size < MAX_REGION) {
    grown = false;
    const produced = producedBy(index, nodes);
    for (const value of produced) {
      for (const { node } of index.consumersOf(value)) {
        if (nodes.has(node) || claimed.has(node) || !isPointwise(index, node)) continue;
        if (!index.activationInputs(node).every((v) => produced.has(v) || v === source)) continue;
        const trial = new Set(nodes).add(node);
        if (escapingValues(index, trial).length !== 1) continue;
        nodes.add(node);
        grown = true;
        break;
      }
      if (grown) break;
    }
  }
  const escaping = escapingValues(index, nodes);
  if (escaping.length !== 1) return undefined;
  return { nodes, source, output: escaping[0]! };
}

function evaluate(index: ModelIndex, region: Region, x: number): number {
  const values = new Map<string, number>([[region.source, x]]);
  for (const n of index.order) {
    if (!region.nodes.has(n)) continue;
    const args = index.inputs(n).map((v) => (v ? (values.get(v) ?? index.scalar(v)) : undefined));
    // Trailing optional inputs may be absent; pass them as undefined so defaults apply.
    const result = SCALAR_OPS[index.opType(n)]!(args as number[], index.node(n));
    values.set(index.outputs(n)[0]!, result);
  }
  return values.get(region.output)!;
}

function identify(index: ModelIndex, region: Region): ActivationKind | undefined {
  const outputs = GRID.map((x) => evaluate(index, region, x));
  for (const { kind, f } of REFERENCE_ACTIVATIONS) {
    const matches = GRID.every((x, k) => Math.abs(outputs[k]! - f(x)) <= 1e-4 * (1 + Math.abs(f(x))));
    if (matches) return kind as ActivationKind;
  }
  return undefined;
}

export const matchActivationRegions: PatternMatcher = (index, claimed) => {
  const matches: OpMatch[] = [];
  const taken = new Set(claimed);
  for (const anchor of index.order) {
    if (taken.has(anchor) || !ANCHORS.has(index.opType(anchor)) || !isPointwise(index, anchor)) continue;
    if (index.activationInputs(anchor).length === 0) continue;
    const region = growRegion(index, anchor, taken);
    if (!region) continue;
    const kind = identify(index, region);
    if (!kind) continue;
    const nodes = index.order.filter((n) => region.nodes.has(n));
    matches.push({ kind, anchor: nodes[nodes.length - 1]!, nodes, params: [], attrs: {} });
    for (const n of nodes) taken.add(n);
  }
  return matches;
};
