/**
 * Per-key rate limiting: one token bucket per access key id. A key may burst up to `burst`
 * requests, then gets `requestsPerSecond` sustained; over that it is refused with S3's SlowDown
 * (503), which every S3 SDK retries with backoff. State is in memory, per gateway process.
 */
import type { RateLimitConfig } from '../config.js';
import { S3Error } from '../errors.js';

interface Bucket {
  tokens: number;
  /** performance.now() of the last refill. */
  refilledAt: number;
}

/** Above this many tracked keys, buckets that have refilled completely are dropped (they equal a fresh one). */
const SWEEP_THRESHOLD = 10_000;

export class KeyRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(
    private readonly limit: RateLimitConfig,
    private readonly now: () => number = () => performance.now(),
    private readonly onLimited: (accessKeyId: string) => void = () => undefined,
  ) {
    this.perMs = limit.requestsPerSecond / 1000;
  }

  /** Takes one request's token for the key, or throws SlowDown saying when to retry. */
  admit(accessKeyId: string): void {
    const now = this.now();
    let bucket = this.buckets.get(accessKeyId);
    if (bucket === undefined) {
      if (this.buckets.size >= SWEEP_THRESHOLD) this.sweep(now);
      bucket = { tokens: this.limit.burst, refilledAt: now };
      this.buckets.set(accessKeyId, bucket);
    } else {
      bucket.tokens = Math.min(this.limit.burst, bucket.tokens + (now - bucket.refilledAt) * this.perMs);
      bucket.refilledAt = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return;
    }
    this.onLimited(accessKeyId);
    const retryAfterSeconds = Math.max(1, Math.ceil((1 - bucket.tokens) / this.perMs / 1000));
    throw new S3Error(
      'SlowDown',
      `This access key is limited to ${this.limit.requestsPerSecond} requests per second (burst ${this.limit.burst}); retry after a short backoff or ask the operator to raise KEYGATE_RATE_LIMIT.`,
      { headers: { 'retry-after': String(retryAfterSeconds) } },
    );
  }

  /** Number of keys with state (for tests and metrics). */
  get trackedKeys(): number {
    return this.buckets.size;
  }

  private sweep(now: number): void {
    for (const [id, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.refilledAt) * this.perMs >= this.limit.burst) this.buckets.delete(id);
    }
  }
}
