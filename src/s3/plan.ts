/**
 * Planning: everything that can refuse an authorized operation before its body is read — which
 * upstream serves the bucket, whether the bucket takes writes now (not while the gateway deletes
 * it), whether that upstream can do the operation (and what its headers ask for), and the body's
 * size limit. Runs before `100 Continue` is sent, so a refused upload is never transferred.
 */
import { S3Error } from '../errors.js';
import type { UpstreamResolver } from '../upstream/resolver.js';
import { bucketBeingDeleted, type BucketLifecycle } from '../buckets/lifecycle.js';
import { CAPABILITY_NAMES, RUNPOD_CAPABILITIES, type Capability, type UpstreamTarget } from '../upstream/target.js';
import type { S3Operation } from './classify.js';
import { assertRunpodBucketSettings } from './create-bucket.js';
import { assertListingWithoutDotSegments, assertNoDotSegments } from './dot-segments.js';
import { MAX_UNUSED_BODY_BYTES } from './operations.js';

/**
 * An operation that passed every check that does not need the body. Target null: a service-level
 * operation, or a CreateBucket of a name no route knows, which the gateway creates on RunPod
 * (src/buckets/lifecycle.ts).
 */
export interface OperationPlan {
  operation: S3Operation;
  target: UpstreamTarget | null;
  /** The largest body the operation accepts (decoded bytes). */
  maxBodyBytes: number;
}

export interface PlanDeps {
  resolver: Pick<UpstreamResolver, 'resolve'>;
  /**
   * Creates buckets no route knows (on RunPod), and says which RunPod buckets are being deleted
   * (writes to them are refused); null or absent: such a CreateBucket is NotImplemented.
   */
  lifecycle?: Pick<BucketLifecycle, 'canCreateOnRunpod' | 'isBeingDeleted'> | null;
}

/** Object bodies on an upstream without a known limit: S3's own (5 GiB). */
const DEFAULT_MAX_OBJECT_BYTES = 5 * 1024 ** 3;
/**
 * A CreateBucketConfiguration the gateway reads itself (a new RunPod bucket): a real one is a few
 * hundred bytes, so the table's 2 MiB for forwarded documents is far more than needed.
 */
export const MAX_CREATE_BUCKET_BODY_BYTES = 64 * 1024;

export async function planOperation(deps: PlanDeps, operation: S3Operation, bodyLength: number | null): Promise<OperationPlan> {
  if (operation.spec.level === 'service') {
    return { operation, target: null, maxBodyBytes: withinLimit(operation, bodyLength, MAX_UNUSED_BODY_BYTES) };
  }
  const target = operation.name === 'CreateBucket' ? await deps.resolver.resolve(operation.bucket!) : await resolveBucket(deps, operation.bucket!);
  if (target === null) return planNewBucket(deps, operation, bodyLength);
  // The one place every bucket request is routed: a RunPod bucket being deleted takes no writes.
  if (target.kind === 'runpod' && writesToBucket(operation) && deps.lifecycle?.isBeingDeleted(operation.bucket!, target.bucket)) {
    throw bucketBeingDeleted(operation.bucket!);
  }
  assertCapable(target, operation.spec.needs, operation);
  for (const requirement of operation.requirements) assertCapable(target, requirement.capability, operation, requirement.header);
  if (target.capabilities.keysArePaths) {
    assertNoDotSegments(operation.key, 'runpod-upstream');
    assertListingWithoutDotSegments(operation.query, 'runpod-upstream');
  }
  return { operation, target, maxBodyBytes: withinLimit(operation, bodyLength, bodyLimit(operation, target)) };
}

/**
 * Whether an operation can leave something in its bucket (an object, a part, an upload in
 * progress, tags, an ACL): every operation that needs the `write` permission except
 * AbortMultipartUpload, which only removes. Refused while the bucket is being deleted.
 */
