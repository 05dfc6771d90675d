/**
 * S3 errors as S3 itself names them. Every failure a client can see is an S3Error rendered as the
 * standard `<Error>` XML document, so SDKs surface the right code and retry logic behaves.
 */

/** Default HTTP status and message per S3 error code (from the S3 API reference). */
const CATALOG = {
  AccessDenied: [403, 'Access Denied'],
  /** A CORS preflight no rule of the bucket allows. */
  AccessForbidden: [403, 'CORSResponse: This CORS request is not allowed.'],
  AuthorizationHeaderMalformed: [400, 'The authorization header is malformed.'],
  AuthorizationQueryParametersError: [400, 'Error parsing the X-Amz-Credential parameter.'],
  BadDigest: [400, 'The Content-MD5 or checksum value that you specified did not match what the server received.'],
  /** A CORS preflight without Origin or Access-Control-Request-Method. */
  BadRequest: [400, 'An error occurred when parsing the HTTP request.'],
  BucketAlreadyOwnedByYou: [409, 'The bucket that you tried to create already exists, and you own it.'],
  BucketNotEmpty: [409, 'The bucket that you tried to delete is not empty.'],
  EntityTooLarge: [400, 'Your proposed upload exceeds the maximum allowed object size.'],
  EntityTooSmall: [400, 'Your proposed upload is smaller than the minimum allowed object size.'],
  ExpiredToken: [400, 'The provided token has expired.'],
  IncompleteBody: [400, 'You did not provide the number of bytes specified by the Content-Length HTTP header.'],
  InternalError: [500, 'We encountered an internal error. Please try again.'],
  InvalidAccessKeyId: [403, 'The AWS access key ID you provided does not exist in our records.'],
  InvalidArgument: [400, 'Invalid Argument'],
  InvalidChunkSizeError: [400, 'Only the last chunk is allowed to have a size less than 8192 bytes.'],
  InvalidBucketName: [400, 'The specified bucket is not valid.'],
  InvalidBucketState: [409, 'The request is not valid with the current state of the bucket.'],
  InvalidDigest: [400, 'The Content-MD5 or checksum value that you specified is not valid.'],
  InvalidLocationConstraint: [400, 'The specified location constraint is not valid.'],
  InvalidPart: [400, 'One or more of the specified parts could not be found.'],
  InvalidPartOrder: [400, 'The list of parts was not in ascending order. Parts must be ordered by part number.'],
  InvalidPolicyDocument: [400, 'The content of the form does not meet the conditions specified in the policy document.'],
  InvalidRange: [416, 'The requested range cannot be satisfied.'],
  InvalidRequest: [400, 'Invalid Request'],
  InvalidStorageClass: [400, 'The storage class you specified is not valid.'],
  KeyTooLongError: [400, 'Your key is too long.'],
  MalformedPOSTRequest: [400, 'The body of your POST request is not well-formed multipart/form-data.'],
  MalformedXML: [400, 'The XML you provided was not well-formed or did not validate against our published schema.'],
  MaxMessageLengthExceeded: [400, 'Your request was too big.'],
  MaxPostPreDataLengthExceededError: [400, 'Your POST request fields preceding the upload file were too large.'],
  MethodNotAllowed: [405, 'The specified method is not allowed against this resource.'],
  MissingContentLength: [411, 'You must provide the Content-Length HTTP header.'],
  MissingSecurityHeader: [400, 'Your request is missing a required header.'],
  NoSuchBucket: [404, 'The specified bucket does not exist.'],
  NoSuchKey: [404, 'The specified key does not exist.'],
  NoSuchUpload: [404, 'The specified multipart upload does not exist.'],
  /** Another request is changing the same bucket (e.g. creating it) right now, or its outcome is still unknown. */
  OperationAborted: [409, 'A conflicting conditional operation is currently in progress against this resource. Try again.'],
  NotImplemented: [501, 'A header or query you provided implies functionality that is not implemented.'],
  RequestHeaderSectionTooLarge: [400, 'Your request header section exceeds the maximum allowed size.'],
  PreconditionFailed: [412, 'At least one of the preconditions you specified did not hold.'],
  RequestTimeTooSkewed: [403, "The difference between the request time and the server's time is too large."],
  RequestTimeout: [400, 'Your socket connection to the server was not read from or written to within the timeout period.'],
  ServiceUnavailable: [503, 'Service is unable to handle request.'],
  SlowDown: [503, 'Please reduce your request rate.'],
  SignatureDoesNotMatch: [403, 'The request signature we calculated does not match the signature you provided. Check your key and signing method.'],
  XAmzContentSHA256Mismatch: [400, "The provided 'x-amz-content-sha256' header does not match what was computed."],
  // Gateway-side upstream failures; S3 has no codes for these, so we use the conventional gateway ones.
  BadGateway: [502, 'The upstream storage service returned an invalid response.'],
  GatewayTimeout: [504, 'The upstream storage service did not respond in time.'],
  InsufficientStorage: [507, 'The upstream storage volume is full.'],
} as const satisfies Record<string, readonly [number, string]>;

