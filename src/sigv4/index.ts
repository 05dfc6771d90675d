/**
 * SigV4 verification for S3 requests: request signatures, presigned URLs and streaming payloads.
 *
 * Typical use in the HTTP layer:
 *
 *   const verified = verifyRequest({ method, rawPath, rawQuery, headers: req.headers }, { lookup, regions });
 *   // ...authorize verified.key...
 *   const verifier = createPayloadVerifier(verified, req.headers, { checksumHeaders: isCompleteMultipart ? 'ignore' : 'verify' });
 *   pipeline(req, verifier, upstreamRequest)   // upstream Content-Length = verified.decodedContentLength ?? Content-Length
 *
 * Both throw/emit S3Error. The verifier holds back the last decoded bytes until every check passed,
 * so a body that fails verification never completes upstream.
 */
export * from './types.js';
export { verifyRequest, parsePayloadMode } from './verify.js';
export { createPayloadVerifier, PayloadVerifier, type PayloadVerifierOptions, type ChecksumListener, type ChecksumSource } from './payload.js';
export {
  presignUrl,
  signRequest,
  deriveSigningKey,
  encodeAwsChunked,
  signChunk,
  signTrailer,
  canonicalTrailers,
  chunkStringToSign,
  trailerStringToSign,
  type PresignUrlOptions,
  type SignRequestOptions,
  type AwsChunkedEncodeOptions,
  type ChunkSigningContext,
} from './sign.js';
export { clearSigningKeyCache } from './signing-key.js';
export { headersFromRawHeaders } from './headers.js';
export { checksumAlgorithmOfHeader, checksumHeaderName, type ChecksumAlgorithm } from './checksums.js';
export { canonicalPath, uriEncode } from './uri-encoding.js';
