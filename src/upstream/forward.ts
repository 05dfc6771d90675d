/**
 * Streams one S3 request to its upstream, re-signed with the operator's credentials, and hands the
 * upstream's response back as a stream. Nothing is buffered whole: bodies flow with backpressure in
 * both directions, and the upstream sees Content-Length = the decoded length (or the exact length
 * of the aws-chunked re-encoding that carries a trailing checksum).
 *
 * Commit safety: the request body is the gateway's verified, decoded stream. If it errors (bad
 * chunk signature, checksum mismatch, client gone), the upstream request is destroyed before its
 * declared length was sent, so the upstream never commits a partial or unverified object.
 *
 * What is sent is what the operation's table entry allows (the caller passes the filtered headers
 * and query), plus the forwarder's own framing and signature headers. Upstream error answers never
 * reach the client as they are: they become S3Errors with the gateway's message (failures.ts), and
 * the upstream's words go to the log.
 */
import { readFileSync } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Cancellation } from '../cancellation.js';
import { readAtMost } from '../read-at-most.js';
import { S3Error } from '../errors.js';
import { headerValue } from '../header-value.js';
import { logToStderr, type Logger } from '../observability/log.js';
import { withoutAwsChunked } from '../s3/request-headers.js';
import { EMPTY_SHA256 } from '../sigv4/types.js';
import { AwsChunkedTrailerEncoder, trailerValueLength } from './aws-chunked.js';
import { isRetryableNetworkError, networkErrorCode, networkFailure, readErrorDocument, RETRYABLE_STATUSES, upstreamAnswerFailure } from './failures.js';
import { FramingGuardedAgent } from './response-framing.js';
import { CHECKSUM_HEADER_PREFIX, clientResponseHeaders } from './response-headers.js';
import { encodeQuery, signUpstreamRequest, upstreamPath } from './signing.js';
import { describeUpstream, type UpstreamTarget } from './target.js';
import { DEFAULT_UPSTREAM_TIMEOUTS } from './timeouts.js';

/** A verified request body, ready to go upstream. */
export interface UpstreamBody {
  /** The decoded, verified bytes (the last ones held back until every check passed). */
  stream: Readable;
  /** Decoded length, known before the first byte. */
  length: number;
  /** SHA-256 (hex) the client signed for exactly these bytes, for the upstream to check again; null otherwise. */
  sha256: string | null;
  /** Base64 MD5 of the bytes when the gateway computed it (a spooled form file), sent as Content-MD5. */
  contentMd5?: string;
  /** Verified x-amz-checksum-* values (header name -> base64), complete once the stream ended. */
  checksums: () => Record<string, string>;
  /** The checksum header the client sent as a trailer, forwarded as one where the upstream can take it. */
  trailerChecksum: string | null;
}

export interface ForwardRequest {
  target: UpstreamTarget;
  method: string;
  /** Decoded object key (any characters); null for bucket- and service-level requests. */
  objectKey: string | null;
  /** With objectKey null: true = bucket-level (`/bucket`), false = service-level (`/`, ListBuckets). Default true. */
  bucketLevel?: boolean;
  /** Decoded query pairs to send, as the operation's table entry allows them. */
  query: Array<[string, string]>;
  /** Request headers to send (lower-case), as the operation's table entry allows them. */
  headers: Record<string, string>;
  /** The client's User-Agent, named in the gateway's own. */
  userAgent?: string;
  body: UpstreamBody | null;
  /** Client went away: abort the upstream request at once (undici takes it as its request signal). */
  signal?: Cancellation;
  /** Idempotent request: with no body it is retried on connection errors and 500/502/503/524. */
  retry?: boolean;
  /** The client request's id, for the log lines about this upstream request. */
  requestId?: string;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: Readable;
}

export interface RetryPolicy {
  /** Total attempts including the first. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Longest Retry-After the gateway waits for; longer values are cut to this. */
  maxRetryAfterMs: number;
}

