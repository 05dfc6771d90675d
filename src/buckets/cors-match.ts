/**
 * Applying a bucket's CORS rules the way S3 does: the first rule whose origin, method and (for
 * preflights) every requested header match decides, and its settings become the
 * Access-Control-* response headers. Pure; the HTTP side is src/http/cors.ts.
 */
import type { CorsRule } from './cors.js';

/**
 * `*` alone matches anything; one `*` inside a pattern matches a run of the characters in
 * `starMatches` there (`https://*.example.com`). Origins and header names compare
 * case-insensitively.
 */
export function wildcardMatches(pattern: string, value: string, starMatches: RegExp): boolean {
  const p = pattern.toLowerCase();
  const v = value.toLowerCase();
  if (p === '*') return true;
  const star = p.indexOf('*');
  if (star === -1) return p === v;
  const prefix = p.slice(0, star);
  const suffix = p.slice(star + 1);
  if (v.length < prefix.length + suffix.length || !v.startsWith(prefix) || !v.endsWith(suffix)) return false;
  return starMatches.test(v.slice(prefix.length, v.length - suffix.length));
}

/**
 * What a wildcard in an origin may stand for: host name characters only (labels and dots, or port
 * digits), so `https://*.example.com` never matches `https://attacker.com/.example.com` or
 * `https://attacker.com?.example.com`, whose hosts are not under example.com.
 */
const ORIGIN_STAR = /^[a-z0-9.-]*$/;
/** What a wildcard in a header name may stand for: header name characters. */
const HEADER_STAR = /^[!#$%&'+.^_`|~0-9a-z-]*$/;

export interface CorsMatch {
  rule: CorsRule;
  /** `*` when the rule allows every origin, else the request's origin. */
  allowOrigin: string;
}

/** The first rule allowing `origin` to use `method`, and (for preflights) every requested header. */
export function matchCorsRule(rules: readonly CorsRule[], origin: string, method: string, requestHeaders: readonly string[] = []): CorsMatch | null {
  for (const rule of rules) {
    const originPattern = rule.allowedOrigins.find((pattern) => wildcardMatches(pattern, origin, ORIGIN_STAR));
    if (originPattern === undefined || !rule.allowedMethods.includes(method)) continue;
    const allowedHeaders = rule.allowedHeaders ?? [];
    if (!requestHeaders.every((header) => allowedHeaders.some((pattern) => wildcardMatches(pattern, header, HEADER_STAR)))) continue;
    return { rule, allowOrigin: originPattern === '*' ? '*' : origin };
  }
  return null;
}

/** Access-Control-Request-Headers as a list of lower-case names. */
export function parseRequestHeaderList(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '');
}

/** Vary for responses whose CORS headers depend on the request: caches must not mix origins. */
export const CORS_VARY = 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method';

/** Headers answering a preflight that `match` allowed. */
export function preflightHeaders(match: CorsMatch, requestHeaders: readonly string[]): Record<string, string> {
  const headers = actualRequestHeaders(match);
  if (requestHeaders.length > 0) headers['access-control-allow-headers'] = requestHeaders.join(', ');
  if (match.rule.maxAgeSeconds !== undefined) headers['access-control-max-age'] = String(match.rule.maxAgeSeconds);
  return headers;
}

/** Headers for an actual (non-preflight) request from an allowed origin. */
export function actualRequestHeaders(match: CorsMatch): Record<string, string> {
  const headers: Record<string, string> = {
    'access-control-allow-origin': match.allowOrigin,
    'access-control-allow-methods': match.rule.allowedMethods.join(', '),
    vary: CORS_VARY,
  };
  // As S3 does for a named origin. The gateway authenticates by signature, never by cookies, so
  // allowing credentialed requests grants nothing extra.
  if (match.allowOrigin !== '*') headers['access-control-allow-credentials'] = 'true';
  if (match.rule.exposeHeaders !== undefined && match.rule.exposeHeaders.length > 0) {
    headers['access-control-expose-headers'] = match.rule.exposeHeaders.join(', ');
  }
  return headers;
}
