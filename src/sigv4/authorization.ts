/**
 * Strict parsing of the two places SigV4 credentials travel: the Authorization header and the
 * X-Amz-* presigned query parameters. Errors use S3's codes and, where clients match on them, S3's
 * wording, plus what to change.
 */
import { S3Error } from '../errors.js';
import type { RawQueryParam } from './canonical.js';
import { AWS4_HMAC_SHA256, MAX_PRESIGN_EXPIRES_SECONDS } from './types.js';
import { decodeQueryComponent } from './uri-encoding.js';

export interface Credential {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  terminator: string;
}

export interface AuthorizationParameters {
  credential: Credential;
  /** Lower-case header names, in the order the client listed them. Shared; do not mutate. */
  signedHeaders: readonly string[];
  /** As provided; validated when compared. */
  signature: string;
}

export interface PresignedParameters extends AuthorizationParameters {
  amzDate: string;
  expiresSeconds: number;
  /** Index of X-Amz-Signature in the parsed query; it is left out of the canonical query. */
  signatureIndex: number;
  /** X-Amz-Content-Sha256 when the URL pins the payload hash. */
  contentSha256: string | undefined;
}

export type CredentialSource = 'header' | 'query';

const UNSUPPORTED_MECHANISM = 'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.';
const HEADER_MALFORMED = 'The authorization header is malformed; ';
const QUERY_MALFORMED = 'Error parsing the X-Amz-Credential parameter; ';
const SIGNED_HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

function malformed(source: CredentialSource, detail: string, extra?: Record<string, string>): S3Error {
  return source === 'header'
    ? new S3Error('AuthorizationHeaderMalformed', HEADER_MALFORMED + detail, { details: extra })
    : new S3Error('AuthorizationQueryParametersError', QUERY_MALFORMED + detail, { details: extra });
}

export function unsupportedMechanism(): S3Error {
  return new S3Error('InvalidRequest', UNSUPPORTED_MECHANISM);
}

/** Splits `AKID/yyyymmdd/region/service/aws4_request`; shape only, the scope is checked later. */
export function parseCredential(value: string, source: CredentialSource): Credential {
  const parts = value.split('/');
  if (parts.length !== 5 || parts.includes('')) {
    throw malformed(source, 'the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".');
  }
  const [accessKeyId, date, region, service, terminator] = parts as [string, string, string, string, string];
  if (!/^\d{8}$/.test(date)) {
    throw malformed(source, `incorrect date format "${date}". This date in the credential must be in the format "yyyyMMdd".`);
  }
  return { accessKeyId, date, region, service, terminator };
}

/** Parsed SignedHeaders lists: clients send the same few lists over and over. */
const signedHeadersCache = new Map<string, readonly string[]>();
const MAX_CACHED_SIGNED_HEADERS = 256;

export function parseSignedHeaders(value: string, source: CredentialSource): readonly string[] {
  const cached = signedHeadersCache.get(value);
  if (cached !== undefined) return cached;
  const names = value.split(';');
  const seen = new Set<string>();
  for (const name of names) {
    if (!SIGNED_HEADER_NAME.test(name)) {
      throw source === 'header'
        ? malformed(source, `SignedHeaders contains an invalid header name "${name}"; list lower-case header names separated by ';'.`)
        : new S3Error(
            'AuthorizationQueryParametersError',
            `X-Amz-SignedHeaders contains an invalid header name "${name}"; list lower-case header names separated by ';'.`,
          );
    }
    if (seen.has(name)) {
      throw source === 'header'
        ? malformed(source, `SignedHeaders lists "${name}" twice.`)
        : new S3Error('AuthorizationQueryParametersError', `X-Amz-SignedHeaders lists "${name}" twice.`);
    }
    seen.add(name);
  }
  Object.freeze(names);
  if (signedHeadersCache.size >= MAX_CACHED_SIGNED_HEADERS) signedHeadersCache.clear();
  signedHeadersCache.set(value, names);
  return names;
}

