/**
 * Which client headers go upstream and which upstream headers go back. Requests use an allowlist:
 * anything about the client's own signature, framing or connection is the gateway's business,
 * and headers that would widen access at the upstream (ACL grants, bucket-owner checks against
 * the operator's account) are dropped on purpose.
 */

export type ClientHeaders = Record<string, string | string[] | undefined>;

/** Forwarded by exact (lower-case) name. */
const FORWARDED = new Set([
  'content-type',
  'content-md5',
  'cache-control',
  'content-disposition',
  'content-language',
  'expires',
  'range',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'x-amz-metadata-directive',
  'x-amz-tagging',
  'x-amz-tagging-directive',
  'x-amz-storage-class',
  'x-amz-sdk-checksum-algorithm',
  'x-amz-website-redirect-location',
  'x-amz-request-payer',
  'x-amz-mp-object-size',
]);

/**
 * Forwarded by prefix. x-amz-copy-source covers the -if-*, -range and -server-side-encryption-
 * customer-* variants; x-amz-checksum- covers the values, -algorithm and -type.
 */
const FORWARDED_PREFIXES = ['x-amz-meta-', 'x-amz-copy-source', 'x-amz-checksum-', 'x-amz-server-side-encryption', 'x-amz-object-lock'];

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Upstream response headers that describe the upstream's own infrastructure, not the object. */
const UPSTREAM_PRIVATE = new Set(['server', 'set-cookie', 'alt-svc']);

export const CHECKSUM_HEADER_PREFIX = 'x-amz-checksum-';

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

export interface RequestHeaderOptions {
  /** Checksum header sent as a trailer instead (so not as a header). */
  trailerChecksum: string | null;
  userAgent: string;
}

/** The client's headers the upstream should see, lower-case names, without the gateway-set ones. */
export function upstreamRequestHeaders(client: ClientHeaders, options: RequestHeaderOptions): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [rawName, rawValue] of Object.entries(client)) {
    const name = rawName.toLowerCase();
    const value = firstValue(rawValue);
    if (value === undefined) continue;
    if (name === 'content-encoding') {
      const rest = withoutAwsChunked(value);
      if (rest !== '') out[name] = rest;
      continue;
    }
    if (name === options.trailerChecksum) continue;
    if (FORWARDED.has(name) || FORWARDED_PREFIXES.some((prefix) => name.startsWith(prefix))) out[name] = value;
  }
  // S3 refuses x-amz-sdk-checksum-algorithm when no matching checksum header or trailer comes along,
  // which happens when a client's trailing checksum cannot be forwarded.
  const sdkAlgorithm = out['x-amz-sdk-checksum-algorithm']?.trim().toLowerCase();
  if (sdkAlgorithm !== undefined) {
    const checksumName = CHECKSUM_HEADER_PREFIX + sdkAlgorithm;
    if (!(checksumName in out) && options.trailerChecksum !== checksumName) delete out['x-amz-sdk-checksum-algorithm'];
  }
  const clientAgent = firstValue(client['user-agent']);
  out['user-agent'] = clientAgent ? `${options.userAgent} (+${clientAgent})` : options.userAgent;
  return out;
}

/** `aws-chunked,gzip` -> `gzip`: aws-chunked describes the client's framing, which the gateway removed. */
export function withoutAwsChunked(contentEncoding: string): string {
  return contentEncoding
    .split(',')
    .map((token) => token.trim())
    .filter((token) => token !== '' && token.toLowerCase() !== 'aws-chunked')
    .join(',');
}

/** The checksum header a client announced in x-amz-trailer (e.g. x-amz-checksum-crc32), if any. */
export function announcedTrailerChecksum(client: ClientHeaders): string | null {
  const declared = firstValue(client['x-amz-trailer']);
  if (!declared) return null;
  for (const token of declared.split(',')) {
    const name = token.trim().toLowerCase();
    if (name.startsWith(CHECKSUM_HEADER_PREFIX)) return name;
  }
  return null;
}

/** Upstream response headers to pass to the client: everything but hop-by-hop and upstream-private ones. */
export function clientResponseHeaders(upstream: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const connectionTokens = new Set(
    (firstValue(upstream.connection) ?? '')
      .split(',')
      .map((token) => token.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: Record<string, string | string[]> = {};
  for (const [rawName, value] of Object.entries(upstream)) {
    const name = rawName.toLowerCase();
    if (value === undefined || HOP_BY_HOP.has(name) || UPSTREAM_PRIVATE.has(name) || connectionTokens.has(name)) continue;
    out[name] = value;
  }
  return out;
}
