/**
 * The upstream request line and its SigV4 signature. Paths and queries are encoded here exactly
 * the way S3 canonicalizes them (every byte except A-Za-z0-9-_.~ as %XX, '/' kept in keys), so the
 * URL we send and the URI aws4 signs are the same string and no key can be re-interpreted
 * ('+' stays a plus, '//' stays two slashes, '%' stays a percent sign).
 */
import aws4 from 'aws4';
import { EMPTY_SHA256 } from '../sigv4/types.js';
import { uriEncode } from '../sigv4/uri-encoding.js';
import type { UpstreamTarget } from './target.js';

/** S3 canonical encoding of an object key: '/' kept, every other reserved byte escaped. */
export function encodeObjectKey(key: string): string {
  return uriEncode(key, true);
}

/** S3 canonical encoding of one query name or value (space -> %20, '+' -> %2B, '/' -> %2F). */
export function encodeQueryComponent(text: string): string {
  return uriEncode(text, false);
}

/** `a=1&uploads&x=y%2Bz` in the given order; a parameter with an empty value is sent bare, as SDKs do. */
export function encodeQuery(query: Array<[string, string]>): string {
  return query.map(([name, value]) => (value === '' ? encodeQueryComponent(name) : `${encodeQueryComponent(name)}=${encodeQueryComponent(value)}`)).join('&');
}

/**
 * Encoded path-style request path: `/bucket/key` for objects, `/bucket` for bucket-level requests,
 * `/` for service-level ones (ListBuckets), under any path prefix the endpoint URL has.
 */
export function upstreamPath(target: UpstreamTarget, objectKey: string | null, bucketLevel: boolean): string {
  const prefix = target.endpoint.pathname.replace(/\/+$/, '');
  if (objectKey !== null) return `${prefix}/${encodeQueryComponent(target.bucket)}/${encodeObjectKey(objectKey)}`;
  if (bucketLevel) return `${prefix}/${encodeQueryComponent(target.bucket)}`;
  return `${prefix}/`;
}

/** The current time as SigV4's yyyyMMddTHHmmssZ, formatted once per second. */
let amzDateSecond = -1;
let amzDateText = '';
export function currentAmzDate(nowMs: number = Date.now()): string {
  const second = Math.floor(nowMs / 1000);
  if (second !== amzDateSecond) {
    amzDateSecond = second;
    amzDateText = new Date(second * 1000).toISOString().replace(/[:-]|\.\d{3}/g, '');
  }
  return amzDateText;
}

export interface SignedUpstreamRequest {
  url: string;
  /** The URL's origin and its path + query, exactly as signed (send these, not a parsed `url`). */
  origin: string;
  pathWithQuery: string;
  headers: Record<string, string>;
}

/**
 * Signs with aws4. `headers` must already be the exact set to send, lower-case (hop-by-hop headers
 * removed); aws4 adds Host, X-Amz-Date and Authorization, and the empty body's hash when
 * x-amz-content-sha256 is missing. aws4 never signs `range` (and a few others), which S3 accepts
 * since unsigned headers are allowed. The returned headers are aws4's copy: Host and Authorization
 * capitalized as aws4 writes them (HTTP header names are case-insensitive; undici sends them as given).
 */
export function signUpstreamRequest(
  target: UpstreamTarget,
  method: string,
  encodedPath: string,
  encodedQuery: string,
  headers: Readonly<Record<string, string>>,
): SignedUpstreamRequest {
  const pathWithQuery = encodedQuery === '' ? encodedPath : `${encodedPath}?${encodedQuery}`;
  const signed = aws4.sign(
    {
      service: 's3',
      region: target.region,
      method,
      // Host and port separately: aws4 builds the Host header (and the signed host) from them.
      host: target.endpoint.hostname,
      port: target.endpoint.port === '' ? undefined : Number(target.endpoint.port),
      path: pathWithQuery,
      // aws4 copies the headers it is given; X-Amz-Date given, so it does not format a Date per
      // request, and the empty body's hash given, so it does not hash '' per bodiless request.
      headers: { 'x-amz-content-sha256': EMPTY_SHA256, ...headers, 'x-amz-date': currentAmzDate() },
      // The path is already canonical; aws4 decodes and re-encodes each segment to the same string.
      doNotEncodePath: true,
    },
    { accessKeyId: target.credentials.accessKeyId, secretAccessKey: target.credentials.secretAccessKey },
  );
  // Our own encoding, not aws4's re-formatted path: aws4 would append '=' to bare parameters and
  // reorder them, which is harmless for the signature but changes what the upstream sees.
  const origin = target.endpoint.origin;
  return { url: `${origin}${pathWithQuery}`, origin, pathWithQuery, headers: signed.headers as Record<string, string> };
}
