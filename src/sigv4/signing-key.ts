/**
 * SigV4 signing keys (kSigning = HMAC chain over date, region, service, "aws4_request") and a bounded
 * LRU cache of them. Deriving costs four HMACs; the cache makes the hot path one map lookup.
 * The cache is keyed by a hash of the secret, never the secret itself, so a rotated secret misses.
 */
import { createHmac, hash, randomBytes } from 'node:crypto';

const MAX_CACHED_KEYS = 2048;
const cache = new Map<string, Buffer>();

export function hmacSha256(key: Buffer | string, data: string | Uint8Array): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** Derives kSigning without touching the cache. */
export function computeSigningKey(secret: string, date: string, region: string, service = 's3'): Buffer {
  const kDate = hmacSha256('AWS4' + secret, date);
  const kRegion = hmacSha256(kDate, region);
  const kService = hmacSha256(kRegion, service);
  return hmacSha256(kService, 'aws4_request');
}

/**
 * kSigning for (secret, yyyymmdd, region, service), cached. The returned Buffer is shared with the
 * cache: treat it as read-only (copy it before zeroing or handing it to code that might mutate it).
 */
export function deriveSigningKey(secret: string, date: string, region: string, service = 's3'): Buffer {
  const cacheKey = hash('sha256', secret, 'base64') + '\n' + date + '\n' + region + '\n' + service;
  const hit = cache.get(cacheKey);
  if (hit !== undefined) {
    // Re-insert to mark as most recently used (Map keeps insertion order).
    cache.delete(cacheKey);
    cache.set(cacheKey, hit);
    return hit;
  }
  const key = computeSigningKey(secret, date, region, service);
  cache.set(cacheKey, key);
  if (cache.size > MAX_CACHED_KEYS) cache.delete(cache.keys().next().value!);
  return key;
}

/** The last signing key derived for a lookup result, keyed by that object (see signingKeyFor). */
const lastKeyOf = new WeakMap<object, { scope: string; key: Buffer }>();

/**
 * deriveSigningKey for the secret of `owner`, a lookup result the key store hands out again and
 * again while the key is unchanged: its last kSigning is reused for the same date, region and
 * service without hashing the secret for the shared cache. A changed key is a new object, so it
 * never meets an old signing key.
 */
export function signingKeyFor(owner: { secretAccessKey: string }, date: string, region: string, service = 's3'): Buffer {
  const scope = date + '\n' + region + '\n' + service;
  const last = lastKeyOf.get(owner);
  if (last !== undefined && last.scope === scope) return last.key;
  const key = deriveSigningKey(owner.secretAccessKey, date, region, service);
  lastKeyOf.set(owner, { scope, key });
  return key;
}

/** Drops every cached signing key (tests, or after revoking many keys at once). */
export function clearSigningKeyCache(): void {
  cache.clear();
}

export function signingKeyCacheSize(): number {
  return cache.size;
}

/**
 * Secret used when the access key is unknown: the verifier still derives a key and computes a full
 * signature with it, so "unknown key" and "wrong secret" cost the same time. Random per process so
 * no request can ever verify against it.
 */
export const DUMMY_SECRET = 'keygate-unknown-key-' + randomBytes(24).toString('base64');

/** DUMMY_SECRET as a lookup result, for signingKeyFor: an unknown key then costs what a known one does. */
export const UNKNOWN_KEY_OWNER: { readonly secretAccessKey: string } = Object.freeze({ secretAccessKey: DUMMY_SECRET });
