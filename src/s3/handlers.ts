/**
 * What the gateway does for an authorized, planned operation, per its table entry's handler:
 * forward it as the entry allows, or answer it itself (ListBuckets, GetBucketLocation), or check
 * and fan out its XML body (DeleteObjects, CompleteMultipartUpload), or rewrite a copy source for
 * the upstream, or create and delete RunPod buckets (CreateBucket, DeleteBucket, through
 * src/buckets/lifecycle.ts). Every handler returns a Reply; the HTTP layer writes it. A write to a
 * RunPod bucket is counted by the lifecycle while it is forwarded (and refused if the bucket is
 * being deleted), so a delete never races it.
 */
import type { Cancellation } from '../cancellation.js';
import { Readable } from 'node:stream';
import { assertObjectKeyInScope, authorize, authorizeBucketAction, canSeeBucket } from '../authz.js';
import { catalogEntry, S3Error } from '../errors.js';
import { headerValue } from '../header-value.js';
import type { AccessKey } from '../keys/model.js';
import { readUpstreamBody, type ForwardRequest, type UpstreamBody, type UpstreamForwarder, type UpstreamResponse } from '../upstream/forward.js';
import type { UpstreamResolver } from '../upstream/resolver.js';
import type { UpstreamTarget } from '../upstream/target.js';
import { aclDocumentGrants } from './acl-grants.js';
import type { S3Operation } from './classify.js';
import { completedParts } from './complete-multipart.js';
import {
  conditionsHold,
  deleteRequest,
  FAN_OUT_SIGNAL_LISTENERS,
  fanOutDeletes,
  needsGatewayCheck,
  type DeleteRequest,
  type DeleteRequestEntry,
} from './delete-objects.js';
import { assertNoDotSegments } from './dot-segments.js';
import type { UploadIdBinding } from './upload-ids.js';
import { rewriteWithin, textRewrite, XmlElementRewrite, type ElementRewrites } from './xml-rewrite.js';
import { uriEncode } from '../sigv4/uri-encoding.js';
import { readErrorDocument, upstreamAnswerFailure } from '../upstream/failures.js';
import { describeKind, MAX_CREATE_BUCKET_BODY_BYTES, resolveBucket, writesToBucket, type OperationPlan } from './plan.js';
import { xmlReply, type Reply } from './reply.js';
import { bucketListPage } from './list-buckets.js';
import { bucketLocationXml, listBucketsXml } from './responses.js';
import { holdAnswerBytes, readHeldBody } from './held-bodies.js';
import { readXmlBody, type XmlBody } from './xml-body.js';
import { CREATE_BUCKET_SHAPE, datacenterOfLocationConstraint, locationConstraintOf } from './create-bucket.js';
import { BucketLifecycleError, type BucketLifecycle } from '../buckets/lifecycle.js';

export interface HandlerDeps {
  resolver: Pick<UpstreamResolver, 'resolve' | 'listBuckets'>;
  /** Creates and deletes RunPod buckets, and fences writes to one being deleted (null: the gateway does not; plan.ts then refuses such requests). */
  lifecycle: Pick<BucketLifecycle, 'canCreateOnRunpod' | 'datacenters' | 'createRunpodBucket' | 'deleteRunpodBucket' | 'isBeingDeleted' | 'beginWrite'> | null;
  /** Regions a client signature may be scoped to (config.acceptedRegions): a LocationConstraint naming one asks for no particular datacenter. */
  signingRegions: readonly string[];
  forwarder: Pick<UpstreamForwarder, 'forward'>;
  /** Region clients sign with; reported by GetBucketLocation and ListBuckets. */
  region: string;
  uploadIds: UploadIdBinding;
  /** The endpoint clients use (KEYGATE_PUBLIC_URL), for the object URLs answers carry. */
  publicUrl: string;
}

