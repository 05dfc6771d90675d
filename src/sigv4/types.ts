/**
 * Public types of the SigV4 verifier. The HTTP layer builds a SignedRequest from the raw Node request,
 * calls verifyRequest, then pipes the body through createPayloadVerifier.
 */

export interface SignedRequest {
  /** Upper-case HTTP method. */
  method: string;
  /** Path exactly as on the request line, before '?', still percent-encoded as the client sent it. */
  rawPath: string;
  /** Raw query after '?', without the '?'; '' if none. */
  rawQuery: string;
  /**
   * Node IncomingHttpHeaders (lower-case names). Repeated headers may be given as arrays (e.g. from
   * `req.headersDistinct` or headersFromRawHeaders), which keeps SigV4's "join with ','" exact; Node's
   * default ', ' joining only matters for headers a client really sent twice.
   */
  headers: Record<string, string | string[] | undefined>;
}

export type PayloadMode =
  | { kind: 'signed'; sha256: string } // hex digest declared in x-amz-content-sha256
  | { kind: 'unsigned' } // UNSIGNED-PAYLOAD (also presigned)
  | { kind: 'streaming-signed'; trailer: boolean } // STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER)
  | { kind: 'streaming-unsigned-trailer' }; // STREAMING-UNSIGNED-PAYLOAD-TRAILER

export interface KeyLookup<K> {
  (accessKeyId: string): { secretAccessKey: string; key: K } | undefined;
}

export interface VerifyOptions<K> {
  lookup: KeyLookup<K>;
  /** Accepted credential-scope regions; the first one is named in "wrong region" errors. */
  regions: string[];
  now?: Date;
  /** Allowed clock difference for header auth, and how far in the future a presigned X-Amz-Date may be. Default 900. */
  maxSkewSeconds?: number;
  /** Adds StringToSign / CanonicalRequest (and their hex bytes) to SignatureDoesNotMatch errors. */
  debug?: boolean;
  /** Credential-scope service. Always 's3' for keygate; overridable so generic SigV4 test vectors can run. */
  service?: string;
}

export interface VerifiedRequest<K> {
  key: K;
  accessKeyId: string;
  authType: 'header' | 'presigned';
  payload: PayloadMode;
  /** yyyymmddThhmmssZ */
  amzDate: string;
  /** date/region/s3/aws4_request */
  scope: string;
  region: string;
  /** Lower-case hex signature of the request; the first link of the aws-chunked signature chain. */
  seedSignature: string;
  signingKey: Buffer;
  /** x-amz-decoded-content-length for aws-chunked payloads, null otherwise. */
  decodedContentLength: number | null;
  /** Names from x-amz-trailer (lower-case). */
  trailerHeaders: string[];
  presignExpiresAt: Date | null;
}

export const AWS4_HMAC_SHA256 = 'AWS4-HMAC-SHA256';
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
export const STREAMING_SIGNED_PAYLOAD = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';
export const STREAMING_SIGNED_PAYLOAD_TRAILER = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER';
export const STREAMING_UNSIGNED_PAYLOAD_TRAILER = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';
/** sha256 of the empty string, used by chunk string-to-sign and empty bodies. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
export const DEFAULT_MAX_SKEW_SECONDS = 900;
export const MAX_PRESIGN_EXPIRES_SECONDS = 604_800;
