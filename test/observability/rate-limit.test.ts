import { describe, expect, it } from 'vitest';
import { KeyRateLimiter } from '../../src/observability/rate-limit.js';
import { S3Error } from '../../src/errors.js';

function limiter(requestsPerSecond: number, burst: number) {
  let now = 0;
  const limited: string[] = [];
  const instance = new KeyRateLimiter(
    { requestsPerSecond, burst },
    () => now,
    (id) => limited.push(id),
  );
  return {
    instance,
    limited,
    advance: (ms: number) => {
      now += ms;
    },
    admitted: (id: string) => {
      try {
        instance.admit(id);
        return true;
      } catch (error) {
        if (error instanceof S3Error && error.code === 'SlowDown') return false;
        throw error;
      }
    },
  };
}

describe('KeyRateLimiter', () => {
  it('allows a burst, then the sustained rate', () => {
    const l = limiter(10, 3);
    expect([1, 2, 3, 4].map(() => l.admitted('a'))).toEqual([true, true, true, false]);
    l.advance(99);
    expect(l.admitted('a')).toBe(false);
    l.advance(1); // 100 ms at 10/s = one token
    expect(l.admitted('a')).toBe(true);
    expect(l.admitted('a')).toBe(false);
    expect(l.limited).toEqual(['a', 'a', 'a']);
  });

  it('limits each key separately', () => {
    const l = limiter(1, 1);
    expect(l.admitted('a')).toBe(true);
    expect(l.admitted('a')).toBe(false);
    expect(l.admitted('b')).toBe(true);
  });

  it('never accumulates more than the burst while idle', () => {
    const l = limiter(100, 2);
    l.advance(60_000);
    expect([1, 2, 3].map(() => l.admitted('a'))).toEqual([true, true, false]);
  });

  it('refuses with SlowDown (503), a Retry-After and a message naming the setting', () => {
    const l = limiter(0.5, 1);
    l.instance.admit('a');
    let refused: unknown;
    try {
      l.instance.admit('a');
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(S3Error);
    const error = refused as S3Error;
    expect(error.status).toBe(503);
    expect(error.headers['retry-after']).toBe('2');
    expect(error.message).toContain('KEYGATE_RATE_LIMIT');
  });

  it('forgets fully refilled keys once many are tracked', () => {
    const l = limiter(1000, 1);
    for (let i = 0; i < 10_000; i++) l.instance.admit(`k${i}`);
    expect(l.instance.trackedKeys).toBe(10_000);
    l.advance(10);
    l.instance.admit('fresh');
    expect(l.instance.trackedKeys).toBe(1);
  });
});

describe('KeyRateLimiter with keys that have their own limit', () => {
  const own = (requestsPerSecond: number, burst: number) => Object.freeze({ requestsPerSecond, burst });

  function admitted(instance: KeyRateLimiter, id: string, limit: ReturnType<typeof own> | null): boolean {
    try {
      instance.admit(id, limit);
      return true;
    } catch (error) {
      if (error instanceof S3Error && error.code === 'SlowDown') {
        expect(error.message).toContain(limit === null ? 'KEYGATE_RATE_LIMIT' : 'its own limit');
        return false;
      }
      throw error;
    }
  }

  it("limits a key by its own limit even when the gateway's is off, and leaves other keys alone", () => {
    let now = 0;
    const instance = new KeyRateLimiter(null, () => now);
    const slow = own(1, 2);
    expect([1, 2, 3].map(() => admitted(instance, 'slow', slow))).toEqual([true, true, false]);
    for (let i = 0; i < 1000; i++) expect(admitted(instance, 'free', null)).toBe(true);
    now += 1000;
    expect(admitted(instance, 'slow', slow)).toBe(true);
    expect(admitted(instance, 'slow', slow)).toBe(false);
  });

  it("uses the key's own limit over the gateway's, in both directions", () => {
    let now = 0;
    const instance = new KeyRateLimiter({ requestsPerSecond: 1, burst: 1 }, () => now);
    const generous = own(1000, 50);
    expect(Array.from({ length: 50 }, () => admitted(instance, 'vip', generous)).every(Boolean)).toBe(true);
    expect(admitted(instance, 'vip', generous)).toBe(false);
    expect([1, 2].map(() => admitted(instance, 'plain', null))).toEqual([true, false]);
    const strict = own(0.5, 1);
    expect([1, 2].map(() => admitted(instance, 'strict', strict))).toEqual([true, false]);
    now += 1999;
    expect(admitted(instance, 'strict', strict)).toBe(false);
    now += 1;
    expect(admitted(instance, 'strict', strict)).toBe(true);
  });
});

describe('KeyRateLimiter across re-reads of the key', () => {
  it('keeps a key’s bucket when its limit comes back as a new but equal object (the key cache is refilled after any database change)', () => {
    let now = 0;
    const instance = new KeyRateLimiter(null, () => now);
    const admitted = (limit: { requestsPerSecond: number; burst: number }) => {
      try {
        instance.admit('k', limit);
        return true;
      } catch {
        return false;
      }
    };
    expect(admitted({ requestsPerSecond: 0.01, burst: 1 })).toBe(true);
    expect(admitted({ requestsPerSecond: 0.01, burst: 1 })).toBe(false);
    expect(admitted({ requestsPerSecond: 0.01, burst: 1 })).toBe(false);
    // A changed limit starts afresh.
    expect(admitted({ requestsPerSecond: 0.01, burst: 2 })).toBe(true);
    now += 1;
  });
});