export interface OperationContext {
  key: AccessKey;
  /** The client's HTTP method (the operation's own, which classification matched). */
  method: string;
  /** The verified request body, for operations that take one (null otherwise). */
  body: UpstreamBody | null;
  signal: Cancellation;
  requestId: string;
  /**
   * The key as it is now (not as it was when the request started): operations that act only after
   * reading a body re-authorize with it, so a key deleted or disabled meanwhile does nothing.
   * Throws InvalidAccessKeyId when the key was deleted.
   */
  keyNow: () => Promise<AccessKey>;
}

/** Largest small answer (Copy, Initiate, Complete) read whole: it may be an error inside a 200. */
const MAX_SMALL_ANSWER_BYTES = 64 * 1024;

/**
 * Not an async function: most operations are not counted writes, and their promise is execute()'s
 * own. An async function here would stay suspended for as long as the upstream takes, and every
 * object a request holds meanwhile survives a scavenge (docs/benchmarks.md).
 */
export function executeOperation(deps: HandlerDeps, plan: OperationPlan, ctx: OperationContext): Promise<Reply> {
  return isCountedWrite(deps, plan) ? executeCountedWrite(deps, plan, ctx) : execute(deps, plan, ctx);
}

/**
 * A write to a RunPod bucket is checked again (the plan was made before the body came; a delete
 * may have begun since) and counted until it has been answered: the upstream has then stored it,
 * or failed.
 */
function isCountedWrite(deps: HandlerDeps, plan: OperationPlan): boolean {
  const { operation, target } = plan;
  return target !== null && target.kind === 'runpod' && deps.lifecycle !== null && writesToBucket(operation);
}

async function executeCountedWrite(deps: HandlerDeps, plan: OperationPlan, ctx: OperationContext): Promise<Reply> {
  const ended = deps.lifecycle!.beginWrite(plan.operation.bucket!, plan.target!.bucket);
  try {
    return await execute(deps, plan, ctx);
  } finally {
    ended();
  }
}

/** Each handler's promise as it is (not an async function: see executeOperation). */
function execute(deps: HandlerDeps, plan: OperationPlan, ctx: OperationContext): Promise<Reply> {
  const { operation, target } = plan;
  switch (operation.spec.handler) {
    case 'listBuckets':
      return listBuckets(deps, operation, ctx);
    case 'bucketLocation':
      return Promise.resolve(xmlReply(200, bucketLocationXml(deps.region)));
    case 'createBucket':
      return createBucket(deps, operation, target, ctx);
    case 'deleteBucket':
      return deleteBucket(deps, operation, target!, ctx);
    case 'deleteObjects':
      return deleteObjects(deps, operation, target!, ctx);
    case 'completeMultipartUpload':
      return completeMultipartUpload(deps, operation, target!, ctx);
    case 'copy':
      return withCopySource(deps, operation, target!, ctx).then((request) => relay(deps, ctx, operation, request));
    case 'putObjectAcl':
      return putObjectAcl(deps, operation, target!, ctx);
    case 'forward':
    case 'postObject':
      return relay(deps, ctx, operation, forwardRequestFor(operation, target!, ctx));
  }
}

async function listBuckets(deps: HandlerDeps, operation: S3Operation, ctx: OperationContext): Promise<Reply> {
  const visible = (await deps.resolver.listBuckets()).filter((bucket) => canSeeBucket(ctx.key, bucket.name));
  const { buckets, ...page } = bucketListPage(visible, operation.query, deps.region);
  return xmlReply(200, listBucketsXml(buckets, ownerOf(ctx.key), deps.region, page));
}

/** The identity a key sees as the owner of everything it lists. */
function ownerOf(key: AccessKey): { id: string; displayName: string } {
  return { id: key.accessKeyId, displayName: key.name };
}

/** Methods retried when they carry no body: they change nothing twice. */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'DELETE']);

function forwardRequestFor(operation: S3Operation, target: UpstreamTarget, ctx: OperationContext, extra: Partial<ForwardRequest> = {}): ForwardRequest {
  const method = operation.spec.upstreamMethod ?? ctx.method;
  return {
    target,
    method,
    objectKey: operation.key,
    bucketLevel: true,
    query: operation.query,
    headers: operation.headers,
    userAgent: operation.userAgent,
    body: ctx.body,
    signal: ctx.signal,
    retry: ctx.body === null && IDEMPOTENT_METHODS.has(method),
    requestId: ctx.requestId,
    ...extra,
  };
}

