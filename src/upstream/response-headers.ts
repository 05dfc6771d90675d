/**
 * Which upstream response headers go back to the client: everything that describes the object or
 * the S3 answer, nothing about connections or the upstream's own infrastructure.
 */
import { joinedHeaderValue } from '../header-value.js';

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

/**
 * Upstream response headers that describe the upstream's own infrastructure, not the object. The
 * upstream's request ids are replaced by the gateway's (its log ties the two together on errors).
 */
const UPSTREAM_PRIVATE = new Set(['server', 'set-cookie', 'alt-svc', 'x-amz-request-id', 'x-amz-id-2']);

export const CHECKSUM_HEADER_PREFIX = 'x-amz-checksum-';

/** Upstream response headers to pass to the client: everything but hop-by-hop and upstream-private ones. */
export function clientResponseHeaders(upstream: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const connectionTokens = new Set(
    (joinedHeaderValue(upstream, 'connection') ?? '')
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
