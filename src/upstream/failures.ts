/**
 * Upstream failures and error answers as the S3 errors clients get. The client's message is the
 * gateway's own and never names an internal endpoint, credentials or the upstream's words: the
 * forwarder logs those (with the request id) for the operator. What a client can act on stays:
 * the S3 error code, a status of the same class, Retry-After.
 */
import { catalogEntry, S3Error } from '../errors.js';
import { decodeXmlText } from '../s3/xml.js';
import type { UpstreamTarget } from './target.js';

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

/**
 * Codes an upstream answers when it refuses the gateway's own credentials or signature (a
 * configuration problem of the operator, or a gateway bug): never the client's fault, so never
 * passed on as if the client's key were wrong.
 */
const GATEWAY_CREDENTIAL_CODES = new Set([
  'SignatureDoesNotMatch',
  'InvalidAccessKeyId',
  'AuthorizationHeaderMalformed',
  'AuthorizationQueryParametersError',
  'RequestTimeTooSkewed',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'InvalidSecurity',
  'XAmzContentSHA256Mismatch',
  'MissingSecurityHeader',
]);

/** Error document fields worth passing on: they describe the client's own request. */
const PASSED_DETAILS = [
  // (Not UploadId: clients know upload ids in the gateway's form, not the upstream's.)
  'ArgumentName',
  'ArgumentValue',
  'Key',
  'PartNumber',
  'ETag',
  'Condition',
  'ActualObjectSize',
  'RangeRequested',
  'MaxSizeAllowed',
  'MinSizeAllowed',
  'ProposedSize',
  'VersionId',
] as const;

const S3_CODE = /^[A-Za-z][A-Za-z0-9.]{0,63}$/;

/** The error code of a network failure, looking through undici's and Node's wrappers. */
export function networkErrorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    // Happy-eyeballs connection attempts fail with an AggregateError of per-address errors.
    const nested: unknown = current instanceof AggregateError ? (current.errors as unknown[])[0] : undefined;
    current = nested ?? current.cause;
  }
  return undefined;
}

export function isRetryableNetworkError(error: unknown): boolean {
  const code = networkErrorCode(error);
  return code !== undefined && RETRYABLE_CODES.has(code);
}

/** Maps a failure to send the request or receive response headers. */
export function networkFailure(error: unknown): S3Error {
  const code = networkErrorCode(error) ?? (error instanceof Error ? error.name : 'unknown error');
  if (TIMEOUT_CODES.has(code)) {
    const phase = code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT' ? 'accept a connection' : 'answer';
    return new S3Error('GatewayTimeout', `The storage service of this bucket did not ${phase} in time; retry later.`, { cause: error });
  }
  if (code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') {
    return new S3Error('IncompleteBody', 'The request body did not match its declared length.', { cause: error });
  }
  const what =
    code === 'ECONNREFUSED'
      ? 'refused the connection'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'could not be found (DNS)'
        : code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE'
          ? 'closed the connection unexpectedly'
          : /CERT|TLS|SSL/i.test(code)
            ? 'failed the TLS handshake'
            : code === 'UNFRAMED_UPSTREAM_ANSWER'
              ? 'answered without Content-Length or chunked framing'
              : 'could not be reached';
  return new S3Error('BadGateway', `The storage service of this bucket ${what}; retry later (the gateway's log has the details).`, { cause: error });
}

/**
 * An upstream answer that is not a success (status >= 300, 304 aside), with its S3 error document
 * when it had one. A HEAD answer never has one: its status is all there is, so it is kept as is.
 */
