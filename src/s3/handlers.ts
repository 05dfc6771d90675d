/**
 * What the gateway does for each authorized operation: answer it itself (ListBuckets,
 * GetBucketLocation, DeleteObjects), refuse what the upstream cannot do, check small XML bodies
 * (CompleteMultipartUpload) before they go upstream, or stream it through.
 */
import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { assertObjectKeyInScope, authorizeBucketAction, canSeeBucket } from '../authz.js';
import type { AccessKey } from '../keys/model.js';
import type { UpstreamResolver } from '../upstream/resolver.js';
import type { UpstreamTarget } from '../upstream/target.js';
import { forward, readUpstreamBody, type ForwardRequest, type UpstreamResponse } from '../upstream/forward.js';
import { assertBodyWithin, readBodyBytes, readBodyText } from './body.js';
import { parseCompleteMultipartUpload } from './complete-multipart.js';
import { assertListingWithoutDotSegments, assertNoDotSegments } from './dot-segments.js';
import { fanOutDeletes, parseDeleteRequest, type DeleteRequestEntry } from './delete-objects.js';
import { S3Error } from './errors.js';
import type { OperationName, S3Operation } from './operations.js';
import { bucketLocationXml, listBucketsXml } from './responses.js';
import { MAX_XML_BODY_BYTES } from './xml.js';
import { sendXml } from '../http/respond.js';

export interface OperationContext {
  operation: S3Operation;
  key: AccessKey;
  headers: Record<string, string | string[] | undefined>;
  /** The verified, decoded request body (null when the request has none). */
  body: Readable | null;
  /** Decoded body length, known before streaming (null when absent). */
  contentLength: number | null;
  checksums: { get(): Record<string, string> } | undefined;
  signal: AbortSignal;
  res: ServerResponse;
}

export interface HandlerDeps {
  resolver: UpstreamResolver;
  /** Region clients sign with; reported by GetBucketLocation and ListBuckets. */
  region: string;
}

/** Operations the gateway refuses whatever the upstream, with the reason shown to the client (none at the moment). */
const GATEWAY_UNSUPPORTED: Partial<Record<OperationName, string>> = {};

/** Operations whose body is an XML document the gateway reads whole (so it is capped). */
const XML_BODY_OPERATIONS = new Set<OperationName>(['DeleteObjects', 'CompleteMultipartUpload']);

/** Operations that need upstream support RunPod lacks. */
const NEEDS_CAPABILITY: Partial<Record<OperationName, (target: UpstreamTarget) => boolean>> = {
  CreateBucket: (t) => t.capabilities.bucketLifecycle,
  DeleteBucket: (t) => t.capabilities.bucketLifecycle,
  GetBucketConfiguration: (t) => t.kind !== 'runpod',
  PutBucketConfiguration: (t) => t.kind !== 'runpod',
  DeleteBucketConfiguration: (t) => t.kind !== 'runpod',
  ListObjectVersions: (t) => t.kind !== 'runpod',
  GetObjectTagging: (t) => t.capabilities.tagging,
  PutObjectTagging: (t) => t.capabilities.tagging,
  DeleteObjectTagging: (t) => t.capabilities.tagging,
  GetObjectAcl: (t) => t.kind !== 'runpod',
  PutObjectAcl: (t) => t.kind !== 'runpod',
  GetObjectAttributes: (t) => t.kind !== 'runpod',
  UploadPartCopy: (t) => t.capabilities.uploadPartCopy,
};

const IDEMPOTENT_WITHOUT_BODY = new Set(['GET', 'HEAD', 'DELETE']);

/** An operation that passed every check that does not need the body; null target = service level. */
export interface OperationPlan {
  operation: S3Operation;
  target: UpstreamTarget | null;
}

/**
 * Everything that can refuse a request before its body is read: unsupported operations, unknown
 * buckets, missing upstream capabilities, size limits. Runs before `100 Continue` is sent.
 */
export async function planOperation(deps: HandlerDeps, operation: S3Operation, contentLength: number | null): Promise<OperationPlan> {
  const unsupported = GATEWAY_UNSUPPORTED[operation.name];
  if (unsupported) throw new S3Error('NotImplemented', unsupported);
  if (operation.name === 'ListBuckets') return { operation, target: null };

  const target = await deps.resolver.resolve(operation.bucket!);
  if (target === null && operation.name === 'CreateBucket') {
    throw new S3Error(
      'NotImplemented',
      `The gateway cannot create "${operation.bucket}": create the RunPod network volume (or the bucket on its S3) first, then register it with \`keygate buckets add\`.`,
    );
  }
  if (target === null) throw noSuchBucket(operation.bucket!);
  const supported = NEEDS_CAPABILITY[operation.name];
  if (supported && !supported(target)) {
    throw new S3Error('NotImplemented', `${operation.name} is not supported by the upstream of bucket "${operation.bucket}" (${describeTarget(target)}).`);
  }
  assertAddressableUpstream(target, operation.key);
  if (target.kind === 'runpod') assertListingWithoutDotSegments(operation.upstreamQuery, 'runpod-upstream');
  if (operation.name === 'PutObject' || operation.name === 'UploadPart') assertWithinPutLimit(target, contentLength, operation.name);
  if (XML_BODY_OPERATIONS.has(operation.name)) assertBodyWithin(contentLength, MAX_XML_BODY_BYTES);
  return { operation, target };
}

