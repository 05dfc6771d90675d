/**
 * Upstream failures as S3 errors a client (and an operator reading the message) can act on.
 * Messages name the upstream endpoint, never credentials.
 */
import { S3Error } from '../s3/errors.js';
import { describeUpstream, type UpstreamTarget } from './target.js';

/** Network-level errors worth another attempt for idempotent, bodiless requests. */
const RETRYABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
]);

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

/**
 * Statuses retried for idempotent requests: internal error (S3 documents InternalError as
 * retryable), bad gateway, unavailable, and Cloudflare's 524 timeout.
 */
export const RETRYABLE_STATUSES = new Set([500, 502, 503, 524]);

/** The error code of a network failure, looking through undici's and Node's wrappers. */
export function networkErrorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    // Happy-eyeballs connection attempts fail with an AggregateError of per-address errors.
    const nested = current instanceof AggregateError ? current.errors[0] : undefined;
    current = nested ?? current.cause;
  }
  return undefined;
}

export function isRetryableNetworkError(error: unknown): boolean {
  const code = networkErrorCode(error);
  return code !== undefined && RETRYABLE_CODES.has(code);
}

/** Maps a failure to send the request or receive response headers. */
export function networkFailure(error: unknown, target: UpstreamTarget): S3Error {
  const code = networkErrorCode(error) ?? (error instanceof Error ? error.name : 'unknown error');
  const upstream = describeUpstream(target);
  if (TIMEOUT_CODES.has(code)) {
    const phase = code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT' ? 'accept a connection' : 'answer';
    return new S3Error('GatewayTimeout', `The upstream ${upstream} did not ${phase} in time (${code}); retry later.`, { cause: error });
  }
  if (code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') {
    return new S3Error('IncompleteBody', 'The request body did not match its declared length.', { cause: error });
  }
  const what =
    code === 'ECONNREFUSED'
      ? 'refused the connection'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'could not be resolved (DNS)'
        : code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE'
          ? 'closed the connection unexpectedly'
          : /CERT|TLS|SSL/i.test(code)
            ? 'failed the TLS handshake'
            : 'could not be reached';
  return new S3Error(
    'BadGateway',
    `The upstream ${upstream} ${what} (${code}); check that it is running and reachable from the gateway, then retry.`,
    { cause: error },
  );
}

/** Maps upstream statuses that are gateway problems rather than S3 answers. Null: pass the response through. */
export function statusFailure(status: number, target: UpstreamTarget, retryAfter: string | undefined): S3Error | null {
  const upstream = describeUpstream(target);
  const headers: Record<string, string> = retryAfter ? { 'retry-after': retryAfter } : {};
  switch (status) {
    case 524:
      return new S3Error('GatewayTimeout', `The upstream ${upstream} timed out processing the request (HTTP 524); retry, or use smaller parts for large uploads.`, { headers });
    case 507:
      return new S3Error(
        'InsufficientStorage',
        target.kind === 'runpod'
          ? `The RunPod network volume "${target.bucket}" in ${target.datacenter} is full; increase its size in the RunPod console (Storage -> the volume -> Edit) or delete objects, then retry.`
          : `The upstream ${upstream} has no space left for bucket "${target.bucket}"; free space or grow the storage, then retry.`,
      );
    default:
      return null;
  }
}

/**
 * A 5xx that did not come with an S3 error document (a proxy's HTML page, a crashed server's
 * traceback, an empty body): clients get an S3 error they can parse and retry on instead.
 */
export function serverErrorFailure(status: number, target: UpstreamTarget, retryAfter: string | undefined): S3Error {
  const upstream = describeUpstream(target);
  const headers: Record<string, string> = retryAfter ? { 'retry-after': retryAfter } : {};
  if (status === 504) {
    return new S3Error('GatewayTimeout', `The upstream ${upstream} timed out (HTTP 504); retry later.`, { headers });
  }
  if (status === 503) {
    return new S3Error('ServiceUnavailable', `The upstream ${upstream} is unavailable (HTTP 503); retry later.`, { headers });
  }
  return new S3Error(
    'BadGateway',
    `The upstream ${upstream} failed with HTTP ${status} and no S3 error document; retry, and if it persists check the upstream's logs.`,
    { headers },
  );
}
