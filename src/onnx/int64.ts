/**
 * int64 fields decode to long.js `Long` values (or plain numbers when set by hand). These helpers
 * read them without silently losing precision.
 */
import protobuf from 'protobufjs';
import type Long from 'long';
import { GhnError } from '../errors.js';
import type { Int64 } from './types.js';

/** The value as a JS number; throws GhnError('unsupported') if it is not exactly representable. */
export function toNumber(v: Int64 | bigint | null | undefined, what = 'int64 value'): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new GhnError('unsupported', `${what} ${v} is beyond the exact range of a JS number`);
    }
    return Number(v);
  }
  // Long.toNumber rounds beyond 2^53, and a rounded result is never a safe integer.
  const n = v.toNumber();
  if (!Number.isSafeInteger(n)) {
    throw new GhnError('unsupported', `${what} ${v.toString()} is beyond the exact range of a JS number`);
  }
  return n;
}

/** The exact value as a bigint (unsigned Longs stay unsigned). */
export function toBigInt(v: Int64 | bigint | null | undefined): bigint {
  if (v === null || v === undefined) return 0n;
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return BigInt(v);
  return BigInt(v.toString());
}

/** A signed Long for writing an int64 field. */
export function toInt64(v: number | bigint): Long {
  // protobufjs's own Long class, so values it creates and values we create are interchangeable.
  const LongClass = protobuf.util.Long as unknown as typeof Long;
  if (typeof v === 'bigint') return LongClass.fromString(v.toString(), false);
  if (!Number.isSafeInteger(v)) throw new GhnError('bad-input', `int64 value ${v} is not a safe integer`);
  return LongClass.fromNumber(v, false);
}

/** True if the field holds a value different from zero. */
export function isNonZero(v: Int64 | null | undefined): boolean {
  if (v === null || v === undefined) return false;
  return typeof v === 'number' ? v !== 0 : !v.isZero();
}
