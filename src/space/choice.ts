/** Sampling helpers over a seeded Rng, used by the family samplers. */
import { randomInt, type Rng } from '../util/random.js';

export function pick<T>(rng: Rng, options: readonly T[]): T {
  return options[randomInt(rng, options.length)];
}

/** Integer uniform on [lo, hi] (inclusive). */
export function intBetween(rng: Rng, lo: number, hi: number): number {
  return lo + randomInt(rng, hi - lo + 1);
}

export function chance(rng: Rng, p: number): boolean {
  return rng() < p;
}

/** Pick a key of `weights` with probability proportional to its weight. */
export function weighted<K extends string>(rng: Rng, weights: Readonly<Partial<Record<K, number>>>): K {
  const keys = Object.keys(weights) as K[];
  const total = keys.reduce((s, k) => s + (weights[k] ?? 0), 0);
  let u = rng() * total;
  for (const k of keys) {
    u -= weights[k] ?? 0;
    if (u < 0) return k;
  }
  return keys[keys.length - 1];
}

/** BN form of a normalized network: PRESERVE-style BN nodes mostly, folded into convs sometimes. */
export function sampleBnForm(rng: Rng): 'bn' | 'folded' {
  return chance(rng, 0.25) ? 'folded' : 'bn';
}

/** Round to a multiple of `divisor` (at least `divisor`), like torchvision's _make_divisible. */
export function makeDivisible(value: number, divisor: number): number {
  const rounded = Math.max(divisor, Math.floor(value / divisor + 0.5) * divisor);
  return rounded < 0.9 * value ? rounded + divisor : rounded;
}
