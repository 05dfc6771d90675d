/**
 * Canonical request and string-to-sign (SigV4, S3 flavour: no path normalization, no double encoding).
 *
 * Signers disagree on a few corner cases (how a raw '+' or a redundant escape in the path is read,
 * which whitespace is collapsed in header values). The verifier signs the S3 interpretation first and
 * only on mismatch tries the few alternative readings of the same bytes (see canonicalVariants).
 */
import { hash } from 'node:crypto';
import { AWS4_HMAC_SHA256 } from './types.js';
import { canonicalPath, canonicalQueryComponent } from './uri-encoding.js';

export type HeaderValues = Record<string, string | string[] | undefined>;

/** One `key[=value]` element of the raw query string, as sent. */
export interface RawQueryParam {
  rawKey: string;
  rawValue: string;
}

export function splitRawQuery(rawQuery: string): RawQueryParam[] {
  if (rawQuery === '') return [];
  const params: RawQueryParam[] = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue; // 'a=1&&b=2' and a trailing '&' carry no parameter
    const eq = part.indexOf('=');
    params.push(eq < 0 ? { rawKey: part, rawValue: '' } : { rawKey: part.slice(0, eq), rawValue: part.slice(eq + 1) });
  }
  return params;
}

function compareEncodedPairs(a: readonly [string, string], b: readonly [string, string]): number {
  // Encoded text is ASCII, so UTF-16 order is byte order, as SigV4 requires. Key first, then value.
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  if (a[1] !== b[1]) return a[1] < b[1] ? -1 : 1;
  return 0;
}

/** Canonical query: each key and value decoded and re-encoded, sorted by key then value, `key=` when empty. */
export function canonicalQueryString(params: readonly RawQueryParam[], skip?: ReadonlySet<number>): string {
  if (params.length === 0) return '';
  const pairs: (readonly [string, string])[] = [];
  for (let i = 0; i < params.length; i++) {
    if (skip?.has(i)) continue;
    const p = params[i]!;
    pairs.push([canonicalQueryComponent(p.rawKey), canonicalQueryComponent(p.rawValue)]);
  }
  if (pairs.length > 1) pairs.sort(compareEncodedPairs);
  let out = '';
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i]!;
    out += (i === 0 ? '' : '&') + pair[0] + '=' + pair[1];
  }
  return out;
}

/** The query exactly as sent, only sorted: what signers that sign the wire form verbatim computed. */
export function verbatimQueryString(params: readonly RawQueryParam[], skip?: ReadonlySet<number>): string {
  const pairs: (readonly [string, string])[] = [];
  for (let i = 0; i < params.length; i++) {
    if (skip?.has(i)) continue;
    pairs.push([params[i]!.rawKey, params[i]!.rawValue]);
  }
  pairs.sort(compareEncodedPairs);
  return pairs.map(([k, v]) => k + '=' + v).join('&');
}

/** How runs of whitespace inside header values are collapsed before signing. */
export type WhitespaceRule = 'spaces-and-tabs' | 'all-whitespace';

const NEEDS_SPACE_TAB_CLEANUP = /^[ \t]|[ \t]$|[ \t]{2}|\t/;
const NEEDS_WHITESPACE_CLEANUP = /^\s|\s$|\s{2}|[^\S ]/;

/**
 * SigV4 header value: trimmed, inner whitespace runs collapsed to one space, repeated headers joined
 * with ','. 'spaces-and-tabs' is what the AWS SDKs do; 'all-whitespace' (JS \s) is aws4's reading.
 */
export function canonicalHeaderValue(value: string | string[] | undefined, rule: WhitespaceRule = 'spaces-and-tabs'): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return normalizeHeaderValue(value, rule);
  return value.map((v) => normalizeHeaderValue(v, rule)).join(',');
}

function normalizeHeaderValue(value: string, rule: WhitespaceRule): string {
  if (rule === 'spaces-and-tabs') {
    if (!NEEDS_SPACE_TAB_CLEANUP.test(value)) return value;
    return value.replace(/[ \t]+/g, ' ').replace(/^ | $/g, '');
  }
  if (!NEEDS_WHITESPACE_CLEANUP.test(value)) return value;
  return value.trim().replace(/\s+/g, ' ');
}