/**
 * Checks the credential scope against what this endpoint accepts: region, service, terminator, and
 * that its date is the request's date.
 */
export function validateCredentialScope(
  credential: Credential,
  source: CredentialSource,
  expected: { regions: readonly string[]; service: string; amzDate: string },
): void {
  if (!expected.regions.includes(credential.region)) {
    const expecting = expected.regions[0] ?? 'us-east-1';
    throw malformed(source, `the region '${credential.region}' is wrong; expecting '${expecting}'`, { Region: expecting });
  }
  if (credential.service !== expected.service) {
    throw malformed(source, `incorrect service "${credential.service}". This endpoint belongs to "${expected.service}".`);
  }
  if (credential.terminator !== 'aws4_request') {
    throw malformed(source, `incorrect terminal "${credential.terminator}". This endpoint uses "aws4_request".`);
  }
  const requestDate = expected.amzDate.slice(0, 8);
  if (credential.date !== requestDate) {
    throw malformed(source, `Invalid credential date "${credential.date}". This date is not the same as X-Amz-Date: "${requestDate}".`);
  }
}

/**
 * Parses `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` (components in any order,
 * ',' with or without spaces, each exactly once).
 */
export function parseAuthorizationHeader(value: string): AuthorizationParameters {
  const trimmed = value.trim();
  const space = trimmed.indexOf(' ');
  const algorithm = space < 0 ? trimmed : trimmed.slice(0, space);
  if (algorithm !== AWS4_HMAC_SHA256) {
    if (algorithm.toUpperCase() === AWS4_HMAC_SHA256) {
      throw malformed('header', `the algorithm "${algorithm}" must be written "AWS4-HMAC-SHA256".`);
    }
    throw unsupportedMechanism();
  }
  let credential: string | undefined;
  let signedHeaders: string | undefined;
  let signature: string | undefined;
  const rest = space < 0 ? '' : trimmed.slice(space + 1);
  for (const rawComponent of rest.split(',')) {
    const component = rawComponent.trim();
    if (component === '') continue;
    const eq = component.indexOf('=');
    const name = eq < 0 ? component : component.slice(0, eq);
    if (name !== 'Credential' && name !== 'SignedHeaders' && name !== 'Signature') {
      throw malformed('header', `unexpected component "${name}"; expecting Credential=…, SignedHeaders=…, Signature=….`);
    }
    if (eq < 0) throw malformed('header', `the ${name} component has no value.`);
    const fieldValue = component.slice(eq + 1).trim();
    const previous = name === 'Credential' ? credential : name === 'SignedHeaders' ? signedHeaders : signature;
    if (previous !== undefined) throw malformed('header', `the ${name} component appears more than once.`);
    if (name === 'Credential') credential = fieldValue;
    else if (name === 'SignedHeaders') signedHeaders = fieldValue;
    else signature = fieldValue;
  }
  if (!credential || !signedHeaders || !signature) {
    const missing = [!credential && 'Credential', !signedHeaders && 'SignedHeaders', !signature && 'Signature'].filter(Boolean);
    throw malformed('header', `missing ${missing.map((m) => `'${m}'`).join(', ')}; expecting "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…".`);
  }
  return {
    credential: parseCredential(credential, 'header'),
    signedHeaders: parseSignedHeaders(signedHeaders, 'header'),
    signature,
  };
}

const PRESIGN_PARAMS = [
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-SignedHeaders',
  'X-Amz-Signature',
  'X-Amz-Content-Sha256',
  'X-Amz-Security-Token',
] as const;
type PresignParam = (typeof PRESIGN_PARAMS)[number];
const PRESIGN_PARAM_BY_LOWER = new Map<string, PresignParam>(PRESIGN_PARAMS.map((p) => [p.toLowerCase(), p]));

/** Parameters that make a query presigned (any one present means the client meant query auth). */
const PRESIGN_MARKERS: ReadonlySet<PresignParam> = new Set(['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature']);