export type S3ErrorCode = keyof typeof CATALOG;

export interface S3ErrorOptions {
  /** Overrides the catalog's default status. */
  status?: number;
  /** Extra child elements of <Error>, e.g. StringToSign, HostId, ArgumentName. Order is kept. */
  details?: Record<string, string | number | undefined>;
  /** Response headers to add (e.g. Retry-After). */
  headers?: Record<string, string>;
  cause?: unknown;
}

export class S3Error extends Error {
  /** An S3ErrorCode, or a code an upstream answered with (see S3Error.withCode). */
  readonly code: string;
  readonly status: number;
  readonly details: Record<string, string | number | undefined>;
  readonly headers: Record<string, string>;

  constructor(code: S3ErrorCode, message?: string, options: S3ErrorOptions = {}) {
    const [status, defaultMessage] = CATALOG[code];
    super(message ?? defaultMessage, { cause: options.cause });
    this.name = 'S3Error';
    this.code = code;
    this.status = options.status ?? status;
    this.details = options.details ?? {};
    this.headers = options.headers ?? {};
  }

  /**
   * An error with a code the catalog does not list (an upstream's own S3 error code), its status
   * and a message the gateway wrote.
   */
  static withCode(code: string, status: number, message: string, options: Omit<S3ErrorOptions, 'status'> = {}): S3Error {
    const error = new S3Error('InternalError', message, { ...options, status });
    (error as { code: string }).code = code;
    return error;
  }

  /** The S3 `<Error>` document. `resource` is the request path, `requestId` the x-amz-request-id. */
  toXml(resource: string, requestId: string): string {
    const extra = Object.entries(this.details)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `<${k}>${escapeXml(String(v))}</${k}>`)
      .join('');
    return (
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
      `<Error><Code>${this.code}</Code><Message>${escapeXml(this.message)}</Message>${extra}` +
      `<Resource>${escapeXml(resource)}</Resource><RequestId>${escapeXml(requestId)}</RequestId></Error>`
    );
  }
}

/** The catalog's status and message for a code, if it lists it. */
export function catalogEntry(code: string): { status: number; message: string } | undefined {
  if (!Object.hasOwn(CATALOG, code)) return undefined;
  const [status, message] = CATALOG[code as S3ErrorCode];
  return { status, message };
}

export function isS3Error(error: unknown): error is S3Error {
  return error instanceof S3Error;
}

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const XML_UNSAFE = /[&<>"'\r\n\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Escapes text for XML element content and attribute values; also encodes CR/LF so keys round-trip.
 * Characters XML 1.0 cannot carry at all, not even as references (control characters, U+FFFE/U+FFFF,
 * unpaired surrogates), become U+FFFD: an echoed value must never make the whole answer unparseable.
 */
export function escapeXml(text: string): string {
  return text.replace(XML_UNSAFE, (c) => XML_ESCAPES[c] ?? '\uFFFD');
}

const XML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
  '\r': '&#xD;',
  '\n': '&#xA;',
};