export function writesToBucket(operation: S3Operation): boolean {
  return operation.spec.permission === 'write' && operation.name !== 'AbortMultipartUpload';
}

/**
 * CreateBucket of a name no route knows: a new RunPod network volume when the gateway creates them
 * (its capabilities are RunPod's, so headers asking for more are refused here, before the body).
 */
function planNewBucket(deps: PlanDeps, operation: S3Operation, bodyLength: number | null): OperationPlan {
  const bucket = operation.bucket!;
  if (!deps.lifecycle?.canCreateOnRunpod) {
    throw new S3Error(
      'NotImplemented',
      `The gateway cannot create "${bucket}": create the RunPod network volume (or the bucket on its S3) first, then register it with \`keygate buckets add\`.`,
    );
  }
  const runpod = { kind: 'runpod', datacenter: null, capabilities: RUNPOD_CAPABILITIES } as const;
  for (const requirement of operation.requirements) assertCapable(runpod, requirement.capability, operation, requirement.header);
  assertRunpodBucketSettings(operation.headers, bucket);
  return { operation, target: null, maxBodyBytes: withinLimit(operation, bodyLength, MAX_CREATE_BUCKET_BODY_BYTES) };
}

/** The upstream of a bucket; NoSuchBucket when no route knows it. */
export async function resolveBucket(deps: PlanDeps, bucket: string): Promise<UpstreamTarget> {
  const target = await deps.resolver.resolve(bucket);
  if (target !== null) return target;
  throw new S3Error('NoSuchBucket', `The bucket "${bucket}" is not known to this gateway; ask the operator to add it with \`keygate buckets add\`.`, {
    details: { BucketName: bucket },
  });
}

function assertCapable(target: DescribedTarget, capability: Capability | undefined, operation: S3Operation, header?: string): void {
  if (capability === undefined || target.capabilities[capability]) return;
  const what = header === undefined ? operation.name : `${operation.name} with ${header}`;
  throw new S3Error(
    'NotImplemented',
    `${what} is not supported for bucket "${operation.bucket}": its storage (${describeKind(target)}) has no ${CAPABILITY_NAMES[capability]}.`,
  );
}

function bodyLimit(operation: S3Operation, target: UpstreamTarget): number {
  const body = operation.spec.body;
  switch (body.kind) {
    case 'none':
      return MAX_UNUSED_BODY_BYTES;
    case 'document':
    case 'xml':
      return body.maxBytes;
    case 'object':
    case 'form':
      return target.capabilities.maxPutObjectBytes ?? DEFAULT_MAX_OBJECT_BYTES;
  }
}

/** The limit, after refusing a body whose declared length is already over it. */
function withinLimit(operation: S3Operation, bodyLength: number | null, limit: number): number {
  if (bodyLength === null || bodyLength <= limit) return limit;
  const body = operation.spec.body.kind;
  if (body === 'object') {
    const advice =
      operation.name === 'PutObject' ? 'use a multipart upload (aws-cli and boto3 do this automatically above their multipart threshold)' : 'use smaller parts';
    throw new S3Error(
      'EntityTooLarge',
      `This bucket's storage accepts at most ${limit} bytes per ${operation.name === 'PutObject' ? 'object upload' : 'part'}; ${advice}.`,
      {
        details: { ProposedSize: bodyLength, MaxSizeAllowed: limit },
      },
    );
  }
  throw new S3Error('MaxMessageLengthExceeded', `The body of ${operation.name} is limited to ${limit} bytes.`);
}

type DescribedTarget = Pick<UpstreamTarget, 'kind' | 'datacenter' | 'capabilities'>;

/** How a bucket's storage is named to clients: its kind, never its endpoint. */
export function describeKind(target: Pick<UpstreamTarget, 'kind' | 'datacenter'>): string {
  if (target.kind !== 'runpod') return 'generic S3';
  return target.datacenter === null ? 'RunPod' : `RunPod ${target.datacenter}`;
}
