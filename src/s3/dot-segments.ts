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
 * Listings follow the same rules for `prefix` (`prefix=../` would list another bucket or the
 * volume's parent), and on RunPod also for the parameters a listing starts from (markers, tokens).
 */
import { S3Error } from '../errors.js';

/** Why dot segments are refused for this request (worded for the client's error message). */
export type DotSegmentRule = 'bucket-scoped-key' | 'prefix-scoped-key' | 'runpod-upstream';

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
  const fix = 'Name the object without "." or ".." segments (e.g. "a/b" instead of "a/./b" or "a/x/../b").';
  throw dotSegmentError(`The object key ${JSON.stringify(objectKey)}`, segment, rule, argumentName, objectKey, fix);
}

/**
 * Listing parameters that name where a listing starts: a whole key, or an upstream's continuation
 * token (opaque, but some servers make it from the last key; base64 never has a dot segment).
 */
const LISTING_START_PARAMS: ReadonlySet<string> = new Set(['marker', 'start-after', 'key-marker', 'continuation-token']);

/**
 * The dot segment of a listing prefix. Its last segment is usually the start of a name
 * (`logs/.` lists `logs/.env`, `logs/.cache/…`), so there only `..` counts; the complete segments
 * before it count as in keys.
 */
export function dotSegmentOfPrefix(prefix: string): '.' | '..' | null {
  const lastSlash = prefix.lastIndexOf('/');
  const complete = lastSlash === -1 ? null : dotSegmentOf(prefix.slice(0, lastSlash));
  if (complete !== null) return complete;
  return prefix.slice(lastSlash + 1) === '..' ? '..' : null;
}

/**
 * Throws InvalidArgument when a listing parameter would address a path outside the bucket (the
 * query pairs a bucket-level operation forwards upstream, decoded):
 *
 * - `prefix`, under both rules;
 * - `marker`, `start-after`, `key-marker` and `continuation-token` on RunPod only. On other
 *   upstreams they are compared as strings, and a page can end at a key such as `a/./b` that a
 *   workspace key stored there: refusing the marker a client sends back for the next page would
 *   stop a per-bucket key's listing at that key for good.
 */
export function assertListingWithoutDotSegments(query: ReadonlyArray<readonly [string, string]>, rule: DotSegmentRule): void {
  for (const [name, value] of query) {
    if (name === 'prefix') {
      const segment = dotSegmentOfPrefix(value);
      const fix = 'List with a prefix without "." or ".." segments (e.g. "a/b/" instead of "a/./b/" or "a/x/../b/").';
      if (segment !== null) throw dotSegmentError(`The listing prefix ${JSON.stringify(value)}`, segment, rule, name, value, fix);
    } else if (rule === 'runpod-upstream' && LISTING_START_PARAMS.has(name)) {
      const segment = dotSegmentOf(value);
      const fix = `Start the listing at a key without "." or ".." segments, or leave ${name} out.`;
      if (segment !== null) throw dotSegmentError(`The ${name} ${JSON.stringify(value)}`, segment, rule, name, value, fix);
    }
  }
}

function dotSegmentError(subject: string, segment: '.' | '..', rule: DotSegmentRule, argumentName: string, argumentValue: string, fix: string): S3Error {
  const why =
    rule === 'bucket-scoped-key'
      ? 'Access keys scoped to one bucket cannot use them, because an upstream that resolves paths would take such a name outside the bucket.'
      : rule === 'prefix-scoped-key'
        ? 'Access keys limited to a prefix cannot use them, because an upstream that resolves paths would take such a name outside the prefix.'
        : 'This bucket is on RunPod, whose S3 stores objects as files on the network volume, where such a segment would resolve to another path.';
  return new S3Error('InvalidArgument', `${subject} contains a "${segment}" path segment. ${why} ${fix}`, {
    details: { ArgumentName: argumentName, ArgumentValue: argumentValue },
  });
}
