/**
 * Fields not in our schema survive decoding as raw bytes in each message's `$unknowns` (protobufjs
 * keeps them when the reader's discardUnknown is off) and are re-emitted after the known fields.
 * This counts them, e.g. to warn that a model uses a newer ONNX IR than ghn knows.
 */
import type { ModelProto } from './types.js';

export function unknownFieldCount(model: ModelProto): number {
  let count = 0;
  const seen = new Set<object>();
  const visit = (value: unknown): void => {
    if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value) || seen.has(value)) return;
    seen.add(value);
    if (Array.isArray(value)) {
      value.forEach(visit);
      return;
    }
    const unknowns = (value as { $unknowns?: unknown[] }).$unknowns;
    if (Array.isArray(unknowns)) count += unknowns.length;
    // rawData is bytes, never a message; reading it could also load a lazy tensor from disk
    for (const key of Object.keys(value)) if (key !== 'rawData') visit((value as Record<string, unknown>)[key]);
  };
  visit(model);
  return count;
}
