/**
 * The signing side: presigned URLs keygate issues, header signing (benchmarks, tests, tools), and the
 * aws-chunked chunk/trailer signatures shared with the streaming verifier.
 */
import {
  buildCanonicalRequest,
  buildStringToSign,
  canonicalHeadersBlock,
  canonicalQueryString,
  credentialScope,
  sha256Hex,
  splitRawQuery,
} from './canonical.js';
import { formatAmzDate } from './dates.js';
import { deriveSigningKey, hmacSha256 } from './signing-key.js';
import { AWS4_HMAC_SHA256, EMPTY_SHA256, MAX_PRESIGN_EXPIRES_SECONDS, UNSIGNED_PAYLOAD } from './types.js';
import { canonicalPath, uriEncode } from './uri-encoding.js';

export { deriveSigningKey } from './signing-key.js';

export interface PresignUrlOptions {
  method: string;
  url: URL;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  expiresInSeconds: number;
  now?: Date;
  /** Extra headers the URL is bound to (e.g. content-type); whoever uses the URL must send them verbatim. */
  signedHeaders?: Record<string, string>;
}

const AUTH_QUERY_PARAMS = new Set(['x-amz-algorithm', 'x-amz-credential', 'x-amz-date', 'x-amz-expires', 'x-amz-signedheaders', 'x-amz-signature']);

/**
 * A SigV4 presigned URL (UNSIGNED-PAYLOAD). Path and query are emitted in canonical form, so any
 * S3-compatible verifier computes the same canonical request. Existing X-Amz-* auth parameters on
 * `url` are replaced.
 */
export function presignUrl(opts: PresignUrlOptions): string {
  if (!Number.isInteger(opts.expiresInSeconds) || opts.expiresInSeconds < 1 || opts.expiresInSeconds > MAX_PRESIGN_EXPIRES_SECONDS) {
    throw new RangeError(`expiresInSeconds must be an integer from 1 to ${MAX_PRESIGN_EXPIRES_SECONDS} (one week); got ${opts.expiresInSeconds}`);
  }
  const amzDate = formatAmzDate(opts.now ?? new Date());
  const date = amzDate.slice(0, 8);
  const scope = credentialScope(date, opts.region, 's3');

  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(opts.signedHeaders ?? {})) headers[name.toLowerCase()] = value;
  headers['host'] = opts.url.host;
  const signedHeaders = Object.keys(headers).sort();

  const params = splitRawQuery(opts.url.search.slice(1)).filter((p) => !AUTH_QUERY_PARAMS.has(p.rawKey.toLowerCase()));
  params.push(
    { rawKey: 'X-Amz-Algorithm', rawValue: AWS4_HMAC_SHA256 },
    { rawKey: 'X-Amz-Credential', rawValue: uriEncode(`${opts.accessKeyId}/${scope}`) },
    { rawKey: 'X-Amz-Date', rawValue: amzDate },
    { rawKey: 'X-Amz-Expires', rawValue: String(opts.expiresInSeconds) },
    { rawKey: 'X-Amz-SignedHeaders', rawValue: uriEncode(signedHeaders.join(';')) },
  );
  const canonicalUri = canonicalPath(opts.url.pathname);
  const canonicalQuery = canonicalQueryString(params);
  const canonicalRequest = buildCanonicalRequest({
    method: opts.method.toUpperCase(),
    canonicalUri,
    canonicalQuery,
    canonicalHeaders: canonicalHeadersBlock(headers, signedHeaders),
    signedHeaders: signedHeaders.join(';'),
    payloadHash: UNSIGNED_PAYLOAD,
  });
  const signingKey = deriveSigningKey(opts.secretAccessKey, date, opts.region, 's3');
  const signature = hmacSha256(signingKey, buildStringToSign(amzDate, scope, canonicalRequest)).toString('hex');
  return `${opts.url.protocol}//${opts.url.host}${canonicalUri}?${canonicalQuery}&X-Amz-Signature=${signature}`;
}

export interface SignRequestOptions {
  method: string;
  rawPath: string;
  rawQuery?: string;
  /** Headers to send; all are signed unless signedHeaders says otherwise. Must include host. */
  headers: Record<string, string>;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  now?: Date;
  service?: string;
  /** x-amz-content-sha256 value; default UNSIGNED-PAYLOAD. */
  payloadHash?: string;
  /** Lower-case names to sign; default every header given. */
  signedHeaders?: string[];
}

/**
 * Signs a request with the Authorization header. Returns the headers to send: the input plus
 * x-amz-date, x-amz-content-sha256 and authorization (all lower-case names).
 */
