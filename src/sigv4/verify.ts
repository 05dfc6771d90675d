/**
 * verifyRequest: authenticates one S3 request signed with SigV4, either by the Authorization header
 * or by presigned query parameters. Pure and synchronous; the body is checked separately by
 * createPayloadVerifier (payload.ts).
 */
import { timingSafeEqual } from 'node:crypto';
import { S3Error } from '../errors.js';
import {
  parseAuthorizationHeader,
  parsePresignedParameters,
  scanQueryAuth,
  unsupportedMechanism,
  validateCredentialScope,
  type AuthorizationParameters,
} from './authorization.js';
import {
  buildCanonicalRequest,
  buildStringToSign,
  canonicalHeadersBlock,
  canonicalVariants,
  credentialScope,
  primaryCanonicalUriAndQuery,
  splitRawQuery,
  type RawQueryParam,
} from './canonical.js';
import { formatAmzDate, formatIsoSeconds, parseAmzDate, parseHttpDate } from './dates.js';
import { hmacSha256, signingKeyFor, UNKNOWN_KEY_OWNER } from './signing-key.js';
import {
  DEFAULT_MAX_SKEW_SECONDS,
  STREAMING_SIGNED_PAYLOAD,
  STREAMING_SIGNED_PAYLOAD_TRAILER,
  STREAMING_UNSIGNED_PAYLOAD_TRAILER,
  UNSIGNED_PAYLOAD,
  type PayloadMode,
  type SignedRequest,
  type VerifiedRequest,
  type VerifyOptions,
} from './types.js';

const CONTENT_SHA256 = 'x-amz-content-sha256';

export function verifyRequest<K>(req: SignedRequest, options: VerifyOptions<K>): VerifiedRequest<K> {
  const params = splitRawQuery(req.rawQuery);
  // Query auth is looked at first: browsers and proxies may add headers, never X-Amz-* parameters.
  const scan = scanQueryAuth(params);
  const authorization = singleHeader(req.headers, 'authorization');
  if (scan.isPresigned || scan.isSigV2) {
    if (authorization !== undefined) throw bothMechanisms();
    if (scan.isSigV2) throw unsupportedMechanism();
    return verifyPresigned(req, params, scan, options);
  }
  if (authorization === undefined) {
    throw new S3Error(
      'AccessDenied',
      'Access Denied. Anonymous requests are not allowed: sign the request with a keygate access key (or use a presigned URL).',
    );
  }
  return verifyHeaderAuth(req, params, authorization, options);
}

function bothMechanisms(): S3Error {
  return new S3Error(
    'InvalidArgument',
    'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified',
    { details: { ArgumentName: 'Authorization', ArgumentValue: 'Authorization and X-Amz-* query parameters both present' } },
  );
}

function verifyHeaderAuth<K>(req: SignedRequest, params: RawQueryParam[], authorization: string, options: VerifyOptions<K>): VerifiedRequest<K> {
  const auth = parseAuthorizationHeader(authorization);
  const service = options.service ?? 's3';

  // The request time: x-amz-date, else the Date header (converted to the ISO basic form it is signed as).
  const xAmzDate = singleHeader(req.headers, 'x-amz-date');
  let amzDate: string;
  let requestTime: Date | undefined;
  let requestTimeAsSent: string;
  if (xAmzDate !== undefined) {
    requestTime = parseAmzDate(xAmzDate);
    amzDate = xAmzDate;
    requestTimeAsSent = xAmzDate;
  } else {
    const date = singleHeader(req.headers, 'date') ?? '';
    requestTime = parseHttpDate(date);
    amzDate = requestTime ? formatAmzDate(requestTime) : '';
    requestTimeAsSent = date;
  }
  if (requestTime === undefined) {
    throw new S3Error('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header (x-amz-date format: yyyyMMddTHHmmssZ).');
  }
  validateCredentialScope(auth.credential, 'header', { regions: options.regions, service, amzDate });
  assertRequiredHeadersSigned(req.headers, auth.signedHeaders);

  const declaredPayload = singleHeader(req.headers, CONTENT_SHA256);
  if (declaredPayload === undefined) {
    throw new S3Error('InvalidRequest', `Missing required header for this request: ${CONTENT_SHA256}`, {
      details: { ArgumentName: CONTENT_SHA256 },
    });
  }
  const payload = parsePayloadMode(declaredPayload);

  const signing = checkSignature(req, params, undefined, auth, amzDate, declaredPayload, service, options);
  assertWithinSkew(requestTime, requestTimeAsSent, options);
  return verifiedRequest(signing, 'header', payload, amzDate, streamingHeaders(req.headers, payload), null);
}

