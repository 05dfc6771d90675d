/**
 * S3 error codes used by browser-facing features (POST Object forms, CORS preflights) that the
 * shared catalog in errors.ts does not list yet. They are still S3Errors, rendered and logged the
 * same way; only their code and status come from here.
 *
 * TODO(lead): fold these into errors.ts's CATALOG and drop this module.
 */
import { S3Error, type S3ErrorOptions } from './errors.js';

const EXTRA_CATALOG = {
  /** S3's code for a refused CORS preflight. */
  AccessForbidden: 403,
  /** S3's code for a preflight without Origin or Access-Control-Request-Method. */
  BadRequest: 400,
  InvalidPolicyDocument: 400,
  MalformedPOSTRequest: 400,
  MaxPostPreDataLengthExceeded: 400,
} as const;

export type ExtraS3ErrorCode = keyof typeof EXTRA_CATALOG;

/** An S3Error whose code is one of EXTRA_CATALOG's (the base class only knows the shared catalog). */
export function extraS3Error(code: ExtraS3ErrorCode, message: string, options: Omit<S3ErrorOptions, 'status'> = {}): S3Error {
  const error = new S3Error('InvalidRequest', message, { ...options, status: EXTRA_CATALOG[code] });
  (error as { code: string }).code = code;
  return error;
}
