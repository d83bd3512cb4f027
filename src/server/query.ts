/** Query parameters of the API, checked strictly: an unknown or malformed parameter is a 400, not ignored. */
import { DEFAULT_PREDICT_OPTIONS } from '../api/predict.js';
import { parseNumber } from '../cli/options.js';
import { HttpError } from './http-errors.js';

type Query = Record<string, string | string[] | undefined>;

export interface PredictQuery {
  ghn?: string;
  seed: number;
  noise: number;
  orthogonalize: boolean;
  fromLayer: number;
  fitHead: boolean;
  mix: number | 'auto';
  validate?: boolean;
}

function single(query: Query, key: string): string | undefined {
  const v = query[key];
  if (Array.isArray(v)) throw new HttpError(400, 'bad-option', `query parameter ${key} is given ${v.length} times`);
  return v;
}

function checkKnown(query: Query, known: readonly string[]): void {
  const unknown = Object.keys(query).filter((k) => !known.includes(k));
  if (unknown.length) throw new HttpError(400, 'bad-option', `unknown query parameter(s) ${unknown.join(', ')}; expected ${known.join(', ')}`);
}

function flag(query: Query, key: string): boolean | undefined {
  const v = single(query, key);
  if (v === undefined) return undefined;
  if (['1', 'true', 'yes', ''].includes(v)) return true;
  if (['0', 'false', 'no'].includes(v)) return false;
  throw new HttpError(400, 'bad-option', `${key} must be 1/true or 0/false, got "${v}"`);
}

function number(query: Query, key: string, fallback: number, limits: { integer?: boolean; min?: number; max?: number }): number {
  const v = single(query, key);
  return v === undefined ? fallback : parseNumber(v, key, limits);
}

export function parsePredictQuery(query: Query): PredictQuery {
  checkKnown(query, ['ghn', 'seed', 'noise', 'orth', 'fromLayer', 'fitHead', 'mix', 'validate', 'name']);
  const d = DEFAULT_PREDICT_OPTIONS;
  return {
    ghn: single(query, 'ghn'),
    seed: number(query, 'seed', d.seed, { integer: true, min: 0 }),
    noise: number(query, 'noise', d.noise, { min: 0 }),
    orthogonalize: flag(query, 'orth') ?? d.orthogonalize,
    fromLayer: number(query, 'fromLayer', d.fromLayer, { integer: true, min: 0 }),
    fitHead: flag(query, 'fitHead') ?? d.fitHead,
    mix: single(query, 'mix') === undefined || single(query, 'mix') === 'auto' ? d.mix : number(query, 'mix', 0, { min: 0, max: 1 }),
    validate: flag(query, 'validate'),
  };
}

export function parseInspectQuery(query: Query): { graph: boolean } {
  checkKnown(query, ['graph', 'name']);
  return { graph: flag(query, 'graph') ?? false };
}

export function parseSamplesQuery(query: Query, fallback: number): { count: number } {
  checkKnown(query, ['count']);
  return { count: number(query, 'count', fallback, { integer: true, min: 1 }) };
}