function verifyPresigned<K>(
  req: SignedRequest,
  params: RawQueryParam[],
  scan: ReturnType<typeof scanQueryAuth>,
  options: VerifyOptions<K>,
): VerifiedRequest<K> {
  const presigned = parsePresignedParameters(params, scan);
  const service = options.service ?? 's3';
  const requestTime = parseAmzDate(presigned.amzDate);
  if (requestTime === undefined) {
    throw new S3Error('AuthorizationQueryParametersError', "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"", {
      details: { ArgumentName: 'X-Amz-Date', ArgumentValue: presigned.amzDate },
    });
  }
  validateCredentialScope(presigned.credential, 'query', { regions: options.regions, service, amzDate: presigned.amzDate });
  assertRequiredHeadersSigned(req.headers, presigned.signedHeaders);

  // Presigned URLs sign UNSIGNED-PAYLOAD unless they pin a hash (query parameter, or a signed header).
  const signedHeaderHash = presigned.signedHeaders.includes(CONTENT_SHA256) ? singleHeader(req.headers, CONTENT_SHA256) : undefined;
  const payloadHash = presigned.contentSha256 ?? signedHeaderHash ?? UNSIGNED_PAYLOAD;
  const payload = parsePayloadMode(payloadHash);

  const signing = checkSignature(req, params, new Set([presigned.signatureIndex]), presigned, presigned.amzDate, payloadHash, service, options);

  const now = options.now ?? new Date();
  const expiresAt = new Date(requestTime.getTime() + presigned.expiresSeconds * 1000);
  if (now.getTime() > expiresAt.getTime()) {
    throw new S3Error('AccessDenied', 'Request has expired', {
      details: { 'X-Amz-Expires': presigned.expiresSeconds, Expires: formatIsoSeconds(expiresAt), ServerTime: formatIsoSeconds(now) },
    });
  }
  const maxSkewMs = (options.maxSkewSeconds ?? DEFAULT_MAX_SKEW_SECONDS) * 1000;
  if (requestTime.getTime() - now.getTime() > maxSkewMs) {
    throw new S3Error('AccessDenied', 'Request is not valid yet: X-Amz-Date is in the future. Check the clock of the machine that presigned the URL.', {
      details: { RequestTime: presigned.amzDate, ServerTime: formatIsoSeconds(now), MaxAllowedSkewMilliseconds: maxSkewMs },
    });
  }
  return verifiedRequest(signing, 'presigned', payload, presigned.amzDate, streamingHeaders(req.headers, payload), expiresAt);
}

type SigningResult<K> = Pick<VerifiedRequest<K>, 'key' | 'accessKeyId' | 'scope' | 'region' | 'seedSignature' | 'signingKey'>;

/** Builds the result with one fixed shape (object spreads here cost a quarter of the hot path). */
function verifiedRequest<K>(
  signing: SigningResult<K>,
  authType: VerifiedRequest<K>['authType'],
  payload: PayloadMode,
  amzDate: string,
  streaming: { decodedContentLength: number | null; trailerHeaders: string[] },
  presignExpiresAt: Date | null,
): VerifiedRequest<K> {
  return {
    key: signing.key,
    accessKeyId: signing.accessKeyId,
    authType,
    payload,
    amzDate,
    scope: signing.scope,
    region: signing.region,
    seedSignature: signing.seedSignature,
    signingKey: signing.signingKey,
    decodedContentLength: streaming.decodedContentLength,
    trailerHeaders: streaming.trailerHeaders,
    presignExpiresAt,
  };
}

