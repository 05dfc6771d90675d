/** SigV4 verification for S3 requests: request signatures, presigned URLs and streaming payloads. */
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
