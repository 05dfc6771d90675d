/**
 * Per-key rate limiting: one token bucket per access key id. A key may burst up to `burst`
 * requests, then gets `requestsPerSecond` sustained; over that it is refused with S3's SlowDown
 * (503), which every S3 SDK retries with backoff. The limit is the key's own when it has one
 * (`keys create --rate-limit`), otherwise the gateway's (KEYGATE_RATE_LIMIT), otherwise none.
 * State is in memory, per gateway process.
 */
import type { RateLimitConfig } from '../config.js';
import { S3Error } from '../errors.js';
import type { KeyRateLimit } from '../keys/model.js';

interface Bucket {
  tokens: number;
  /** performance.now() of the last refill. */
  refilledAt: number;
  limit: RateLimitConfig;
}

/** Above this many tracked keys, buckets that have refilled completely are dropped (they equal a fresh one). */
const SWEEP_THRESHOLD = 10_000;

export class KeyRateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  /** `limit`: the gateway's limit for keys without their own; null = such keys are not limited. */
  constructor(
    private readonly limit: RateLimitConfig | null,
    private readonly now: () => number = () => performance.now(),
    private readonly onLimited: (accessKeyId: string) => void = () => undefined,
  ) {}

  /** Takes one request's token for the key, or throws SlowDown saying when to retry. */
  admit(accessKeyId: string, own: KeyRateLimit | null = null): void {
    const limit = own ?? this.limit;
    if (limit === null) return;
    const now = this.now();
    const perMs = limit.requestsPerSecond / 1000;
    let bucket = this.buckets.get(accessKeyId);
    // By value: the key's record (and with it this object) is re-read after every database change.
    if (bucket === undefined || bucket.limit.requestsPerSecond !== limit.requestsPerSecond || bucket.limit.burst !== limit.burst) {
      if (bucket === undefined && this.buckets.size >= SWEEP_THRESHOLD) this.sweep(now);
      bucket = { tokens: limit.burst, refilledAt: now, limit };
      this.buckets.set(accessKeyId, bucket);
    } else {
      bucket.tokens = Math.min(limit.burst, bucket.tokens + (now - bucket.refilledAt) * perMs);
      bucket.refilledAt = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return;
    }
    this.onLimited(accessKeyId);
    const retryAfterSeconds = Math.max(1, Math.ceil((1 - bucket.tokens) / perMs / 1000));
    const whose = own === null ? 'ask the operator to raise KEYGATE_RATE_LIMIT' : 'this key has its own limit; ask the operator for a key with a higher one';
    throw new S3Error(
      'SlowDown',
      `This access key is limited to ${limit.requestsPerSecond} requests per second (burst ${limit.burst}); retry after a short backoff, or ${whose}.`,
      { headers: { 'retry-after': String(retryAfterSeconds) } },
    );
  }

  /** Number of keys with state (for tests and metrics). */
  get trackedKeys(): number {
    return this.buckets.size;
  }

  private sweep(now: number): void {
    for (const [id, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.refilledAt) * (bucket.limit.requestsPerSecond / 1000) >= bucket.limit.burst) this.buckets.delete(id);
    }
  }
}