/**
 * Computes the expected signature and compares it in constant time. An unknown access key goes
 * through the same work with a throwaway secret before InvalidAccessKeyId, so response time does not
 * tell which keys exist.
 */
function checkSignature<K>(
  req: SignedRequest,
  params: RawQueryParam[],
  skipParams: ReadonlySet<number> | undefined,
  auth: AuthorizationParameters,
  amzDate: string,
  payloadHash: string,
  service: string,
  options: VerifyOptions<K>,
): SigningResult<K> {
  const { credential, signedHeaders } = auth;
  const found = options.lookup(credential.accessKeyId);
  const signingKey = signingKeyFor(found ?? UNKNOWN_KEY_OWNER, credential.date, credential.region, service);
  const scope = credentialScope(credential.date, credential.region, service);
  const provided = /^[0-9a-fA-F]{64}$/.test(auth.signature) ? Buffer.from(auth.signature, 'hex') : undefined;
  const signedHeaderList = signedHeaders.join(';');

  const primary = primaryCanonicalUriAndQuery(req.rawPath, params, skipParams);
  const canonicalRequest = buildCanonicalRequest({
    method: req.method,
    canonicalUri: primary.uri,
    canonicalQuery: primary.query,
    canonicalHeaders: canonicalHeadersBlock(req.headers, signedHeaders),
    signedHeaders: signedHeaderList,
    payloadHash,
  });
  const stringToSign = buildStringToSign(amzDate, scope, canonicalRequest);
  let matched = signatureMatches(provided, hmacSha256(signingKey, stringToSign));
  if (!matched) {
    for (const variant of canonicalVariants(req.rawPath, params, skipParams, req.headers, signedHeaders)) {
      const alternative = buildCanonicalRequest({
        method: req.method,
        canonicalUri: variant.uri,
        canonicalQuery: variant.query,
        canonicalHeaders: canonicalHeadersBlock(req.headers, signedHeaders, variant.whitespace),
        signedHeaders: signedHeaderList,
        payloadHash,
      });
      if (signatureMatches(provided, hmacSha256(signingKey, buildStringToSign(amzDate, scope, alternative)))) {
        matched = true;
        break;
      }
    }
  }

  if (found === undefined) {
    throw new S3Error('InvalidAccessKeyId', undefined, { details: { AWSAccessKeyId: credential.accessKeyId } });
  }
  if (!matched) {
    throw new S3Error('SignatureDoesNotMatch', undefined, {
      details: options.debug
        ? {
            AWSAccessKeyId: credential.accessKeyId,
            StringToSign: stringToSign,
            SignatureProvided: auth.signature,
            StringToSignBytes: hexBytes(stringToSign),
            CanonicalRequest: canonicalRequest,
            CanonicalRequestBytes: hexBytes(canonicalRequest),
          }
        : { AWSAccessKeyId: credential.accessKeyId },
    });
  }
  return {
    key: found.key,
    accessKeyId: credential.accessKeyId,
    scope,
    region: credential.region,
    seedSignature: auth.signature.toLowerCase(),
    // A private copy: the cached key must not be zeroed or altered by whoever holds the result.
    signingKey: Buffer.from(signingKey),
  };
}

function signatureMatches(provided: Buffer | undefined, expected: Buffer): boolean {
  return provided !== undefined && provided.length === expected.length && timingSafeEqual(provided, expected);
}

/** S3's *Bytes detail form: each byte as two hex digits, space separated. */
function hexBytes(text: string): string {
  return Buffer.from(text, 'utf8')
    .toString('hex')
    .replace(/(..)(?!$)/g, '$1 ');
}

/**
 * host must be signed, and so must every x-amz-* header the request carries (S3 rejects unsigned ones,
 * and forwarding them would let anyone on the path add e.g. x-amz-copy-source). x-amz-content-sha256 is
 * exempt: its value is the last line of the canonical request, so it is covered anyway.
 */