export function signRequest(opts: SignRequestOptions): Record<string, string> {
  const amzDate = formatAmzDate(opts.now ?? new Date());
  const service = opts.service ?? 's3';
  const scope = credentialScope(amzDate.slice(0, 8), opts.region, service);
  const payloadHash = opts.payloadHash ?? UNSIGNED_PAYLOAD;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(opts.headers)) headers[name.toLowerCase()] = value;
  headers['x-amz-date'] = amzDate;
  headers['x-amz-content-sha256'] = payloadHash;
  const signedHeaders = (opts.signedHeaders ?? Object.keys(headers)).map((h) => h.toLowerCase()).sort();
  const canonicalRequest = buildCanonicalRequest({
    method: opts.method.toUpperCase(),
    canonicalUri: canonicalPath(opts.rawPath),
    canonicalQuery: canonicalQueryString(splitRawQuery(opts.rawQuery ?? '')),
    canonicalHeaders: canonicalHeadersBlock(headers, signedHeaders),
    signedHeaders: signedHeaders.join(';'),
    payloadHash,
  });
  const signingKey = deriveSigningKey(opts.secretAccessKey, amzDate.slice(0, 8), opts.region, service);
  const signature = hmacSha256(signingKey, buildStringToSign(amzDate, scope, canonicalRequest)).toString('hex');
  headers['authorization'] = `${AWS4_HMAC_SHA256} Credential=${opts.accessKeyId}/${scope}, SignedHeaders=${signedHeaders.join(';')}, Signature=${signature}`;
  return headers;
}

// ---- aws-chunked signatures -------------------------------------------------------------------

/** String-to-sign of one aws-chunked data chunk (the final chunk has empty data). */
export function chunkStringToSign(amzDate: string, scope: string, previousSignature: string, chunkSha256Hex: string): string {
  return `AWS4-HMAC-SHA256-PAYLOAD\n${amzDate}\n${scope}\n${previousSignature}\n${EMPTY_SHA256}\n${chunkSha256Hex}`;
}

/** String-to-sign of the trailer block; `previousSignature` is the final (0-length) chunk's signature. */
export function trailerStringToSign(amzDate: string, scope: string, previousSignature: string, canonicalTrailersSha256Hex: string): string {
  return `AWS4-HMAC-SHA256-TRAILER\n${amzDate}\n${scope}\n${previousSignature}\n${canonicalTrailersSha256Hex}`;
}

/** Trailers as signed: `name:value\n` per trailer, names lower-case and sorted, values trimmed. */
export function canonicalTrailers(trailers: Iterable<readonly [string, string]>): string {
  return [...trailers]
    .map(([name, value]) => [name.trim().toLowerCase(), value.trim()] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([name, value]) => `${name}:${value}\n`)
    .join('');
}

export interface ChunkSigningContext {
  signingKey: Buffer;
  amzDate: string;
  scope: string;
}

export function signChunk(ctx: ChunkSigningContext, previousSignature: string, data: Uint8Array): string {
  return hmacSha256(ctx.signingKey, chunkStringToSign(ctx.amzDate, ctx.scope, previousSignature, sha256Hex(data))).toString('hex');
}

export function signTrailer(ctx: ChunkSigningContext, previousSignature: string, trailers: Iterable<readonly [string, string]>): string {
  return hmacSha256(ctx.signingKey, trailerStringToSign(ctx.amzDate, ctx.scope, previousSignature, sha256Hex(canonicalTrailers(trailers)))).toString('hex');
}

export interface AwsChunkedEncodeOptions {
  /** Size of every chunk, or the sequence of sizes (the last one repeats). Default 64 KiB. */
  chunkSize?: number | number[];
  /** Signs chunks (STREAMING-AWS4-HMAC-SHA256-PAYLOAD*); omit for STREAMING-UNSIGNED-PAYLOAD-TRAILER. */
  signing?: ChunkSigningContext & { seedSignature: string };
  /** Trailing headers, e.g. { 'x-amz-checksum-crc32': '…' }. Signed when `signing` is given. */
  trailers?: Record<string, string>;
}

/** Encodes a body the way SDKs send aws-chunked uploads. Used by tests and benchmarks. */
export function encodeAwsChunked(data: Uint8Array, options: AwsChunkedEncodeOptions = {}): Buffer {
  const sizes = typeof options.chunkSize === 'number' ? [options.chunkSize] : (options.chunkSize ?? [65536]);
  const parts: Buffer[] = [];
  let previous = options.signing?.seedSignature ?? '';
  let offset = 0;
  let index = 0;
  const emit = (chunk: Uint8Array): void => {
    let header = chunk.length.toString(16);
    if (options.signing) {
      previous = signChunk(options.signing, previous, chunk);
      header += `;chunk-signature=${previous}`;
    }
    parts.push(Buffer.from(header + '\r\n', 'latin1'));
    if (chunk.length > 0) parts.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length), Buffer.from('\r\n'));
  };
  while (offset < data.length) {
    const size = Math.max(1, sizes[Math.min(index++, sizes.length - 1)]!);
    emit(data.subarray(offset, offset + size));
    offset += size;
  }
  emit(new Uint8Array(0));
  const trailers = Object.entries(options.trailers ?? {});
  for (const [name, value] of trailers) parts.push(Buffer.from(`${name}:${value}\r\n`, 'latin1'));
  if (options.signing && trailers.length > 0) {
    parts.push(Buffer.from(`x-amz-trailer-signature:${signTrailer(options.signing, previous, trailers)}\r\n`, 'latin1'));
  }
  parts.push(Buffer.from('\r\n'));
  return Buffer.concat(parts);
}
