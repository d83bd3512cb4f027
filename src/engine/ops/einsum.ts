/**
 * Einsum (opset ≥ 12) as transposes, reshapes, sums and batched matMuls, so tfjs differentiates it
 * and wasm runs the products on its fast kernel. Covers explicit and implicit outputs, ellipses
 * and any number of operands (contracted pairwise, left to right); a letter repeated within one
 * operand (a diagonal or trace) is refused. Exporters write it for attention in e.g. MaxViT:
 * 'bghij,bghjd->bghid' and 'bghid,bghjd->bghij'.
 */
import * as tf from '../tfjs-core.js';
import { GhnError } from '../../errors.js';
import { attrString } from './attrs.js';
import { nchw } from './common.js';
import type { OpContext, OpOutput, OpTable } from './types.js';

/** One operand: its tensor and one label per axis. */
interface Term {
  t: tf.Tensor;
  labels: string[];
}

/** Labels standing for ellipsis axes (never letters, so they cannot clash). */
const ellipsisLabel = (k: number) => `…${k}`;

function expandEllipsis(spec: string, rank: number, ellipsisRank: number): string[] {
  const at = spec.indexOf('...');
  const letters = spec.replace('...', '').split('');
  if (at < 0) {
    if (letters.length !== rank) throw new GhnError('bad-input', `Einsum term '${spec}' has ${letters.length} labels for a rank-${rank} input`);
    return letters;
  }
  const before = spec.slice(0, at).split('');
  const after = spec.slice(at + 3).split('');
  const own = rank - before.length - after.length;
  // Ellipsis axes are aligned from the right across operands, as in numpy broadcasting.
  const dots = Array.from({ length: own }, (_, k) => ellipsisLabel(ellipsisRank - own + k));
  return [...before, ...dots, ...after];
}

function parse(equation: string, ranks: number[]): { inputs: string[][]; output: string[] } {
  const eq = equation.replace(/\s+/g, '');
  const [lhs, rhs] = eq.split('->');
  const specs = lhs!.split(',');
  if (specs.length !== ranks.length) throw new GhnError('bad-input', `Einsum '${equation}' names ${specs.length} operands, the node has ${ranks.length}`);
  const ellipsisRank = Math.max(0, ...specs.map((s, i) => (s.includes('...') ? ranks[i]! - (s.length - 3) : 0)));
  const inputs = specs.map((s, i) => expandEllipsis(s, ranks[i]!, ellipsisRank));
  for (const labels of inputs) {
    if (new Set(labels).size !== labels.length) throw new GhnError('unsupported', `Einsum '${equation}': a label repeated within one operand (diagonal) is not supported`);
  }
  const dots = Array.from({ length: ellipsisRank }, (_, k) => ellipsisLabel(k));
  if (rhs !== undefined) return { inputs, output: expandEllipsis(rhs, rhs.replace('...', '').length + (rhs.includes('...') ? ellipsisRank : 0), ellipsisRank) };
  // Implicit output: ellipsis axes, then the letters used exactly once, in alphabetical order.
  const counts = new Map<string, number>();
  for (const labels of inputs) for (const l of labels) if (!l.startsWith('…')) counts.set(l, (counts.get(l) ?? 0) + 1);
  return { inputs, output: [...dots, ...[...counts].filter(([, c]) => c === 1).map(([l]) => l).sort()] };
}

/** Sums the axes whose labels are not in `keep`. */
function sumOut(term: Term, keep: Set<string>): Term {
  const axes = term.labels.flatMap((l, i) => (keep.has(l) ? [] : [i]));
  if (axes.length === 0) return term;
  return { t: tf.sum(term.t, axes), labels: term.labels.filter((l) => keep.has(l)) };
}

function permuteTo(term: Term, order: string[]): tf.Tensor {
  const perm = order.map((l) => term.labels.indexOf(l));
  return perm.every((p, i) => p === i) ? term.t : tf.transpose(term.t, perm);
}

const sizeOf = (term: Term, label: string) => term.t.shape[term.labels.indexOf(label)]!;
const product = (xs: number[]) => xs.reduce((a, b) => a * b, 1);

/** a·b contracted over their shared labels not in `keep`; shared labels in `keep` are batch axes. */
function contract(a: Term, b: Term, keep: Set<string>): Term {
  const inB = new Set(b.labels);
  const batch = a.labels.filter((l) => inB.has(l) && keep.has(l));
  const summed = a.labels.filter((l) => inB.has(l) && !keep.has(l));
  const left = a.labels.filter((l) => !inB.has(l));
  const right = b.labels.filter((l) => !a.labels.includes(l));
  // Size-1 batch axes on one side broadcast against the other.
  const batchSizes = batch.map((l) => Math.max(sizeOf(a, l), sizeOf(b, l)));
  const spread = (term: Term, order: string[]) => {
    const t = permuteTo(term, order);
    const target = order.map((l) => (batch.includes(l) ? batchSizes[batch.indexOf(l)]! : sizeOf(term, l)));
    return t.shape.join() === target.join() ? t : tf.broadcastTo(t, target);
  };
  const [nB, nL, nK, nR] = [product(batchSizes), product(left.map((l) => sizeOf(a, l))), product(summed.map((l) => sizeOf(a, l))), product(right.map((l) => sizeOf(b, l)))];
  const a3 = tf.reshape(spread(a, [...batch, ...left, ...summed]), [nB, nL, nK]) as tf.Tensor3D;
  const b3 = tf.reshape(spread(b, [...batch, ...summed, ...right]), [nB, nK, nR]) as tf.Tensor3D;
  // A single batch is a plain 2-D product (wasm runs batched products more slowly).
  const y = nB === 1
    ? tf.matMul(tf.reshape(a3, [nL, nK]) as tf.Tensor2D, tf.reshape(b3, [nK, nR]) as tf.Tensor2D)
    : tf.matMul(a3, b3);
  const labels = [...batch, ...left, ...right];
  const shape = [...batchSizes, ...left.map((l) => sizeOf(a, l)), ...right.map((l) => sizeOf(b, l))];
  return { t: tf.reshape(y, shape), labels };
}

function einsum(ctx: OpContext): OpOutput[] {
  const operands = Array.from({ length: ctx.inputCount }, (_, i) => nchw(ctx, i));
  const { inputs, output } = parse(attrString(ctx.node, 'equation', ''), operands.map((t) => t.rank));
  const terms: Term[] = operands.map((t, i) => ({ t, labels: inputs[i]! }));
  const needed = (from: number) => new Set([...output, ...terms.slice(from).flatMap((t) => t.labels)]);
  // Labels used by one operand only and absent from the output are summed away first.
  let acc = sumOut(terms[0]!, needed(1));
  for (let i = 1; i < terms.length; i++) {
    const keep = needed(i + 1);
    const next = sumOut(terms[i]!, new Set([...keep, ...acc.labels]));
    acc = contract(sumOut(acc, new Set([...keep, ...next.labels])), next, keep);
  }
  acc = sumOut(acc, new Set(output));
  return [{ t: permuteTo(acc, output), nhwc: false }];
}

export const einsumOps: OpTable = {
  Einsum: einsum,
};