export interface ForwarderOptions {
  /** TCP/TLS connect timeout. Default 10 s. */
  connectTimeoutMs?: number;
  /**
   * Wait for response headers after the request was sent (and the longest an upload may stall).
   * Default 5 min: CompleteMultipartUpload of a large object can take minutes upstream.
   */
  headersTimeoutMs?: number;
  /** Longest pause between two response body chunks. Default 5 min. */
  bodyTimeoutMs?: number;
  /** Idle keep-alive connections are closed after this. Default 30 s. */
  keepAliveTimeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Jitter source, replaceable in tests. */
  random?: () => number;
  /** Where upstream failures are described in full (endpoint, status, the upstream's error body). */
  log?: Logger;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  attempts: 3,
  baseDelayMs: 100,
  maxDelayMs: 2000,
  maxRetryAfterMs: 5000,
});

/** Largest error body read to find its S3 error code (and log it). */
const MAX_ERROR_PEEK_BYTES = 64 * 1024;
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
const STREAMING_UNSIGNED_TRAILER = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';
const SHA256_HEX = /^[0-9a-f]{64}$/i;

export const KEYGATE_USER_AGENT = `keygate/${readPackageVersion()}`;

function readPackageVersion(): string {
  try {
    // src/upstream and dist/upstream are both two levels below the package root.
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'dev';
  } catch {
    return 'dev';
  }
}

/** The upstream body and headers for one request, prepared once (only bodiless requests are retried). */
interface PreparedBody {
  stream: Readable | null;
  /** Headers describing the upstream body (content-length, payload hash, aws-chunked framing). */
  headers: Readonly<Record<string, string>>;
  trailerChecksum: string | null;
  /** Set when the client's body stream failed; that failure is what the caller should report. */
  error: () => Error | null;
}

export class UpstreamForwarder {
  private readonly agent: Dispatcher;
  private readonly retryPolicy: RetryPolicy;
  private readonly random: () => number;
  private readonly log: Logger;

  constructor(options: ForwarderOptions = {}) {
    this.agent = new FramingGuardedAgent({
      connect: { timeout: options.connectTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUTS.connectTimeoutMs },
      headersTimeout: options.headersTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUTS.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUTS.bodyTimeoutMs,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 30_000,
      keepAliveMaxTimeout: Math.max(options.keepAliveTimeoutMs ?? 30_000, 60_000),
    });
    this.retryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.random = options.random ?? Math.random;
    this.log = options.log ?? logToStderr;
  }

  async forward(request: ForwardRequest): Promise<UpstreamResponse> {
    const { target, signal } = request;
    const method = request.method.toUpperCase();
    throwIfAborted(signal);
    const path = upstreamPath(target, request.objectKey, request.bucketLevel ?? true);
    const query = encodeQuery(request.query);
    const body = await prepareBody(request, method);
    const headers: Record<string, string> = { ...request.headers, ...body.headers, 'user-agent': userAgentFor(request.userAgent) };
    // A checksum the client sent as a trailer travels as one (or not at all), never also as a header.
    const clientTrailer = request.body?.trailerChecksum;
    if (clientTrailer) delete headers[clientTrailer];
    if (body.trailerChecksum !== null) {
      const rest = withoutAwsChunked(headers['content-encoding'] ?? '');
      headers['content-encoding'] = rest === '' ? 'aws-chunked' : `aws-chunked,${rest}`;
    }
    dropUnaccompaniedSdkAlgorithm(headers, body.trailerChecksum);

    const attempts = request.retry === true && request.body === null ? Math.max(1, this.retryPolicy.attempts) : 1;
    for (let attempt = 1; ; attempt++) {
      // Signed per attempt so a retry carries a fresh X-Amz-Date.
      const signed = signUpstreamRequest(target, method, path, query, headers);
      let response: Dispatcher.ResponseData;
      try {
        // origin + path, not a URL: parsing a URL would collapse `.`/`..` segments of object keys
        // after the literal path was signed (and so address another object than the client named).
        response = await this.agent.request({
          origin: signed.origin,
          path: signed.pathWithQuery,
          method: method,
          headers: signed.headers,
          body: body.stream,
          signal,
          // undici closes the connection after every HEAD unless told otherwise (a new TCP
          // connection per HeadObject); S3 servers never send a body with HEAD responses.
          reset: method === 'HEAD' ? false : undefined,
        });
      } catch (error) {
        if (signal?.aborted) throw abortReason(signal);
        const bodyError = body.error();
        if (bodyError) throw bodyError;
        if (attempt < attempts && isRetryableNetworkError(error)) {
          await this.pause(this.backoffMs(attempt), signal);
          continue;
        }
        this.log('warn', 'upstream unreachable', {
          requestId: request.requestId,
          upstream: describeUpstream(target),
          method,
          error: networkErrorCode(error) ?? String(error),
        });
        throw networkFailure(error);
      }

      if (attempt < attempts && RETRYABLE_STATUSES.has(response.statusCode)) {
        const retryAfter = parseRetryAfterMs(headerValue(response.headers, 'retry-after'));
        await discard(response.body);
        const delay = retryAfter === null ? this.backoffMs(attempt) : Math.min(retryAfter, this.retryPolicy.maxRetryAfterMs);
        await this.pause(delay, signal);
        continue;
      }
      return this.finishResponse(response, request, method);
    }
  }

