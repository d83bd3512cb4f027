import { GhnError } from '../errors.js';

/** Parses a numeric command-line option, with a usage error that names it. */
export function parseNumber(text: string, option: string, limits: { integer?: boolean; min?: number; max?: number } = {}): number {
  const value = Number(text);
  const bad =
    text.trim() === '' || !Number.isFinite(value) || (limits.integer && !Number.isInteger(value)) ||
    (limits.min !== undefined && value < limits.min) || (limits.max !== undefined && value > limits.max);
  if (bad) {
    const kind = limits.integer ? 'an integer' : 'a number';
    const range = limits.min !== undefined && limits.max !== undefined ? ` in [${limits.min}, ${limits.max}]`
      : limits.min !== undefined ? ` ≥ ${limits.min}` : limits.max !== undefined ? ` ≤ ${limits.max}` : '';
    throw new GhnError('usage', `${option} must be ${kind}${range}, got "${text}"`);
  }
  return value;
}