/** True when some signed header contains whitespace the two rules treat differently. */
export function hasExoticWhitespace(headers: HeaderValues, signedHeaders: readonly string[]): boolean {
  for (const name of signedHeaders) {
    const value = headers[name];
    if (value === undefined) continue;
    const values = typeof value === 'string' ? [value] : value;
    if (values.some((v) => /[^\S \t]/.test(v))) return true;
  }
  return false;
}

/** The canonical headers block: `name:value\n` per signed header, in SignedHeaders order. */
export function canonicalHeadersBlock(headers: HeaderValues, signedHeaders: readonly string[], rule: WhitespaceRule = 'spaces-and-tabs'): string {
  let out = '';
  for (const name of signedHeaders) out += name + ':' + canonicalHeaderValue(headers[name], rule) + '\n';
  return out;
}

export interface CanonicalRequestParts {
  method: string;
  canonicalUri: string;
  canonicalQuery: string;
  /** From canonicalHeadersBlock (each line ends with '\n'). */
  canonicalHeaders: string;
  /** Lower-case names joined by ';'. */
  signedHeaders: string;
  payloadHash: string;
}

export function buildCanonicalRequest(p: CanonicalRequestParts): string {
  return `${p.method}\n${p.canonicalUri}\n${p.canonicalQuery}\n${p.canonicalHeaders}\n${p.signedHeaders}\n${p.payloadHash}`;
}

export function sha256Hex(data: string | Uint8Array): string {
  // One-shot crypto.hash: half the cost of createHash().update().digest() for short inputs.
  return hash('sha256', data, 'hex');
}

export function buildStringToSign(amzDate: string, scope: string, canonicalRequest: string): string {
  return `${AWS4_HMAC_SHA256}\n${amzDate}\n${scope}\n${sha256Hex(canonicalRequest)}`;
}

export function credentialScope(date: string, region: string, service: string): string {
  return `${date}/${region}/${service}/aws4_request`;
}

/** The S3 reading of a request's URI and query; the form verification tries first. */
export function primaryCanonicalUriAndQuery(rawPath: string, params: readonly RawQueryParam[], skip?: ReadonlySet<number>): { uri: string; query: string } {
  return { uri: canonicalPath(rawPath), query: canonicalQueryString(params, skip) };
}

export interface CanonicalVariant {
  uri: string;
  query: string;
  whitespace: WhitespaceRule;
}

/**
 * Alternative readings of the same request bytes, tried only after the S3 reading failed: the path
 * and query exactly as sent (signers such as botocore sign the wire form verbatim, which differs
 * from S3's reading only when the wire form is not canonical, e.g. '%7E' or lower-case escapes), and
 * aws4's wider whitespace collapsing in header values. A verbatim variant can only match when the
 * bytes on the wire are exactly the bytes that were signed, so it gives a tamperer nothing.
 * (Deliberately absent: reading a raw '+' in the path as a space, as aws4 signs it. S3 does not, and
 * accepting it would let anyone on the path turn a signed "a%20b" into "a+b", another key.)
 */
export function canonicalVariants(
  rawPath: string,
  params: readonly RawQueryParam[],
  skip: ReadonlySet<number> | undefined,
  headers: HeaderValues,
  signedHeaders: readonly string[],
): CanonicalVariant[] {
  const primary = primaryCanonicalUriAndQuery(rawPath, params, skip);
  const uris = new Set<string>([primary.uri, rawPath === '' ? '/' : rawPath]);
  const queries = new Set<string>([primary.query, verbatimQueryString(params, skip)]);
  const rules: WhitespaceRule[] = hasExoticWhitespace(headers, signedHeaders) ? ['spaces-and-tabs', 'all-whitespace'] : ['spaces-and-tabs'];
  const variants: CanonicalVariant[] = [];
  for (const whitespace of rules) {
    for (const uri of uris) {
      for (const query of queries) {
        if (whitespace === 'spaces-and-tabs' && uri === primary.uri && query === primary.query) continue;
        variants.push({ uri, query, whitespace });
      }
    }
  }
  return variants;
}
