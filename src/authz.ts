/**
 * Authorization: may this key perform this operation? Scope (workspace-wide or one bucket),
 * permission flags (the operation's own, plus those of header-borne powers such as object lock or
 * ACL grants, src/s3/request-headers.ts), a copy's source (a read), and expiry. A per-bucket key
 * touching another bucket gets the same AccessDenied whether or not that bucket exists, so keys
 * cannot probe for bucket names. A disabled key is refused before anything else is looked at.
 * A per-bucket key's object keys (and listing prefixes) must also stay inside its bucket on any
 * upstream: no `.`/`..` path segments (src/s3/dot-segments.ts). A key with a prefix may only touch
 * object keys that start with it (checked on the decoded key, after the dot-segment rule), and only
 * list with a prefix inside it.
 */
import { hasPermission, isDisabled, isExpired, type AccessKey, type Permission } from './keys/model.js';
import { assertListingWithoutDotSegments, assertNoDotSegments } from './s3/dot-segments.js';
import { S3Error } from './errors.js';
import { addressInRanges } from './keys/source-ips.js';
import type { S3Operation } from './s3/classify.js';

type KeyScope = Pick<AccessKey, 'accessKeyId' | 'kind' | 'bucket' | 'permissions' | 'expiresAt' | 'disabledAt' | 'prefix'>;
/** What authorize() reads of an operation. */
type AuthorizedShape = Pick<S3Operation, 'name' | 'spec' | 'bucket' | 'key' | 'copySource' | 'requirements' | 'query'>;

/** Listings a prefixed key may make, with a `prefix` parameter inside its prefix. */
const PREFIXED_LISTINGS: ReadonlySet<string> = new Set(['ListObjects', 'ListObjectsV2', 'ListObjectVersions', 'ListMultipartUploads']);
/**
 * Bucket-level operations a prefixed key may make: they reveal or touch no object outside its
 * prefix (DeleteObjects checks every entry's key). Every other bucket-level operation — bucket
 * configuration, creating and deleting buckets, object lock configuration — is refused: deny by default.
 */
const PREFIXED_BUCKET_OPERATIONS: ReadonlySet<string> = new Set(['HeadBucket', 'GetBucketLocation', 'DeleteObjects']);

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
  if (key.prefix !== null && operation.bucket !== null) assertWithinPrefix(key.prefix, operation);
}

/**
 * A prefixed key: object operations are checked by assertObjectKeyInScope; listings must ask for a
 * prefix inside the key's (as B2 does), so no key outside it is ever listed; bucket-level
 * operations other than a few harmless ones are refused.
 */
function assertWithinPrefix(prefix: string, operation: AuthorizedShape): void {
  if (operation.key !== null) return;
  if (PREFIXED_LISTINGS.has(operation.name)) {
    const asked = operation.query.find(([name]) => name === 'prefix')?.[1];
    if (asked === undefined || !asked.startsWith(prefix)) {
      throw new S3Error(
        'AccessDenied',
        `Access Denied: this key may only list under ${JSON.stringify(prefix)}; list with a prefix that starts with it (e.g. --prefix ${prefix}).`,
      );
    }
    assertListingWithoutDotSegments(operation.query, 'prefix-scoped-key');
    return;
  }
  if (!PREFIXED_BUCKET_OPERATIONS.has(operation.name)) {
    throw new S3Error('AccessDenied', `Access Denied: a key limited to the prefix ${JSON.stringify(prefix)} cannot ${operation.name} on the whole bucket.`);
  }
}

/**
 * Throws InvalidArgument when a per-bucket key names an object with a `.` or `..` segment, which an
 * upstream that resolves paths could place outside the key's bucket. Also for each DeleteObjects entry.
 */
export function assertObjectKeyInScope(key: KeyScope, objectKey: string | null, argumentName = 'key'): void {
  if (key.kind === 'bucket') assertNoDotSegments(objectKey, 'bucket-scoped-key', argumentName);
  if (key.prefix === null || objectKey === null) return;
  // The decoded key, after the dot-segment rule: "team-a/../team-b/x" is refused, not compared.
  assertNoDotSegments(objectKey, 'prefix-scoped-key', argumentName);
  if (!objectKey.startsWith(key.prefix)) {
    throw new S3Error('AccessDenied', `Access Denied: this key may only use object keys starting with ${JSON.stringify(key.prefix)} (${argumentName}).`);
  }
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
