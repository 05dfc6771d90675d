/**
 * Transition shim: the codes browser-facing features need (AccessForbidden, BadRequest,
 * InvalidPolicyDocument, MalformedPOSTRequest, MaxPostPreDataLengthExceeded) are in errors.ts's
 * catalog now. Remaining users (src/http/cors.ts, src/sigv4/post-policy.ts) should construct
 * `new S3Error(code, message, options)` directly; delete this module once none imports it.
 */
import { S3Error, type S3ErrorCode, type S3ErrorOptions } from './errors.js';

export type ExtraS3ErrorCode = Extract<S3ErrorCode, 'AccessForbidden' | 'BadRequest' | 'InvalidPolicyDocument' | 'MalformedPOSTRequest' | 'MaxPostPreDataLengthExceeded'>;

/** @deprecated use `new S3Error(code, message, options)`; the status comes from the catalog. */
export function extraS3Error(code: ExtraS3ErrorCode, message: string, options: Omit<S3ErrorOptions, 'status'> = {}): S3Error {
  return new S3Error(code, message, options);
}