export function upstreamAnswerFailure(
  status: number,
  document: UpstreamErrorDocument | null,
  target: UpstreamTarget,
  retryAfter: string | undefined,
  method: string,
): S3Error {
  const headers: Record<string, string> = retryAfter ? { 'retry-after': retryAfter } : {};
  const special = statusFailure(status, target, headers);
  if (special) return special;
  const code = document?.code !== undefined && S3_CODE.test(document.code) ? document.code : undefined;
  if (code === undefined) {
    if (status >= 500 && method !== 'HEAD') return serverErrorFailure(status, headers);
    return statusOnlyFailure(status, headers);
  }
  if (GATEWAY_CREDENTIAL_CODES.has(code)) {
    return new S3Error(
      'BadGateway',
      `The storage service refused the gateway's own request (${code}); the operator should check the gateway's upstream credentials and clock (its log has the details).`,
      { headers },
    );
  }
  if (status < 400) {
    return new S3Error('BadGateway', `The storage service redirected the request (${code}); the operator should check the bucket's endpoint and region.`, {
      headers,
    });
  }
  const known = catalogEntry(code);
  const message = known?.message ?? `The storage service answered ${code}.`;
  const details: Record<string, string> = {};
  for (const name of PASSED_DETAILS) if (document?.details[name] !== undefined) details[name] = document.details[name];
  return S3Error.withCode(code, status, message, { headers, details });
}

export interface UpstreamErrorDocument {
  code: string | undefined;
  /** Child elements of `<Error>` with text content, by name (first occurrence). */
  details: Record<string, string>;
}

/** Reads `<Error><Code>…</Code>…</Error>` loosely (an upstream's answer, already size-capped); null when it is none. */
export function readErrorDocument(body: string): UpstreamErrorDocument | null {
  const error = /<Error>([\s\S]*)<\/Error>/.exec(body)?.[1];
  if (error === undefined) return null;
  const details: Record<string, string> = {};
  for (const match of error.matchAll(/<([A-Za-z][A-Za-z0-9]*)>([^<]*)<\/\1>/g)) {
    details[match[1]!] ??= decodeXmlText(match[2]!);
  }
  return { code: details.Code, details };
}

/** Statuses that mean the same whatever the body says. */
function statusFailure(status: number, target: UpstreamTarget, headers: Record<string, string>): S3Error | null {
  switch (status) {
    case 524:
      return new S3Error('GatewayTimeout', 'The storage service timed out processing the request (HTTP 524); retry, or use smaller parts for large uploads.', {
        headers,
      });
    case 507:
      return new S3Error(
        'InsufficientStorage',
        target.kind === 'runpod'
          ? `The RunPod network volume "${target.bucket}" in ${target.datacenter} is full; increase its size in the RunPod console (Storage -> the volume -> Edit) or delete objects, then retry.`
          : 'The storage of this bucket has no space left; free space or grow the storage, then retry.',
        { headers },
      );
    default:
      return null;
  }
}

/**
 * A 5xx that did not come with an S3 error document (a proxy's HTML page, a crashed server's
 * traceback, an empty body): clients get an S3 error they can parse and retry on instead.
 */
function serverErrorFailure(status: number, headers: Record<string, string>): S3Error {
  if (status === 504) return new S3Error('GatewayTimeout', 'The storage service timed out (HTTP 504); retry later.', { headers });
  if (status === 503) return new S3Error('ServiceUnavailable', 'The storage service is unavailable (HTTP 503); retry later.', { headers });
  return new S3Error(
    'BadGateway',
    `The storage service failed with HTTP ${status} and no S3 error document; retry, and if it persists the operator should check the gateway's log.`,
    { headers },
  );
}

/** An answer without an S3 error document (always so for HEAD): the status, with the code S3 uses for it. */
function statusOnlyFailure(status: number, headers: Record<string, string>): S3Error {
  const byStatus: Record<number, string> = {
    500: 'InternalError',
    501: 'NotImplemented',
    503: 'ServiceUnavailable',
    504: 'GatewayTimeout',
    400: 'InvalidRequest',
    401: 'AccessDenied',
    403: 'AccessDenied',
    404: 'NoSuchKey',
    405: 'MethodNotAllowed',
    409: 'OperationAborted',
    411: 'MissingContentLength',
    412: 'PreconditionFailed',
    416: 'InvalidRange',
  };
  if (status < 400) {
    return new S3Error(
      'BadGateway',
      `The storage service redirected the request (HTTP ${status}); the operator should check the bucket's endpoint and region.`,
      { headers },
    );
  }
  const code = byStatus[status] ?? (status >= 500 ? 'InternalError' : 'InvalidRequest');
  return S3Error.withCode(code, status, catalogEntry(code)?.message ?? `The storage service refused the request (HTTP ${status}).`, { headers });
}
