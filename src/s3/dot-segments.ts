/**
 * Object keys with `.` or `..` path segments (`../other-bucket/x`, `a/./b`). S3 treats keys as
 * opaque names, and the gateway forwards them literally (SigV4 binds the literal path). But an
 * upstream that resolves paths before routing — RunPod's S3 stores objects in a file system on the
 * network volume — could let such a key reach another bucket or a path outside the volume. So keys
 * with dot segments are refused where that matters:
 *
 * - for per-bucket access keys, whatever the upstream (their scope is one bucket; src/authz.ts);
 * - for buckets on a RunPod upstream, whatever the key (src/s3/handlers.ts, planOperation).
 *
 * Workspace-wide keys on generic S3 upstreams keep the literal behaviour: real S3 stores such keys.
 */
import { S3Error } from './errors.js';

/** Why dot segments are refused for this request (worded for the client's error message). */
export type DotSegmentRule = 'bucket-scoped-key' | 'runpod-upstream';

/** The first `.` or `..` segment of a decoded key split on `/`, or null when there is none. */
export function dotSegmentOf(objectKey: string): '.' | '..' | null {
  for (const segment of objectKey.split('/')) {
    if (segment === '.' || segment === '..') return segment;
  }
  return null;
}

/**
 * Throws InvalidArgument when the key has a dot segment. `argumentName` names where the key came
 * from (`key`, `x-amz-copy-source`, a DeleteObjects `Key`), for the error's ArgumentName.
 */
export function assertNoDotSegments(objectKey: string | null | undefined, rule: DotSegmentRule, argumentName = 'key'): void {
  if (objectKey === null || objectKey === undefined) return;
  const segment = dotSegmentOf(objectKey);
  if (segment === null) return;
  const why =
    rule === 'bucket-scoped-key'
      ? 'Access keys scoped to one bucket cannot use them, because an upstream that resolves paths would take such a key outside the bucket.'
      : "This bucket is on RunPod, whose S3 stores objects as files on the network volume, where such a segment would resolve to another path.";
  throw new S3Error(
    'InvalidArgument',
    `The object key ${JSON.stringify(objectKey)} contains a "${segment}" path segment. ${why} ` +
      'Name the object without "." or ".." segments (e.g. "a/b" instead of "a/./b" or "a/x/../b").',
    { details: { ArgumentName: argumentName, ArgumentValue: objectKey } },
  );
}
