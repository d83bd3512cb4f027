import type { ModelIndex } from '../model-index.js';
import type { OpAttributes } from '../types.js';
import type { BufferRole, OpKind, ParamRole } from '../vocabulary.js';

/** A static input of a claimed node that holds a parameter or buffer. */
export interface ParamUse {
  readonly node: number;
  readonly input: number;
  readonly role: ParamRole | BufferRole;
}

/** A group of ONNX nodes recognized as one canonical op. */
export interface OpMatch {
  readonly kind: OpKind;
  /** The node the op is named after. */
  readonly anchor: number;
  readonly nodes: readonly number[];
  readonly attrs: OpAttributes;
  readonly params: readonly ParamUse[];
}

/** A recognizer of a multi-node pattern; it must not claim nodes already in `claimed`. */
export type PatternMatcher = (index: ModelIndex, claimed: ReadonlySet<number>) => OpMatch[];

/** The single consumer of `value`, if it has exactly one. */
export function soleConsumer(index: ModelIndex, value: string): number | undefined {
  const consumers = index.consumersOf(value);
  return consumers.length === 1 && !index.isGraphOutput(value) ? consumers[0]!.node : undefined;
}

/** The other input of a binary node, given one of its inputs. */
export function otherInput(index: ModelIndex, node: number, value: string): string | undefined {
  const inputs = index.inputs(node);
  if (inputs.length !== 2) return undefined;
  if (inputs[0] === value) return inputs[1];
  if (inputs[1] === value) return inputs[0];
  return undefined;
}

/** Consumers of `value` with the given op type that are not yet claimed. */
export function consumersOfType(index: ModelIndex, value: string, opType: string, claimed: ReadonlySet<number>): number[] {
  return index.consumersOf(value).map((c) => c.node).filter((n) => !claimed.has(n) && index.opType(n) === opType);
}

export function staticElementCount(index: ModelIndex, value: string): number | undefined {
  const src = index.isActivation(value) ? undefined : index.traceStatic(value);
  if (!src) return undefined;
  return (src.tensor.dims ?? []).reduce<number>((a, d) => a * Number(d), 1);
}

/**
 * A matcher that tries `matchAt` at every unclaimed node of one operator type, in topological
 * order; each match claims its nodes before the next attempt.
 */
export function anchoredMatcher(
  opType: string,
  matchAt: (index: ModelIndex, node: number, taken: ReadonlySet<number>) => OpMatch | undefined,
): PatternMatcher {
  return (index, claimed) => {
    const matches: OpMatch[] = [];
    const taken = new Set(claimed);
    for (const i of index.order) {
      if (taken.has(i) || index.opType(i) !== opType) continue;
      const match = matchAt(index, i, taken);
      if (!match) continue;
      matches.push(match);
      for (const n of match.nodes) taken.add(n);
    }
    return matches;
  };
}