function assertRequiredHeadersSigned(headers: SignedRequest['headers'], signedHeaders: readonly string[]): void {
  let unsigned: string[] | undefined;
  if (!signedHeaders.includes('host')) unsigned = ['host'];
  for (const name in headers) {
    if (name.length > 6 && name.startsWith('x-amz-') && name !== CONTENT_SHA256 && headers[name] !== undefined && !signedHeaders.includes(name)) {
      (unsigned ??= []).push(name);
    }
  }
  if (unsigned !== undefined) {
    throw new S3Error('AccessDenied', 'There were headers present in the request which were not signed', {
      details: { HeadersNotSigned: unsigned.join(', ') },
    });
  }
}

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

export function parsePayloadMode(value: string): PayloadMode {
  switch (value) {
    case UNSIGNED_PAYLOAD:
      return { kind: 'unsigned' };
    case STREAMING_SIGNED_PAYLOAD:
      return { kind: 'streaming-signed', trailer: false };
    case STREAMING_SIGNED_PAYLOAD_TRAILER:
      return { kind: 'streaming-signed', trailer: true };
    case STREAMING_UNSIGNED_PAYLOAD_TRAILER:
      return { kind: 'streaming-unsigned-trailer' };
  }
  if (SHA256_HEX.test(value)) return { kind: 'signed', sha256: value.toLowerCase() };
  throw new S3Error(
    'InvalidArgument',
    'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER), STREAMING-UNSIGNED-PAYLOAD-TRAILER, or a valid sha256 value.',
    { details: { ArgumentName: CONTENT_SHA256, ArgumentValue: value } },
  );
}

function streamingHeaders(headers: SignedRequest['headers'], payload: PayloadMode): { decodedContentLength: number | null; trailerHeaders: string[] } {
  const trailer = singleHeader(headers, 'x-amz-trailer');
  const trailerHeaders =
    trailer === undefined
      ? []
      : trailer
          .split(',')
          .map((t) => t.trim().toLowerCase())
          .filter((t) => t !== '');
  if (payload.kind === 'signed' || payload.kind === 'unsigned') return { decodedContentLength: null, trailerHeaders };
  const declared = singleHeader(headers, 'x-amz-decoded-content-length');
  if (declared === undefined) {
    throw new S3Error('MissingContentLength', 'aws-chunked uploads must send x-amz-decoded-content-length (the object size before chunk encoding).');
  }
  if (!/^\d{1,15}$/.test(declared)) {
    throw new S3Error('InvalidArgument', 'x-amz-decoded-content-length must be a non-negative integer number of bytes.', {
      details: { ArgumentName: 'x-amz-decoded-content-length', ArgumentValue: declared },
    });
  }
  return { decodedContentLength: Number(declared), trailerHeaders };
}

function assertWithinSkew<K>(requestTime: Date, requestTimeAsSent: string, options: VerifyOptions<K>): void {
  const now = options.now ?? new Date();
  const maxSkewMs = (options.maxSkewSeconds ?? DEFAULT_MAX_SKEW_SECONDS) * 1000;
  if (Math.abs(now.getTime() - requestTime.getTime()) > maxSkewMs) {
    throw new S3Error(
      'RequestTimeTooSkewed',
      "The difference between the request time and the server's time is too large. Sync the client's clock (e.g. with NTP) and retry.",
      {
        details: { RequestTime: requestTimeAsSent, ServerTime: formatIsoSeconds(now), MaxAllowedSkewMilliseconds: maxSkewMs },
      },
    );
  }
}

/** A header that must appear at most once; undefined when absent. */
export function singleHeader(headers: SignedRequest['headers'], name: string): string | undefined {
  const value = headers[name];
  if (value === undefined || typeof value === 'string') return value;
  if (value.length === 0) return undefined;
  if (value.length === 1) return value[0];
  throw new S3Error('InvalidArgument', `The ${name} header was sent ${value.length} times; send it once.`, {
    details: { ArgumentName: name },
  });
}
