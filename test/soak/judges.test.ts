/**
 * The soak's verdicts can fail: the revocation ledger flags a request accepted after its key's
 * deletion, and the memory criterion flags a per-request leak of a few KB while passing a steady,
 * noisy RSS. (The soak itself can only show them passing against a healthy gateway.)
 */
import { describe, expect, it } from 'vitest';
import { Ledger, type ResponseFacts } from './ledger.js';
import { RSS_GROWTH_TOLERANCE_BYTES, rssTrend, type RssSample } from './memory-trend.js';

const KEY = 'rs_ak_live_revoked';
const OTHER = 'rs_ak_live_other';

function facts(overrides: Partial<ResponseFacts>): ResponseFacts {
  return { accessKeyId: KEY, operation: 'GetObject', expectation: 'success', status: 200, errorCode: null, startedAt: 0, endedAt: 1, ...overrides };
}

describe('revocation ledger', () => {
  function revokedAt(completedAt: number): Ledger {
    const ledger = new Ledger();
    ledger.revocationRequested(KEY, 'role', 'cli', completedAt - 100);
    ledger.revocationCompleted(KEY, completedAt);
    return ledger;
  }

  it('flags a 2xx for a request started after the deletion completed', () => {
    const ledger = revokedAt(1000);
    expect(ledger.judge(facts({ startedAt: 1001, endedAt: 1010 })).category).toBe('VIOLATION accepted-after-revocation');
    expect(ledger.violationCount).toBe(1);
  });

  it('requires InvalidAccessKeyId, not any refusal, after the deletion', () => {
    const ledger = revokedAt(1000);
    expect(ledger.judge(facts({ startedAt: 1001, status: 403, errorCode: 'InvalidAccessKeyId' })).category).toBe('refused-after-revocation');
    expect(ledger.judge(facts({ startedAt: 1001, status: 403, errorCode: 'SignatureDoesNotMatch' })).category).toBe('VIOLATION wrong-refusal-after-revocation');
    expect(ledger.revocations.get(KEY)!.probedAfter).toBe(2);
  });

  it('lets a request in flight across the deletion go either way', () => {
    const ledger = revokedAt(1000);
    expect(ledger.judge(facts({ startedAt: 950, endedAt: 1005 })).category).toBe('success');
    expect(ledger.judge(facts({ startedAt: 950, endedAt: 1005, status: 403, errorCode: 'InvalidAccessKeyId' })).category).toBe('refused-in-flight-revocation');
    expect(ledger.violationCount).toBe(0);
  });

  it('flags InvalidAccessKeyId for a key nobody deleted', () => {
    const ledger = revokedAt(1000);
    expect(ledger.judge(facts({ accessKeyId: OTHER, startedAt: 1001, status: 403, errorCode: 'InvalidAccessKeyId' })).category).toBe(
      'VIOLATION unexpected-status',
    );
  });

  it('flags 5xx, scope breaches and wrong refusals of scope', () => {
    const ledger = new Ledger();
    expect(ledger.judge(facts({ status: 502, errorCode: 'BadGateway' })).category).toBe('VIOLATION gateway-5xx');
    expect(ledger.judge(facts({ expectation: 'denied', status: 200 })).category).toBe('VIOLATION scope-breach');
    expect(ledger.judge(facts({ expectation: 'denied', status: 403, errorCode: 'AccessDenied' })).category).toBe('denied-by-scope');
    expect(ledger.judge(facts({ expectation: 'denied', status: 404, errorCode: 'NoSuchKey' })).category).toBe('VIOLATION unexpected-status');
  });

  it('judges a request after the deletion the same on every instance, and counts them per instance', () => {
    const ledger = revokedAt(1000);
    expect(ledger.judge(facts({ startedAt: 1001, status: 403, errorCode: 'InvalidAccessKeyId', instance: 0 })).category).toBe('refused-after-revocation');
    expect(ledger.judge(facts({ startedAt: 1002, status: 403, errorCode: 'InvalidAccessKeyId', instance: 2 })).category).toBe('refused-after-revocation');
    expect(ledger.judge(facts({ startedAt: 1003, instance: 2 })).category).toBe('VIOLATION accepted-after-revocation');
    expect([...ledger.revocations.get(KEY)!.probedAfterByInstance]).toEqual([
      [0, 1],
      [2, 2],
    ]);
    expect([ledger.requestsOn(0), ledger.requestsOn(1), ledger.requestsOn(2)]).toEqual([1, 0, 2]);
  });

  it('credits other keys that succeed right after a deletion', () => {
    const ledger = revokedAt(1000);
    ledger.judge(facts({ accessKeyId: OTHER, startedAt: 1500 }));
    ledger.judge(facts({ accessKeyId: OTHER, startedAt: 9000 }));
    expect(ledger.revocations.get(KEY)!.othersSucceededAfter).toBe(1);
  });
});

describe('memory trend', () => {
  const TOLERANCE = RSS_GROWTH_TOLERANCE_BYTES;
  const REQUESTS_PER_SECOND = 150;

  /** 60 samples 5 s apart: warm-up to 90 MB, then GC-like noise of +-6 MB, plus an optional leak. */
  function run(leakBytesPerRequest: number): RssSample[] {
    let seed = 42;
    const noise = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 12 * 1024 * 1024;
    return Array.from({ length: 60 }, (_, i) => {
      const seconds = i * 5;
      const requests = seconds * REQUESTS_PER_SECOND;
      const warmUp = Math.min(1, seconds / 60) * 40 * 1024 * 1024;
      return { at: seconds * 1000, rss: 50 * 1024 * 1024 + warmUp + noise() + leakBytesPerRequest * requests, requests };
    });
  }

  it('passes a steady, noisy RSS after warm-up', () => {
    const verdict = rssTrend(run(0), TOLERANCE);
    expect(verdict.growing).toBe(false);
    expect(verdict.detectableLeakBytesPerRequest).toBeLessThan(2048);
  });

  it('fails a leak of 2 KB per request at 150 req/s', () => {
    const verdict = rssTrend(run(2048), TOLERANCE);
    expect(verdict.growing).toBe(true);
    expect(verdict.secondHalfSlopeBytesPerSecond).toBeGreaterThan(250_000);
  });

  it('refuses to judge too few samples', () => {
    expect(() => rssTrend(run(0).slice(0, 5), TOLERANCE)).toThrow(/at least/);
  });
});
