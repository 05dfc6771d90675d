import { describe, expect, it } from 'vitest';
import { assertSourceAllowed } from '../../src/authz.js';
import { addressInRanges, clientAddress, parseAddressRanges } from '../../src/keys/source-ips.js';

describe('parseAddressRanges', () => {
  it('reads IPv4 and IPv6 networks and bare addresses, separated by commas or spaces, into canonical ranges', () => {
    expect(parseAddressRanges('10.0.0.0/8,2001:DB8::/32  192.168.1.7')).toEqual(['10.0.0.0/8', '2001:db8::/32', '192.168.1.7/32']);
    expect(parseAddressRanges(['::1', '10.0.0.0/8,10.0.0.0/8'])).toEqual(['::1/128', '10.0.0.0/8']);
    expect(parseAddressRanges('0.0.0.0/0')).toEqual(['0.0.0.0/0']);
  });

  it('refuses anything that is not a network', () => {
    for (const bad of [
      '',
      ' , ',
      '10.0.0.0/33',
      '::/129',
      '10.0.0/8',
      '10.0.0.0/8/1',
      'example.com',
      '10.0.0.0/-1',
      '10.0.0.0/',
      '1.2.3.4:80',
      '010.1.1.1',
      '10.0.0.0/08x',
    ]) {
      expect(() => parseAddressRanges(bad), bad).toThrow();
    }
    expect(() => parseAddressRanges(Array.from({ length: 65 }, (_, i) => `10.0.0.${i}`))).toThrow(/At most 64/);
  });

  it('matches IPv4, IPv6 and IPv4-mapped IPv6 addresses', () => {
    const ranges = parseAddressRanges('10.0.0.0/8,2001:db8::/32');
    expect(addressInRanges('10.200.1.1', ranges)).toBe(true);
    expect(addressInRanges('::ffff:10.200.1.1', ranges)).toBe(true);
    expect(addressInRanges('2001:db8:1::5', ranges)).toBe(true);
    expect(addressInRanges('11.0.0.1', ranges)).toBe(false);
    expect(addressInRanges('2001:db9::1', ranges)).toBe(false);
    expect(addressInRanges(null, ranges)).toBe(false);
    expect(addressInRanges('not-an-address', ranges)).toBe(false);
  });
});

describe('clientAddress', () => {
  const trusted = parseAddressRanges('127.0.0.1,10.0.0.0/8');

  it('is the peer when no proxy is trusted, whatever X-Forwarded-For says', () => {
    expect(clientAddress('203.0.113.9', '10.1.2.3', null)).toBe('203.0.113.9');
    expect(clientAddress('127.0.0.1', '10.1.2.3', null)).toBe('127.0.0.1');
  });

  it('is the peer when the peer is not a trusted proxy (a spoofed header from outside does not help)', () => {
    expect(clientAddress('203.0.113.9', '10.1.2.3', trusted)).toBe('203.0.113.9');
  });

  it('is the rightmost untrusted hop behind trusted proxies; what the client wrote further left is never read', () => {
    expect(clientAddress('127.0.0.1', '198.51.100.4', trusted)).toBe('198.51.100.4');
    expect(clientAddress('127.0.0.1', '10.9.9.9, 198.51.100.4', trusted)).toBe('198.51.100.4');
    expect(clientAddress('127.0.0.1', '10.1.1.1, 198.51.100.4, 10.2.2.2', trusted)).toBe('198.51.100.4');
    expect(clientAddress('127.0.0.1', ['1.1.1.1', '198.51.100.4'], trusted)).toBe('198.51.100.4');
    expect(clientAddress('::ffff:127.0.0.1', '198.51.100.4:4711', trusted)).toBe('198.51.100.4');
    expect(clientAddress('127.0.0.1', '[2001:db8::7]:443', trusted)).toBe('2001:db8::7');
    // All hops trusted: the leftmost is the best there is.
    expect(clientAddress('127.0.0.1', '10.3.3.3, 10.2.2.2', trusted)).toBe('10.3.3.3');
    expect(clientAddress('127.0.0.1', undefined, trusted)).toBe('127.0.0.1');
  });

  it('fails closed (null) when a hop it must read is not an address', () => {
    expect(clientAddress('127.0.0.1', 'unknown', trusted)).toBeNull();
    expect(clientAddress('127.0.0.1', '198.51.100.4, garbage', trusted)).toBeNull();
    expect(clientAddress('127.0.0.1', '', trusted)).toBeNull();
    expect(clientAddress(undefined, '198.51.100.4', trusted)).toBeNull();
  });
});

describe('assertSourceAllowed', () => {
  const key = (allowedIps: string[] | null) => ({ accessKeyId: 'rs_ak_test_0000000000000000000000000000000000000000', allowedIps });

  it('allows keys without a list from anywhere, and keys with one only from inside it', () => {
    expect(() => assertSourceAllowed(key(null), '203.0.113.9')).not.toThrow();
    expect(() => assertSourceAllowed(key(null), null)).not.toThrow();
    const office = key(parseAddressRanges('198.51.100.0/24'));
    expect(() => assertSourceAllowed(office, '198.51.100.77')).not.toThrow();
    for (const outside of ['203.0.113.9', '::1', null]) {
      expect(() => assertSourceAllowed(office, outside)).toThrowError(expect.objectContaining({ code: 'AccessDenied', status: 403 }) as Error);
    }
  });
});
