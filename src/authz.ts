/**
 * Authorization: may this key perform this operation? Scope (workspace-wide or one bucket),
 * permission flags (the operation's own, plus those of header-borne powers such as object lock or
 * ACL grants, src/s3/request-headers.ts), a copy's source (a read), and expiry. A per-bucket key
 * touching another bucket gets the same AccessDenied whether or not that bucket exists, so keys
 * cannot probe for bucket names. A disabled key is refused before anything else is looked at.
 * A per-bucket key's object keys (and listing prefixes) must also stay inside its bucket on any
 * upstream: no `.`/`..` path segments (src/s3/dot-segments.ts).
 */
import { hasPermission, isDisabled, isExpired, type AccessKey, type Permission } from './keys/model.js';
import { assertListingWithoutDotSegments, assertNoDotSegments } from './s3/dot-segments.js';
import { S3Error } from './errors.js';
import { addressInRanges } from './keys/source-ips.js';
import type { S3Operation } from './s3/classify.js';

type KeyScope = Pick<AccessKey, 'accessKeyId' | 'kind' | 'bucket' | 'permissions' | 'expiresAt' | 'disabledAt'>;
/** What authorize() reads of an operation. */
type AuthorizedShape = Pick<S3Operation, 'spec' | 'bucket' | 'key' | 'copySource' | 'requirements' | 'query'>;

/** Throws AccessDenied unless the key may perform the operation (including a copy's source). */
export function authorize(key: KeyScope, operation: AuthorizedShape, now: Date = new Date()): void {
  assertUsable(key, now);
  if (operation.bucket !== null) assertBucketAccess(key, operation.bucket, operation.spec.permission);
  else assertPermission(key, operation.spec.permission);
  for (const requirement of operation.requirements) {
    for (const permission of requirement.permissions) {
      if (!hasPermission(key, permission)) {
        throw new S3Error(
          'AccessDenied',
          `Access Denied: ${requirement.header} (${requirement.purpose}) needs the "${permission}" permission, which this key lacks.`,
        );
      }
    }
  }
  if (operation.copySource !== null) assertBucketAccess(key, operation.copySource.bucket, 'read');
  // After the scope checks, so a key probing another bucket still gets AccessDenied.
  assertObjectKeyInScope(key, operation.key);
  if (operation.copySource !== null) assertObjectKeyInScope(key, operation.copySource.key, 'x-amz-copy-source');
  if (key.kind === 'bucket' && operation.bucket !== null) assertListingWithoutDotSegments(operation.query, 'bucket-scoped-key');
}

/**
 * Throws InvalidArgument when a per-bucket key names an object with a `.` or `..` segment, which an
 * upstream that resolves paths could place outside the key's bucket. Also for each DeleteObjects entry.
 */
export function assertObjectKeyInScope(key: KeyScope, objectKey: string | null, argumentName = 'key'): void {
  if (key.kind === 'bucket') assertNoDotSegments(objectKey, 'bucket-scoped-key', argumentName);
}

/**
 * Throws AccessDenied when the key has an allow-list and the client's address (src/keys/source-ips.ts
 * clientAddress: the peer, or what trusted proxies say) is not in it. Presigned URLs and POST forms
 * made with the key are requests like any other and are checked the same way.
 */
export function assertSourceAllowed(key: Pick<AccessKey, 'accessKeyId' | 'allowedIps'>, address: string | null): void {
  if (key.allowedIps === null || addressInRanges(address, key.allowedIps)) return;
  throw new S3Error(
    'AccessDenied',
    `The access key ${key.accessKeyId} may not be used from ${address ?? 'this address'}; ask the operator to add your network to the key's allowed networks.`,
  );
}

/** Authorizes one more bucket-level action of the same request (e.g. each key of DeleteObjects). */
export function authorizeBucketAction(key: KeyScope, bucket: string, permission: Permission, now: Date = new Date()): void {
  assertUsable(key, now);
  assertBucketAccess(key, bucket, permission);
}

/** Whether ListBuckets may show this bucket to the key. */
export function canSeeBucket(key: KeyScope, bucket: string): boolean {
  return (key.kind === 'workspace' || key.bucket === bucket) && hasPermission(key, 'read');
}

/** Neither disabled nor expired. */
function assertUsable(key: KeyScope, now: Date): void {
  if (isDisabled(key)) {
    throw new S3Error(
      'AccessDenied',
      `The access key ${key.accessKeyId} is disabled; ask the operator to enable it again (keygate keys enable ${key.accessKeyId}).`,
    );
  }
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
