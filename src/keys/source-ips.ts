/**
 * Source-address allow-lists: which networks a key may be used from (`keys create --allow-ip`),
 * and which proxies' X-Forwarded-For the gateway believes (KEYGATE_TRUSTED_PROXIES). Both are
 * lists of IPv4/IPv6 CIDRs (a bare address is one host), matched with node's BlockList, which
 * also matches IPv4-mapped IPv6 peers (::ffff:10.1.2.3) against IPv4 ranges.
 */
import { BlockList, isIP } from 'node:net';

/** More ranges than this on one key is a configuration mistake, not a network. */
export const MAX_ADDRESS_RANGES = 64;

/**
 * Reads `10.0.0.0/8,2001:db8::/32 192.168.1.7` (commas or spaces; or a list) into canonical
 * ranges (`address/prefix`, lower case). Throws Error with a message saying what is wrong.
 */
export function parseAddressRanges(value: string | readonly string[]): string[] {
  const items = (typeof value === 'string' ? value.split(/[\s,]+/) : value.flatMap((item) => item.split(/[\s,]+/))).filter((item) => item !== '');
  if (items.length === 0) throw new Error('Give at least one network, e.g. 10.0.0.0/8 or 2001:db8::/32.');
  if (items.length > MAX_ADDRESS_RANGES) throw new Error(`At most ${MAX_ADDRESS_RANGES} networks; group addresses into wider ranges.`);
  const ranges: string[] = [];
  for (const item of items) {
    const [address = '', prefixText, extra] = item.toLowerCase().split('/');
    const version = isIP(address);
    const bits = version === 4 ? 32 : 128;
    const prefix = prefixText === undefined ? bits : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
    if (version === 0 || extra !== undefined || !(prefix >= 0 && prefix <= bits)) {
      throw new Error(`"${item}" is not an IPv4 or IPv6 network; use e.g. 10.0.0.0/8, 203.0.113.7 or 2001:db8::/32.`);
    }
    const range = `${address}/${prefix}`;
    if (!ranges.includes(range)) ranges.push(range);
  }
  return ranges;
}

const compiled = new WeakMap<readonly string[], BlockList>();

/** A matcher for canonical ranges; compiled once per (frozen, shared) list. */
export function addressMatcher(ranges: readonly string[]): BlockList {
  let list = compiled.get(ranges);
  if (list === undefined) {
    list = new BlockList();
    for (const range of ranges) {
      const [address, prefix] = range.split('/') as [string, string];
      list.addSubnet(address, Number(prefix), isIP(address) === 4 ? 'ipv4' : 'ipv6');
    }
    compiled.set(ranges, list);
  }
  return list;
}

/** Whether an address (as a socket or X-Forwarded-For gives it) is in the ranges. */
export function addressInRanges(address: string | null, ranges: readonly string[]): boolean {
  if (address === null) return false;
  const version = isIP(address);
  if (version === 0) return false;
  return addressMatcher(ranges).check(address, version === 4 ? 'ipv4' : 'ipv6');
}

/**
 * The client's address: the socket's peer, unless that peer is a trusted proxy; then the
 * X-Forwarded-For hops are walked from the right, skipping trusted proxies, and the first
 * untrusted hop is the client (what a client wrote into the header itself sits further left and
 * is never reached). null when a hop that must be read is not an address (then no allow-list
 * matches: fail closed).
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined, trustedProxies: readonly string[] | null): string | null {
  if (peer === undefined || isIP(peer) === 0) return null;
  if (trustedProxies === null || forwardedFor === undefined) return peer;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',').map((hop) => hop.trim());
  let current = peer;
  while (addressInRanges(current, trustedProxies) && hops.length > 0) {
    const hop = withoutPort(hops.pop()!);
    if (hop === null) return null;
    current = hop;
  }
  return current;
}

/** `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:443` -> the address; null otherwise. */
function withoutPort(hop: string): string | null {
  if (isIP(hop) !== 0) return hop;
  const bracketed = /^\[([0-9a-f:.]+)\](?::\d+)?$/i.exec(hop);
  if (bracketed && isIP(bracketed[1]!) === 6) return bracketed[1]!;
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(hop);
  if (v4 && isIP(v4[1]!) === 4) return v4[1]!;
  return null;
}