export async function executeOperation(deps: HandlerDeps, plan: OperationPlan, ctx: OperationContext): Promise<void> {
  const { operation, target } = plan;
  if (target === null) return listBuckets(deps, ctx);
  switch (operation.name) {
    case 'GetBucketLocation':
      return sendXml(ctx.res, 200, bucketLocationXml(deps.region));
    case 'DeleteObjects':
      return deleteObjects(ctx, target);
    case 'PostObject':
      // Form uploads authenticate by their policy and are handled by post-object.ts before this point.
      throw new S3Error('InvalidRequest', 'POST Object must be a multipart/form-data form signed with a POST policy.');
    case 'CompleteMultipartUpload':
      return completeMultipartUpload(ctx, target);
    case 'CopyObject':
    case 'UploadPartCopy':
      return relay(ctx, await withCopySource(deps, ctx, target));
    default:
      return relay(ctx, forwardRequestFor(ctx, target));
  }
}

async function resolveBucket(deps: HandlerDeps, bucket: string): Promise<UpstreamTarget> {
  const target = await deps.resolver.resolve(bucket);
  if (target === null) throw noSuchBucket(bucket);
  return target;
}

function noSuchBucket(bucket: string): S3Error {
  return new S3Error('NoSuchBucket', `The bucket "${bucket}" is not known to this gateway; ask the operator to add it with \`keygate buckets add\`.`, {
    details: { BucketName: bucket },
  });
}

async function listBuckets(deps: HandlerDeps, ctx: OperationContext): Promise<void> {
  const all = await deps.resolver.listBuckets();
  const visible = all.filter((bucket) => canSeeBucket(ctx.key, bucket.name)).sort((a, b) => a.name.localeCompare(b.name));
  const owner = { id: ctx.key.accessKeyId, displayName: ctx.key.name };
  sendXml(ctx.res, 200, listBucketsXml(visible, owner, deps.region));
}

function forwardRequestFor(ctx: OperationContext, target: UpstreamTarget, extra: Partial<ForwardRequest> = {}): ForwardRequest {
  const { operation } = ctx;
  return {
    target,
    method: ctx.res.req.method ?? 'GET',
    objectKey: operation.key,
    bucketLevel: true,
    query: operation.upstreamQuery,
    headers: ctx.headers,
    body: ctx.body,
    contentLength: ctx.contentLength,
    checksums: ctx.checksums,
    signal: ctx.signal,
    retry: ctx.body === null && IDEMPOTENT_WITHOUT_BODY.has(ctx.res.req.method ?? ''),
    ...extra,
  };
}

async function relay(ctx: OperationContext, request: ForwardRequest): Promise<void> {
  const upstream = await forward(request);
  await sendUpstreamResponse(ctx.res, upstream);
}

export async function sendUpstreamResponse(res: ServerResponse, upstream: UpstreamResponse): Promise<void> {
  res.writeHead(upstream.status, withGatewayCors(res, upstream.headers));
  if (res.req.method === 'HEAD') {
    upstream.body.resume();
    res.end();
    return;
  }
  await pipeline(upstream.body, res);
}

/**
 * CORS is the gateway's (per-bucket rules, src/http/cors.ts): an upstream's own Access-Control-*
 * headers must not replace what the gateway set, and its Vary is merged with the gateway's.
 */
function withGatewayCors(res: ServerResponse, headers: Record<string, string | string[]>): Record<string, string | string[]> {
  const gatewayVary = res.getHeader('vary');
  let out = headers;
  for (const name of Object.keys(headers)) {
    if (!name.startsWith('access-control-') && !(name === 'vary' && gatewayVary !== undefined)) continue;
    if (out === headers) out = { ...headers };
    if (name === 'vary') out.vary = `${String(gatewayVary)}, ${([] as string[]).concat(headers.vary!).join(', ')}`;
    else delete out[name];
  }
  return out;
}

/**
 * RunPod's S3 resolves object keys as paths on the volume's file system: a `.` or `..` segment
 * could reach another volume or leave the volume, so such keys (and listing prefixes, markers and
 * continuation tokens, in planOperation) are refused for RunPod buckets (whatever the access key; per-bucket keys are
 * refused them everywhere by authz).
 */
function assertAddressableUpstream(target: UpstreamTarget, objectKey: string | null, argumentName = 'key'): void {
  if (target.kind === 'runpod') assertNoDotSegments(objectKey, 'runpod-upstream', argumentName);
}

