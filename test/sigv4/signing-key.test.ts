import { describe, expect, it } from 'vitest';
import { computeSigningKey, DUMMY_SECRET, signingKeyFor, UNKNOWN_KEY_OWNER } from '../../src/sigv4/signing-key.js';

describe('signingKeyFor (kSigning remembered per key-store lookup result)', () => {
  it("is the derived kSigning of the owner's secret for each date, region and service", () => {
    const owner = { secretAccessKey: 'rs_sk_live_first' };
    expect(signingKeyFor(owner, '20261202', 'us-east-1')).toEqual(computeSigningKey('rs_sk_live_first', '20261202', 'us-east-1'));
    // Same object, same scope: the same key again; another scope is derived anew.
    expect(signingKeyFor(owner, '20261202', 'us-east-1')).toBe(signingKeyFor(owner, '20261202', 'us-east-1'));
    expect(signingKeyFor(owner, '20261203', 'us-east-1')).toEqual(computeSigningKey('rs_sk_live_first', '20261203', 'us-east-1'));
    expect(signingKeyFor(owner, '20261203', 'eu-ro-1')).toEqual(computeSigningKey('rs_sk_live_first', '20261203', 'eu-ro-1'));
    expect(signingKeyFor(owner, '20261203', 'eu-ro-1', 'sts')).toEqual(computeSigningKey('rs_sk_live_first', '20261203', 'eu-ro-1', 'sts'));
  });

  it('never hands one lookup result the key of another (a rotated secret is a new object)', () => {
    const before = { secretAccessKey: 'rs_sk_live_before' };
    const after = { secretAccessKey: 'rs_sk_live_after' };
    expect(signingKeyFor(before, '20261202', 'us-east-1')).not.toEqual(signingKeyFor(after, '20261202', 'us-east-1'));
    expect(signingKeyFor(after, '20261202', 'us-east-1')).toEqual(computeSigningKey('rs_sk_live_after', '20261202', 'us-east-1'));
    expect(signingKeyFor(UNKNOWN_KEY_OWNER, '20261202', 'us-east-1')).toEqual(computeSigningKey(DUMMY_SECRET, '20261202', 'us-east-1'));
  });
});