  /** A success (or 304) streams on; anything else becomes the S3Error the client gets, and a log line. */
  private async finishResponse(response: Dispatcher.ResponseData, request: ForwardRequest, method: string): Promise<UpstreamResponse> {
    const status = response.statusCode;
    if (status < 300 || status === 304) return { status, headers: clientResponseHeaders(response.headers), body: response.body };
    // A HEAD answer has no body: its status is all there is.
    const text = method === 'HEAD' ? null : await peekBody(response.body, MAX_ERROR_PEEK_BYTES);
    if (method === 'HEAD') await discard(response.body);
    const document = text === null ? null : readErrorDocument(text.toString('utf8'));
    this.log('warn', 'upstream error answer', {
      requestId: request.requestId,
      upstream: describeUpstream(request.target),
      method,
      status,
      upstreamRequestId: headerValue(response.headers, 'x-amz-request-id') ?? null,
      body: text === null ? null : text.toString('utf8', 0, Math.min(text.length, 4096)),
    });
    throw upstreamAnswerFailure(status, document, request.target, headerValue(response.headers, 'retry-after'), method);
  }

  /** Closes pooled upstream connections (at shutdown). */
  async close(): Promise<void> {
    await this.agent.close();
  }

  /** Jittered exponential backoff: base * 2^(n-1), capped, scaled by a random 50-100%. */
  backoffMs(failedAttempt: number): number {
    const exponential = Math.min(this.retryPolicy.maxDelayMs, this.retryPolicy.baseDelayMs * 2 ** (failedAttempt - 1));
    return Math.round(exponential * (0.5 + this.random() / 2));
  }

  private async pause(ms: number, signal: Cancellation | undefined): Promise<void> {
    if (signal === undefined) await new Promise((resolve) => setTimeout(resolve, ms));
    else await signal.sleep(ms);
  }
}

/** Reads a (small) upstream response body as text, refusing more than `limit` bytes. */
export async function readUpstreamBody(response: UpstreamResponse, limit: number): Promise<string> {
  const bytes = await readAtMost(response.body, limit);
  if (bytes === null) throw new S3Error('BadGateway', `The upstream's response is larger than the ${limit} bytes the gateway reads.`);
  return bytes.toString('utf8');
}

/** The upstream body of every bodiless request: one shared, frozen object rather than one per request. */
const NO_BODY: PreparedBody = Object.freeze({ stream: null, headers: Object.freeze({}), trailerChecksum: null, error: () => null });