/** A continuation, not an async function: nothing of it is kept suspended while the upstream answers (see executeOperation). */
function relay(deps: HandlerDeps, ctx: OperationContext, operation: S3Operation, request: ForwardRequest): Promise<Reply> {
  return deps.forwarder.forward(request).then((upstream) => {
    if (operation.spec.reportsRegion) upstream.headers['x-amz-bucket-region'] = deps.region;
    const rewrites = answerRewrite(deps, operation, ctx.key);
    return operation.spec.smallAnswer ? smallAnswer(upstream, rewrites, request) : streamReply(upstream, rewrites);
  });
}

/**
 * A small answer read whole. S3 reports a CopyObject, UploadPartCopy or CompleteMultipartUpload
 * that failed after it began as an `<Error>` document inside a 200: that becomes the S3Error, in
 * the gateway's words, like any upstream error (never the upstream's document).
 */
async function smallAnswer(upstream: UpstreamResponse, rewrites: ElementRewrites | null, request: ForwardRequest): Promise<Reply> {
  const answer = await readUpstreamBody(upstream, MAX_SMALL_ANSWER_BYTES);
  if (/^\s*(<\?xml[^>]*>\s*)?<Error>/.test(answer)) {
    const document = readErrorDocument(answer);
    const status = catalogEntry(document?.code ?? '')?.status ?? 500;
    throw upstreamAnswerFailure(status >= 400 ? status : 500, document, request.target, undefined, request.method);
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(upstream.headers)) {
    if (name !== 'content-length' && name !== 'transfer-encoding') headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return xmlReply(upstream.status, rewrites === null ? answer : rewriteWithin(answer, rewrites), headers);
}

/** What of an answer is rewritten on its way to the client: owner identities, upload ids (null: nothing). */
function answerRewrite(deps: HandlerDeps, operation: S3Operation, key: AccessKey): ElementRewrites | null {
  const { spec } = operation;
  const owner = ownerOf(key);
  const owners: ElementRewrites = spec.ownerFields ? { ID: textRewrite(() => owner.id), DisplayName: textRewrite(() => owner.displayName) } : {};
  const bucket = operation.bucket ?? '';
  const names: ElementRewrites = spec.bucketFields
    ? {
        Bucket: textRewrite(() => bucket),
        Name: textRewrite(() => bucket),
        Location: textRewrite(() => `${deps.publicUrl}/${bucket}${operation.key === null ? '' : `/${uriEncode(operation.key, true)}`}`),
      }
    : {};
  if (!spec.uploadIds) return spec.ownerFields || spec.bucketFields ? { ...owners, ...names } : null;
  const urlEncoded = operation.query.some(([name, value]) => name === 'encoding-type' && value === 'url');
  return { ...owners, ...names, ...deps.uploadIds.answerRewrites(bucket, operation.key, urlEncoded, owners) };
}

/** An upstream answer as the client gets it, rewritten as the operation needs. */
function streamReply(upstream: UpstreamResponse, rewrites: ElementRewrites | null): Reply {
  if (rewrites === null) return { kind: 'stream', status: upstream.status, headers: upstream.headers, body: upstream.body };
  const headers = { ...upstream.headers };
  delete headers['content-length'];
  const body: Readable = upstream.body.pipe(new XmlElementRewrite(rewrites));
  upstream.body.once('error', (error) => body.destroy(error));
  return { kind: 'stream', status: upstream.status, headers, body };
}

/**
 * CreateBucket: forwarded to a generic S3 upstream. On RunPod, a name no route knows (target null,
 * see plan.ts) becomes a network volume in the datacenter the LocationConstraint names (or the
 * default one), registered under the name; a name that routes to RunPod already exists.
 */
async function createBucket(deps: HandlerDeps, operation: S3Operation, target: UpstreamTarget | null, ctx: OperationContext): Promise<Reply> {
  const bucket = operation.bucket!;
  if (target !== null && target.kind !== 'runpod') return relay(deps, ctx, operation, forwardRequestFor(operation, target, ctx));
  if (target !== null) throw new BucketLifecycleError('BucketAlreadyOwnedByYou', `Bucket "${bucket}" already exists on this gateway.`);
  const lifecycle = requireLifecycle(deps, operation);
  // The whole (verified) body is read before anything is created.
  const document = await readCreateBucketConfiguration(ctx.body, ctx.key.accessKeyId);
  const datacenter = datacenterOfLocationConstraint(locationConstraintOf(document), lifecycle.datacenters, deps.signingRegions);
  await lifecycle.createRunpodBucket({ name: bucket, datacenter });
  return { kind: 'empty', status: 200, headers: { location: `/${bucket}` } };
}

async function readCreateBucketConfiguration(body: UpstreamBody | null, heldFor: string): Promise<XmlBody | null> {
  if (body === null) return null;
  if (body.length === 0) {
    // Still read to its end: the payload is verified as it is read.
    for await (const chunk of body.stream) void chunk;
    return null;
  }
  return (await readXmlBody(body.stream, CREATE_BUCKET_SHAPE, { heldFor, maxBytes: MAX_CREATE_BUCKET_BODY_BYTES })).document;
}

/** DeleteBucket: forwarded to a generic S3 upstream; a RunPod bucket's volume is deleted by the lifecycle's rules. */
async function deleteBucket(deps: HandlerDeps, operation: S3Operation, target: UpstreamTarget, ctx: OperationContext): Promise<Reply> {
  if (target.kind !== 'runpod') return relay(deps, ctx, operation, forwardRequestFor(operation, target, ctx));
  await requireLifecycle(deps, operation).deleteRunpodBucket(operation.bucket!);
  return { kind: 'empty', status: 204, headers: {} };
}

function requireLifecycle(deps: HandlerDeps, operation: S3Operation): NonNullable<HandlerDeps['lifecycle']> {
  if (deps.lifecycle === null) throw new S3Error('NotImplemented', `${operation.name} is not supported for RunPod buckets on this gateway.`);
  return deps.lifecycle;
}

/** Rewrites x-amz-copy-source to the source's upstream bucket; both sides must share one upstream endpoint. */
async function withCopySource(deps: HandlerDeps, operation: S3Operation, target: UpstreamTarget, ctx: OperationContext): Promise<ForwardRequest> {
  const source = operation.copySource!;
  const sourceTarget = source.bucket === operation.bucket ? target : await resolveBucket(deps, source.bucket);
  if (sourceTarget.capabilities.keysArePaths) assertNoDotSegments(source.key, 'runpod-upstream', 'x-amz-copy-source');
  if (sourceTarget.endpoint.href !== target.endpoint.href || sourceTarget.credentials.accessKeyId !== target.credentials.accessKeyId) {
    throw new S3Error(
      'NotImplemented',
      `Copying from "${source.bucket}" to "${operation.bucket}" crosses storage services (${describeKind(sourceTarget)} -> ${describeKind(target)}); download and upload the object instead.`,
    );
  }
  const encodedKey = source.key.split('/').map(encodeURIComponent).join('/');
  const versionSuffix = source.versionId ? `?versionId=${encodeURIComponent(source.versionId)}` : '';
  // Every part encoded: the upstream must read back exactly the bucket, key and version checked here.
  const headers = { ...operation.headers, 'x-amz-copy-source': `/${encodeURIComponent(sourceTarget.bucket)}/${encodedKey}${versionSuffix}` };
  return forwardRequestFor(operation, target, ctx, { headers });
}

/**
 * Complete is checked as it arrives (S3's MalformedXML / InvalidArgument / InvalidPartOrder instead
 * of an upstream's HTML 500 or misreading), then forwarded as the exact bytes the client signed. Its
 * answer is read whole: S3 may report a failed completion as an error document inside a 200.
 */
async function completeMultipartUpload(deps: HandlerDeps, operation: S3Operation, target: UpstreamTarget, ctx: OperationContext): Promise<Reply> {
  const body = requireBody(ctx, 'CompleteMultipartUpload needs a <CompleteMultipartUpload> XML body listing the uploaded parts.');
  const spec = operation.spec.body;
  if (spec.kind !== 'xml') throw new Error('CompleteMultipartUpload takes an XML body');
  const { document, bytes } = await readXmlBody(body.stream, spec.shape, { heldFor: ctx.key.accessKeyId, maxBytes: spec.maxBytes, keepBytes: true });
  completedParts(document);
  // The body may have taken long: complete only if the key may still do it now.
  authorize(await ctx.keyNow(), operation);
  const forwarded: UpstreamBody = { ...body, stream: Readable.from([bytes!]), length: bytes!.length, trailerChecksum: null };
  return relay(deps, ctx, operation, forwardRequestFor(operation, target, ctx, { body: forwarded }));
}

async function deleteObjects(deps: HandlerDeps, operation: S3Operation, target: UpstreamTarget, ctx: OperationContext): Promise<Reply> {
  const body = requireBody(ctx, 'DeleteObjects needs a <Delete> XML body.');
  const spec = operation.spec.body;
  if (spec.kind !== 'xml') throw new Error('DeleteObjects takes an XML body');
  // The body's bytes stay held while its entries are deleted, then its answer's until that is sent:
  // a key cannot park more batches, or their answers, than its share.
  const { document, release } = await readXmlBody(body.stream, spec.shape, { heldFor: ctx.key.accessKeyId, maxBytes: spec.maxBytes, keepHeld: true });
  let xml: string;
  try {
    xml = await deleteBatch(deps, operation, target, ctx, deleteRequest(document));
  } finally {
    release();
  }
  return { kind: 'xml', status: 200, xml, release: holdAnswerBytes(ctx.key.accessKeyId, Buffer.byteLength(xml)) };
}

/** DeleteObjects' deletes, each entry on its own; the DeleteResult. */
async function deleteBatch(deps: HandlerDeps, operation: S3Operation, target: UpstreamTarget, ctx: OperationContext, request: DeleteRequest): Promise<string> {
  const bucket = operation.bucket!;
  // The body may have taken long: judge the batch by the key as it is now.
  const key = await ctx.keyNow();
  authorize(key, operation);
  // Keys are scoped per bucket and every entry lies in this bucket, so one check authorizes the
  // whole batch, before anything is deleted: a forbidden batch deletes nothing.
  authorizeBucketAction(key, bucket, 'delete');
  ctx.signal.setMaxListeners(FAN_OUT_SIGNAL_LISTENERS);
  const single = (entry: DeleteRequestEntry, method: 'HEAD' | 'DELETE', headers: Record<string, string>) =>
    deps.forwarder.forward({
      target,
      method,
      objectKey: entry.key,
      bucketLevel: true,
      query: entry.versionId ? [['versionId', entry.versionId]] : [],
      headers,
      userAgent: operation.userAgent,
      body: null,
      signal: ctx.signal,
      retry: true,
      requestId: ctx.requestId,
    });
  const deleteOne = async (entry: DeleteRequestEntry): Promise<void> => {
    // The batch's own headers that apply to each delete (a governance bypass, if authorized), and
    // the entry's own conditions.
    const headers = { ...operation.headers, ...entry.conditions };
    if (needsGatewayCheck(entry)) {
      // Size and time are checked here (upstreams may ignore them); the delete then names the
      // object checked by its ETag, so one replaced in between is not deleted either.
      const head = await single(entry, 'HEAD', {});
      head.body.resume();
      const value = (name: string) => headerValue(head.headers, name);
      if (!conditionsHold(entry, { contentLength: value('content-length'), lastModified: value('last-modified') })) {
        throw new S3Error('PreconditionFailed', 'The object does not have the <Size> or <LastModifiedTime> this entry names; it was not deleted.');
      }
      const etag = value('etag');
      if (headers['if-match'] === undefined && etag !== undefined) headers['if-match'] = etag;
    }
    const response = await single(entry, 'DELETE', headers);
    response.body.resume();
  };
  return fanOutDeletes(request, async (entry) => {
    try {
      // Refused keys become this entry's <Error>; the rest of the batch goes on, as S3 reports per key.
      assertObjectKeyInScope(key, entry.key, 'Key');
      if (target.capabilities.keysArePaths) assertNoDotSegments(entry.key, 'runpod-upstream', 'Key');
      // Transient upstream failures are retried by the forwarder (retry: true, backoff included);
      // whatever it ends with is this key's outcome. Retrying again here would multiply the attempts.
      await deleteOne(entry);
      return null;
    } catch (error) {
      if (!(error instanceof S3Error)) throw error;
      // Deleting what is not there succeeds in S3.
      if (error.status === 404 && error.code === 'NoSuchKey') return null;
      return { code: error.code, message: error.message };
    }
  });
}

/**
 * PutObjectAcl: an ACL that grants nobody but the owner (what s3cmd copies from a private source)
 * is sent as the canned `private` ACL, which any key with `write` may set; anything else (grants to
 * other accounts, groups such as AllUsers, e-mail grantees, x-amz-grant-* headers) needs `admin`
 * and goes upstream as sent.
 */
async function putObjectAcl(deps: HandlerDeps, operation: S3Operation, target: UpstreamTarget, ctx: OperationContext): Promise<Reply> {
  const body = ctx.body === null ? Buffer.alloc(0) : await readSmallBody(ctx.body, operation, ctx.key.accessKeyId);
  const grants = operation.requirements.length > 0 ? 'other' : body.length === 0 ? 'private' : aclDocumentGrants(body.toString('utf8'));
  if (grants === 'private') {
    // No body goes upstream, so neither do the checksums that described the client's.
    const headers = withoutBodyChecksums({ ...operation.headers, 'x-amz-acl': 'private' });
    return relay(deps, ctx, operation, forwardRequestFor(operation, target, ctx, { headers, body: null }));
  }
  if (!ctx.key.permissions.includes('admin')) {
    throw new S3Error(
      'AccessDenied',
      'Access Denied: granting access to an object through its ACL needs the "admin" permission, which this key lacks; objects stay private.',
    );
  }
  // The document exactly as the client sent it (its checksums describe these bytes).
  const forwarded: UpstreamBody | null = ctx.body === null ? null : { ...ctx.body, stream: Readable.from([body]), trailerChecksum: null };
  return relay(deps, ctx, operation, forwardRequestFor(operation, target, ctx, { body: forwarded }));
}

function withoutBodyChecksums(headers: Record<string, string>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name === 'content-md5' || name.startsWith('x-amz-checksum-') || name === 'x-amz-sdk-checksum-algorithm') continue;
    kept[name] = value;
  }
  return kept;
}

/** Reads a small verified document body (the table caps it) whole, held against its sender's share meanwhile. */
async function readSmallBody(body: UpstreamBody, operation: S3Operation, heldFor: string): Promise<Buffer> {
  const spec = operation.spec.body;
  if (spec.kind !== 'document') throw new Error(`${operation.name} takes no document body`);
  const chunks: Buffer[] = [];
  const tooLarge = () => new S3Error('MaxMessageLengthExceeded', `${operation.name} bodies are limited to ${spec.maxBytes} bytes.`);
  const release = await readHeldBody(body.stream, { heldFor, maxBytes: spec.maxBytes, tooLarge }, (chunk) => void chunks.push(chunk));
  release();
  return Buffer.concat(chunks);
}

function requireBody(ctx: OperationContext, problem: string): UpstreamBody {
  if (ctx.body === null) throw new S3Error('MalformedXML', problem);
  return ctx.body;
}
