/**
 * Which upstream response headers go back to the client: an allowlist of what describes the object
 * or the S3 answer. Everything else an upstream sends (its servers, cookies, request ids, CORS and
 * Vary, KMS key ids, redirects, headers a future upstream invents) stays in the gateway: a client
 * learns nothing about the storage behind it but its data. CORS is the gateway's (per-bucket rules).
 */

/** Headers passed under their own name. */
const PASSED = new Set([
  'accept-ranges',
  'cache-control',
  'content-disposition',
  'content-encoding',
  'content-language',
  'content-length',
  'content-range',
  'content-type',
  'etag',
  'expires',
  'last-modified',
  'x-amz-abort-date',
  'x-amz-abort-rule-id',
  'x-amz-archive-status',
  'x-amz-checksum-type',
  'x-amz-copy-source-version-id',
  'x-amz-delete-marker',
  'x-amz-expiration',
  'x-amz-missing-meta',
  'x-amz-mp-parts-count',
  'x-amz-object-lock-legal-hold',
  'x-amz-object-lock-mode',
  'x-amz-object-lock-retain-until-date',
  'x-amz-replication-status',
  'x-amz-restore',
  'x-amz-server-side-encryption',
  'x-amz-server-side-encryption-bucket-key-enabled',
  'x-amz-server-side-encryption-customer-algorithm',
  'x-amz-server-side-encryption-customer-key-md5',
  'x-amz-storage-class',
  'x-amz-tagging-count',
  'x-amz-version-id',
  'x-amz-website-redirect-location',
]);

export const CHECKSUM_HEADER_PREFIX = 'x-amz-checksum-';

/** Families passed by prefix: user metadata and object checksums. */
const PASSED_PREFIXES = ['x-amz-meta-', CHECKSUM_HEADER_PREFIX];

export function isPassedResponseHeader(name: string): boolean {
  return PASSED.has(name) || PASSED_PREFIXES.some((prefix) => name.startsWith(prefix));
}

/**
 * Upstream response headers to pass to the client, lower-cased. (x-amz-bucket-region is not among
 * them: a bucket's region is the gateway's, the one clients sign with, never the upstream's
 * datacenter; HeadBucket reports it.)
 */
export function clientResponseHeaders(upstream: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  // for-in, not Object.entries: no array per header on every upstream answer.
  for (const rawName in upstream) {
    const value = upstream[rawName];
    const name = rawName.toLowerCase();
    if (value === undefined || !isPassedResponseHeader(name)) continue;
    out[name] = value;
  }
  return out;
}