async function prepareBody(request: ForwardRequest, method: string): Promise<PreparedBody> {
  const body = request.body;
  if (body === null) {
    // PUT/POST without body (CreateMultipartUpload, CopyObject…): undici sends Content-Length: 0 itself.
    return NO_BODY;
  }
  const source = body.stream;
  const length = body.length;
  if (source.errored) throw source.errored;

  const trailerName = chooseTrailer(request);
  if (length === 0 && trailerName === null) {
    // Nothing to hold back in an empty body: wait for the verifier to finish before sending.
    await drainEmpty(source, method);
    return { stream: null, headers: { 'content-length': '0', 'x-amz-content-sha256': EMPTY_SHA256 }, trailerChecksum: null, error: () => null };
  }

  let failure: Error | null = null;
  let wrapper: PassThrough | AwsChunkedTrailerEncoder;
  const headers: Record<string, string> = {};
  if (trailerName !== null) {
    const encoder = new AwsChunkedTrailerEncoder({
      decodedLength: length,
      trailerName,
      trailerValue: () => body.checksums()[trailerName],
    });
    wrapper = encoder;
    headers['content-length'] = String(encoder.encodedLength);
    headers['x-amz-content-sha256'] = STREAMING_UNSIGNED_TRAILER;
    headers['x-amz-decoded-content-length'] = String(length);
    headers['x-amz-trailer'] = trailerName;
  } else {
    wrapper = new PassThrough();
    headers['content-length'] = String(length);
    // A client-signed SHA-256 of a plain body is the hash of these exact bytes: let the upstream check it too.
    headers['x-amz-content-sha256'] = body.sha256 !== null && SHA256_HEX.test(body.sha256) ? body.sha256.toLowerCase() : UNSIGNED_PAYLOAD;
  }
  if (body.contentMd5 !== undefined) headers['content-md5'] = body.contentMd5;
  // The wrapper, not the client's stream, goes to undici: undici destroys what it is given when the
  // upstream fails, and the client's stream belongs to the HTTP layer. A client-side failure is
  // remembered so the caller reports it (e.g. SignatureDoesNotMatch) rather than a gateway error.
  source.on('error', (error) => {
    failure ??= error;
    wrapper.destroy(error);
  });
  // Destroyed without an error (no 'end'): pipe() would leave the upstream waiting for bytes.
  source.on('close', () => {
    if (source.readableEnded || wrapper.destroyed) return;
    failure ??= new S3Error('IncompleteBody', 'The request body ended before its declared length.');
    wrapper.destroy(failure);
  });
  wrapper.on('close', () => source.unpipe(wrapper));
  source.pipe(wrapper);
  return { stream: wrapper, headers, trailerChecksum: trailerName, error: () => failure };
}

/** The checksum trailer to forward, when the client sent one and the upstream can take it. */
function chooseTrailer(request: ForwardRequest): string | null {
  const name = request.body?.trailerChecksum ?? null;
  if (!request.target.capabilities.trailingChecksums || name === null) return null;
  return trailerValueLength(name) !== null ? name : null;
}

/** `keygate/x.y.z (+<client agent>)`: the upstream's logs show both. */
function userAgentFor(clientAgent: string | undefined): string {
  return clientAgent ? `${KEYGATE_USER_AGENT} (+${clientAgent})` : KEYGATE_USER_AGENT;
}

/**
 * S3 refuses x-amz-sdk-checksum-algorithm when no matching checksum header or trailer comes along,
 * which happens when a client's trailing checksum cannot be forwarded.
 */
function dropUnaccompaniedSdkAlgorithm(headers: Record<string, string>, trailerChecksum: string | null): void {
  const algorithm = headers['x-amz-sdk-checksum-algorithm']?.trim().toLowerCase();
  if (algorithm === undefined) return;
  const checksumName = CHECKSUM_HEADER_PREFIX + algorithm;
  if (!(checksumName in headers) && trailerChecksum !== checksumName) delete headers['x-amz-sdk-checksum-algorithm'];
}

async function drainEmpty(source: Readable, method: string): Promise<void> {
  for await (const chunk of source) {
    if ((chunk as Buffer).length > 0) throw new S3Error('IncompleteBody', `The ${method} request body is longer than its declared 0 bytes.`);
  }
}

/** The whole body if it fits in `limit` bytes, else null (the rest is discarded). */
async function peekBody(body: Readable, limit: number): Promise<Buffer | null> {
  try {
    return await readAtMost(body, limit);
  } catch {
    return null;
  }
}

/** Consumes a small error body so the connection can be reused; destroys it when large or failing. */
async function discard(body: Dispatcher.ResponseData['body']): Promise<void> {
  try {
    await body.dump({ limit: MAX_ERROR_PEEK_BYTES });
  } catch {
    // The connection is gone either way.
  }
}

/** Retry-After as seconds or an HTTP date, in ms; null when absent or unreadable. */
export function parseRetryAfterMs(value: string | undefined, now = Date.now()): number | null {
  if (value === undefined) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

function throwIfAborted(signal: Cancellation | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}

function abortReason(signal: Cancellation): Error {
  return signal.reason ?? new S3Error('RequestTimeout', 'The client closed the connection.');
}
