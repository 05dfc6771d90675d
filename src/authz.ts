/**
 * Authorization: may this key perform this operation? Scope (workspace-wide or one bucket),
 * permission flags and expiry. A per-bucket key touching another bucket gets the same
 * AccessDenied whether or not that bucket exists, so keys cannot probe for bucket names.
 */
import { hasPermission, isExpired, type AccessKey, type Permission } from './keys/model.js';
import { S3Error } from './s3/errors.js';
import type { S3Operation } from './s3/operations.js';

type KeyScope = Pick<AccessKey, 'accessKeyId' | 'kind' | 'bucket' | 'permissions' | 'expiresAt'>;

/** Throws AccessDenied unless the key may perform the operation (including a copy's source). */
export function authorize(key: KeyScope, operation: S3Operation, now: Date = new Date()): void {
  assertNotExpired(key, now);
  if (operation.bucket !== null) assertBucketAccess(key, operation.bucket, operation.permission);
  else assertPermission(key, operation.permission);
  if (operation.copySource !== null) assertBucketAccess(key, operation.copySource.bucket, 'read');
}

/** Authorizes one more bucket-level action of the same request (e.g. each key of DeleteObjects). */
export function authorizeBucketAction(key: KeyScope, bucket: string, permission: Permission, now: Date = new Date()): void {
  assertNotExpired(key, now);
  assertBucketAccess(key, bucket, permission);
}

/** Whether ListBuckets may show this bucket to the key. */
export function canSeeBucket(key: KeyScope, bucket: string): boolean {
  return (key.kind === 'workspace' || key.bucket === bucket) && hasPermission(key, 'read');
}

function assertNotExpired(key: KeyScope, now: Date): void {
  if (isExpired(key, now)) {
    throw new S3Error('AccessDenied', `The access key ${key.accessKeyId} expired at ${key.expiresAt!.toISOString()}; ask for a new key.`);
  }
}

function assertBucketAccess(key: KeyScope, bucket: string, permission: Permission): void {
  if (key.kind === 'bucket' && key.bucket !== bucket) {
    throw new S3Error('AccessDenied', 'Access Denied');
  }
  assertPermission(key, permission);
}

function assertPermission(key: KeyScope, permission: Permission): void {
  if (!hasPermission(key, permission)) {
    throw new S3Error('AccessDenied', `Access Denied: this key lacks the "${permission}" permission.`);
  }
}