export interface QueryAuthScan {
  /** Index of each X-Amz-* auth parameter (names matched case-insensitively). */
  found: Map<PresignParam, number>;
  isPresigned: boolean;
  /** Legacy SigV2 query auth (AWSAccessKeyId + Signature). */
  isSigV2: boolean;
}

/** Finds auth parameters in the query; rejects any that appear twice (a classic smuggling trick). */
export function scanQueryAuth(params: readonly RawQueryParam[]): QueryAuthScan {
  const found = new Map<PresignParam, number>();
  let sawV2Key = false;
  let sawV2Signature = false;
  for (let i = 0; i < params.length; i++) {
    const rawKey = params[i]!.rawKey;
    // Auth parameter names are plain ASCII; anything with escapes is decoded first so '%58-Amz-…' cannot hide.
    const key = rawKey.includes('%') || rawKey.includes('+') ? decodeQueryComponent(rawKey) : rawKey;
    if (key.length < 9) continue;
    const name = PRESIGN_PARAM_BY_LOWER.get(key.toLowerCase());
    if (name !== undefined) {
      if (found.has(name)) {
        throw new S3Error('AuthorizationQueryParametersError', `${name} appears more than once in the query string; send each authentication parameter once.`, {
          details: { ArgumentName: name },
        });
      }
      found.set(name, i);
    } else if (key === 'AWSAccessKeyId') {
      sawV2Key = true;
    } else if (key === 'Signature') {
      sawV2Signature = true;
    }
  }
  let isPresigned = false;
  for (const marker of PRESIGN_MARKERS) if (found.has(marker)) isPresigned = true;
  return { found, isPresigned, isSigV2: !isPresigned && sawV2Key && sawV2Signature };
}

/** Reads and validates the presigned parameters found by scanQueryAuth. */
export function parsePresignedParameters(params: readonly RawQueryParam[], scan: QueryAuthScan): PresignedParameters {
  const value = (name: PresignParam): string | undefined => {
    const index = scan.found.get(name);
    return index === undefined ? undefined : decodeQueryComponent(params[index]!.rawValue);
  };
  const algorithm = value('X-Amz-Algorithm');
  const credential = value('X-Amz-Credential');
  const amzDate = value('X-Amz-Date');
  const expires = value('X-Amz-Expires');
  const signedHeaders = value('X-Amz-SignedHeaders');
  const signature = value('X-Amz-Signature');
  if (!algorithm || !credential || !amzDate || !expires || !signedHeaders || !signature) {
    throw new S3Error(
      'AuthorizationQueryParametersError',
      'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.',
    );
  }
  if (algorithm !== AWS4_HMAC_SHA256) {
    throw new S3Error('AuthorizationQueryParametersError', 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"', {
      details: { ArgumentName: 'X-Amz-Algorithm', ArgumentValue: algorithm },
    });
  }
  if (!/^\d{1,7}$/.test(expires)) {
    throw new S3Error('AuthorizationQueryParametersError', 'X-Amz-Expires should be a number of seconds between 1 and 604800 (one week).', {
      details: { ArgumentName: 'X-Amz-Expires', ArgumentValue: expires },
    });
  }
  const expiresSeconds = Number(expires);
  if (expiresSeconds < 1 || expiresSeconds > MAX_PRESIGN_EXPIRES_SECONDS) {
    throw new S3Error(
      'AuthorizationQueryParametersError',
      expiresSeconds < 1 ? 'X-Amz-Expires must be at least 1 second.' : 'X-Amz-Expires must be less than a week (in seconds) that is; 604800',
      { details: { ArgumentName: 'X-Amz-Expires', ArgumentValue: expires } },
    );
  }
  return {
    credential: parseCredential(credential, 'query'),
    signedHeaders: parseSignedHeaders(signedHeaders, 'query'),
    signature,
    amzDate,
    expiresSeconds,
    signatureIndex: scan.found.get('X-Amz-Signature')!,
    contentSha256: value('X-Amz-Content-Sha256'),
  };
}
