/**
 * Scalar semantics of ONNX elementwise operators, used to recognize a decomposed activation
 * function by evaluating it (see activation-region.ts) instead of trusting node names.
 */
import { attrFloat } from '../../onnx/attributes.js';
import type { NodeProto } from '../../onnx/types.js';

/** erf with |error| < 1.2e-7 (Numerical Recipes' erfc Chebyshev fit). */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const poly =
    -z * z - 1.26551223 +
    t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const erfc = t * Math.exp(poly);
  return x >= 0 ? 1 - erfc : erfc - 1;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const softplus = (x: number) => (x > 30 ? x : Math.log1p(Math.exp(x)));

type ScalarOp = (args: readonly number[], node: NodeProto) => number;

/** Elementwise operators that a decomposed activation may contain, by ONNX op type. */
export const SCALAR_OPS: Readonly<Record<string, ScalarOp>> = {
  Add: ([a, b]) => a! + b!,
  Sub: ([a, b]) => a! - b!,
  Mul: ([a, b]) => a! * b!,
  Div: ([a, b]) => a! / b!,
  Pow: ([a, b]) => Math.pow(a!, b!),
  Min: (args) => Math.min(...args),
  Max: (args) => Math.max(...args),
  Neg: ([a]) => -a!,
  Abs: ([a]) => Math.abs(a!),
  Exp: ([a]) => Math.exp(a!),
  Log: ([a]) => Math.log(a!),
  Sqrt: ([a]) => Math.sqrt(a!),
  Reciprocal: ([a]) => 1 / a!,
  Erf: ([a]) => erf(a!),
  Tanh: ([a]) => Math.tanh(a!),
  Sigmoid: ([a]) => sigmoid(a!),
  Softplus: ([a]) => softplus(a!),
  Relu: ([a]) => Math.max(0, a!),
  LeakyRelu: ([a], n) => (a! >= 0 ? a! : a! * (attrFloat(n, 'alpha') ?? 0.01)),
  Elu: ([a], n) => (a! >= 0 ? a! : (attrFloat(n, 'alpha') ?? 1) * Math.expm1(a!)),
  HardSigmoid: ([a], n) => Math.max(0, Math.min(1, (attrFloat(n, 'alpha') ?? 0.2) * a! + (attrFloat(n, 'beta') ?? 0.5))),
  HardSwish: ([a]) => a! * Math.max(0, Math.min(1, a! / 6 + 0.5)),
  // Clip bounds are inputs from opset 11 on, attributes before; absent bounds are infinite.
  Clip: ([a, lo, hi], n) =>
    Math.min(hi ?? attrFloat(n, 'max') ?? Infinity, Math.max(lo ?? attrFloat(n, 'min') ?? -Infinity, a!)),
};

/** Reference activation functions, checked in order (first match wins). */
export const REFERENCE_ACTIVATIONS: ReadonlyArray<{ kind: string; f: (x: number) => number }> = [
  { kind: 'relu', f: (x) => Math.max(0, x) },
  { kind: 'relu6', f: (x) => Math.min(6, Math.max(0, x)) },
  { kind: 'sigmoid', f: sigmoid },
  { kind: 'tanh', f: Math.tanh },
  { kind: 'hardsigmoid', f: (x) => Math.max(0, Math.min(1, x / 6 + 0.5)) },
  { kind: 'hardswish', f: (x) => x * Math.max(0, Math.min(1, x / 6 + 0.5)) },
  { kind: 'silu', f: (x) => x * sigmoid(x) },
  { kind: 'gelu', f: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)) },
  { kind: 'gelu', f: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x))) },
  { kind: 'softplus', f: softplus },
  { kind: 'mish', f: (x) => x * Math.tanh(softplus(x)) },
  { kind: 'elu', f: (x) => (x >= 0 ? x : Math.expm1(x)) },
];
