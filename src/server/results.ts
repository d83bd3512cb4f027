/**
 * Predicted files held in memory for the JSON variant of /v1/predict, so a page can show the report
 * first and download later. Bounded by count, bytes and age; the oldest go first. This is the one
 * piece of state in the service (a load balancer needs sticky sessions for it).
 */
import { randomBytes } from 'node:crypto';

export interface StoredResult {
  bytes: Uint8Array;
  filename: string;
  created: number;
}

export interface ResultLimits {
  maxCount: number;
  maxBytes: number;
  ttlMs: number;
}

export class ResultStore {
  // Map iteration order is insertion order: the first entry is the oldest.
  private readonly entries = new Map<string, StoredResult>();
  private heldBytes = 0;

  constructor(private readonly limits: ResultLimits, private readonly now: () => number = Date.now) {}

  get count(): number {
    this.expire();
    return this.entries.size;
  }

  get bytes(): number {
    this.expire();
    return this.heldBytes;
  }

  /** Stores a result and returns its unguessable id, or undefined if it alone exceeds the byte budget. */
  put(bytes: Uint8Array, filename: string): string | undefined {
    if (bytes.length > this.limits.maxBytes) return undefined;
    this.expire();
    while (this.entries.size >= this.limits.maxCount || this.heldBytes + bytes.length > this.limits.maxBytes) this.evictOldest();
    const id = randomBytes(16).toString('hex');
    this.entries.set(id, { bytes, filename, created: this.now() });
    this.heldBytes += bytes.length;
    return id;
  }

  get(id: string): StoredResult | undefined {
    this.expire();
    return this.entries.get(id);
  }

  private evictOldest(): void {
    const [id, entry] = this.entries.entries().next().value as [string, StoredResult];
    this.entries.delete(id);
    this.heldBytes -= entry.bytes.length;
  }

  private expire(): void {
    const cutoff = this.now() - this.limits.ttlMs;
    for (const entry of this.entries.values()) {
      if (entry.created > cutoff) break;
      this.evictOldest();
    }
  }
}