function assertWithinPutLimit(target: UpstreamTarget, contentLength: number | null, name: OperationName): void {
  const limit = target.capabilities.maxPutObjectBytes;
  if (limit === null || contentLength === null || contentLength <= limit) return;
  const advice =
    name === 'PutObject'
      ? 'use a multipart upload (aws-cli and boto3 do this automatically above their multipart threshold)'
      : 'use smaller parts';
  throw new S3Error('EntityTooLarge', `This upstream accepts at most ${limit} bytes per ${name === 'PutObject' ? 'object upload' : 'part'}; ${advice}.`, {
    details: { ProposedSize: contentLength, MaxSizeAllowed: limit },
  });
}

/** Rewrites x-amz-copy-source to the source's upstream bucket; both sides must share one upstream endpoint. */
async function withCopySource(deps: HandlerDeps, ctx: OperationContext, target: UpstreamTarget): Promise<ForwardRequest> {
  const source = ctx.operation.copySource!;
  const sourceTarget = source.bucket === ctx.operation.bucket ? target : await resolveBucket(deps, source.bucket);
  assertAddressableUpstream(sourceTarget, source.key, 'x-amz-copy-source');
  if (sourceTarget.endpoint.href !== target.endpoint.href || sourceTarget.credentials.accessKeyId !== target.credentials.accessKeyId) {
    throw new S3Error(
      'NotImplemented',
      `Copying from "${source.bucket}" to "${ctx.operation.bucket}" crosses upstreams (${describeTarget(sourceTarget)} -> ${describeTarget(target)}); download and upload the object instead.`,
    );
  }
  const encodedKey = source.key.split('/').map(encodeURIComponent).join('/');
  const versionSuffix = source.versionId ? `?versionId=${encodeURIComponent(source.versionId)}` : '';
  const headers = { ...ctx.headers, 'x-amz-copy-source': `/${sourceTarget.bucket}/${encodedKey}${versionSuffix}` };
  return forwardRequestFor(ctx, target, { headers });
}

/**
 * Complete is checked before it goes upstream (S3's MalformedXML / InvalidArgument / InvalidPartOrder
 * instead of an upstream's HTML 500 or misreading), then forwarded as the exact bytes the client
 * signed, with its x-amz-checksum-* headers (the whole object's checksum) passed on as for any request.
 */
async function completeMultipartUpload(ctx: OperationContext, target: UpstreamTarget): Promise<void> {
  if (ctx.body === null) throw new S3Error('MalformedXML', 'CompleteMultipartUpload needs a <CompleteMultipartUpload> XML body listing the uploaded parts.');
  const bytes = await readBodyBytes(ctx.body, MAX_XML_BODY_BYTES);
  parseCompleteMultipartUpload(bytes.toString('utf8'));
  await relay(ctx, forwardRequestFor(ctx, target, { body: Readable.from([bytes]), contentLength: bytes.length }));
}

async function deleteObjects(ctx: OperationContext, target: UpstreamTarget): Promise<void> {
  if (ctx.body === null) throw new S3Error('MalformedXML', 'DeleteObjects needs a <Delete> XML body.');
  const request = parseDeleteRequest(await readBodyText(ctx.body, MAX_XML_BODY_BYTES));
  const bucket = ctx.operation.bucket!;
  // Keys are scoped per bucket and every entry lies in this bucket, so one check authorizes the
  // whole batch, before anything is deleted: a forbidden batch deletes nothing.
  authorizeBucketAction(ctx.key, bucket, 'delete');
  const deleteOne = async (entry: DeleteRequestEntry) => {
    const response = await forward({
      target,
      method: 'DELETE',
      objectKey: entry.key,
      bucketLevel: true,
      query: entry.versionId ? [['versionId', entry.versionId]] : [],
      headers: {},
      body: null,
      contentLength: null,
      signal: ctx.signal,
      retry: true,
    });
    return { status: response.status, text: await readUpstreamBody(response, MAX_XML_BODY_BYTES) };
  };
  const xml = await fanOutDeletes(request, async (entry) => {
    try {
      // Refused keys become this entry's <Error>; the rest of the batch goes on, as S3 reports per key.
      assertObjectKeyInScope(ctx.key, entry.key, 'Key');
      assertAddressableUpstream(target, entry.key, 'Key');
      // Transient upstream failures are retried by the forwarder (retry: true, backoff included);
      // whatever it ends with is this key's outcome. Retrying again here would multiply the attempts.
      const outcome = await deleteOne(entry);
      if (outcome.status < 300 || outcome.status === 404) return null;
      return {
        code: /<Code>([^<]+)<\/Code>/.exec(outcome.text)?.[1] ?? 'InternalError',
        message: /<Message>([^<]*)<\/Message>/.exec(outcome.text)?.[1] ?? `The upstream answered ${outcome.status}.`,
      };
    } catch (error) {
      if (error instanceof S3Error) return { code: error.code, message: error.message };
      throw error;
    }
  });
  sendXml(ctx.res, 200, xml);
}

function describeTarget(target: UpstreamTarget): string {
  return target.kind === 'runpod' ? `RunPod ${target.datacenter}` : target.endpoint.host;
}
