/**
 * Classification: which operation of the table (operations.ts) a request is, and what of the
 * request that operation carries upstream — its query parameters and request headers, filtered by
 * its entry, and its copy source. Requests that name no operation are refused here: AccessDenied
 * for what the gateway does not allow, NotImplemented for S3 features it knows and does not offer.
 */
import { bucketNameProblem } from '../buckets/validate.js';
import { S3Error } from '../errors.js';
import { headerValue, type HeaderMap } from '../header-value.js';
import type { S3Address } from './address.js';
import { BUCKET_CONFIG_SUBRESOURCES, OPERATIONS, UNSUPPORTED_SUBRESOURCES, type OperationName, type OperationSpec } from './operations.js';
import { forwardedHeaders, type HeaderRequirement } from './request-headers.js';

export interface CopySource {
  bucket: string;
  key: string;
  versionId: string | null;
}

/** One classified request: everything later steps (authorize, plan, forward) work from. */
export interface S3Operation {
  name: OperationName;
  spec: OperationSpec;
  bucket: string | null;
  key: string | null;
  /** For CopyObject / UploadPartCopy: the source, which needs `read` separately. */
  copySource: CopySource | null;
  /** Query pairs sent upstream (the operation's own, in the client's order). */
  query: Array<[string, string]>;
  /** Request headers sent upstream (the operation's groups only). */
  headers: Record<string, string>;
  /** Headers sent that need permissions or upstream capabilities beyond the operation's. */
  requirements: HeaderRequirement[];
  /** The client's User-Agent, named in the gateway's own upstream User-Agent. */
  userAgent: string | undefined;
}

/** Classifies a request. Throws S3Error for requests that name no operation the gateway offers. */
export function classify(method: string, address: S3Address, headers: HeaderMap): S3Operation {
  const present = new Set(address.query.map(([name]) => name));
  const has = (name: string) => present.has(name);
  const name = chooseOperation(method, address, has, headers);
  if (name === null) {
    const unsupported = UNSUPPORTED_SUBRESOURCES.find((sub) => has(sub));
    if (unsupported !== undefined) {
      throw new S3Error('NotImplemented', `keygate does not offer the S3 "${unsupported}" sub-resource.`);
    }
    throw new S3Error('AccessDenied', describeUnsupported(method, address));
  }
  return describeOperation(name, address, headers);
}

/** The name of the operation a request is, without describing it (null: none the gateway offers). */
export function operationNameOf(method: string, address: S3Address, headers: HeaderMap): OperationName | null {
  const present = new Set(address.query.map(([name]) => name));
  return chooseOperation(method, address, (name) => present.has(name), headers);
}

/**
 * The operation `name` on `address` with the request's headers, filtered by its table entry. Also
 * used for POST Object, whose "headers" are its form fields.
 */
export function describeOperation(name: OperationName, address: Pick<S3Address, 'bucket' | 'key' | 'query'>, headers: HeaderMap): S3Operation {
  const spec: OperationSpec = OPERATIONS[name];
  const marker = spec.subresource ?? configSubresource(name, address.query);
  const query = address.query.filter(([param]) => spec.query.includes(param) || param === marker);
  const forwarded = forwardedHeaders(spec.headers, headers);
  const copySource = spec.copySource ? parseCopySource(headerValue(headers, 'x-amz-copy-source')) : null;
  return {
    name,
    spec,
    bucket: address.bucket,
    key: address.key,
    copySource,
    query,
    headers: forwarded.headers,
    requirements: forwarded.requirements,
    userAgent: headerValue(headers, 'user-agent'),
  };
}

function chooseOperation(method: string, address: S3Address, has: (name: string) => boolean, headers: HeaderMap): OperationName | null {
  if (address.bucket === null) {
    return method === 'GET' && !hasSubresource(has) ? 'ListBuckets' : null;
  }
  if (address.key === null) return chooseBucketOperation(method, has, headers, address);
  const copies = headerValue(headers, 'x-amz-copy-source') !== undefined;
  switch (method) {
    case 'HEAD':
      return hasSubresource(has) ? null : 'HeadObject';
    case 'GET':
      if (has('uploadId')) return 'ListParts';
      if (has('tagging')) return 'GetObjectTagging';
      if (has('acl')) return 'GetObjectAcl';
      if (has('attributes')) return 'GetObjectAttributes';
      if (has('retention')) return 'GetObjectRetention';
      if (has('legal-hold')) return 'GetObjectLegalHold';
      return hasSubresource(has) ? null : 'GetObject';
    case 'PUT':
      if (has('partNumber') && has('uploadId')) return copies ? 'UploadPartCopy' : 'UploadPart';
      if (has('tagging')) return 'PutObjectTagging';
      if (has('acl')) return 'PutObjectAcl';
      if (has('retention')) return 'PutObjectRetention';
      if (has('legal-hold')) return 'PutObjectLegalHold';
      if (hasSubresource(has) || has('uploadId') || has('partNumber')) return null;
      return copies ? 'CopyObject' : 'PutObject';
    case 'POST':
      if (has('uploads')) return 'CreateMultipartUpload';
      if (has('uploadId')) return 'CompleteMultipartUpload';
      return null;
    case 'DELETE':
      if (has('uploadId')) return 'AbortMultipartUpload';
      if (has('tagging')) return 'DeleteObjectTagging';
      return hasSubresource(has) ? null : 'DeleteObject';
    default:
      return null;
  }
}

function chooseBucketOperation(method: string, has: (name: string) => boolean, headers: HeaderMap, address: S3Address): OperationName | null {
  const config = BUCKET_CONFIG_SUBRESOURCES.some((sub) => has(sub));
  switch (method) {
    case 'HEAD':
      return hasSubresource(has) ? null : 'HeadBucket';
    case 'GET':
      if (has('location')) return 'GetBucketLocation';
      if (has('uploads')) return 'ListMultipartUploads';
      if (has('versions')) return 'ListObjectVersions';
      if (has('object-lock')) return 'GetObjectLockConfiguration';
      if (config) return 'GetBucketConfiguration';
      if (hasSubresource(has)) return null;
      return address.query.find(([param]) => param === 'list-type')?.[1] === '2' ? 'ListObjectsV2' : 'ListObjects';
    case 'PUT':
      if (has('object-lock')) return 'PutObjectLockConfiguration';
      if (config) return 'PutBucketConfiguration';
      return hasSubresource(has) ? null : 'CreateBucket';
    case 'DELETE':
      if (config) return 'DeleteBucketConfiguration';
      return hasSubresource(has) ? null : 'DeleteBucket';
    case 'POST':
      if (has('delete')) return 'DeleteObjects';
      if (hasSubresource(has)) return null;
      return isFormUpload(headers) ? 'PostObject' : null;
    default:
      return null;
  }
}

/**
 * Every sub-resource S3 knows. A request carrying one that its method and level do not route
 * must not degrade into a plain operation (a GET with `?restore` is not a GetObject).
 */
const SUBRESOURCES: ReadonlySet<string> = new Set([
  ...BUCKET_CONFIG_SUBRESOURCES,
  ...UNSUPPORTED_SUBRESOURCES,
  'object-lock',
  'retention',
  'legal-hold',
  'uploads',
  'delete',
  'location',
  'versions',
  'attributes',
]);

function hasSubresource(has: (name: string) => boolean): boolean {
  for (const sub of SUBRESOURCES) if (has(sub)) return true;
  return false;
}

function configSubresource(name: OperationName, query: ReadonlyArray<readonly [string, string]>): string | undefined {
  if (name !== 'GetBucketConfiguration' && name !== 'PutBucketConfiguration' && name !== 'DeleteBucketConfiguration') return undefined;
  return BUCKET_CONFIG_SUBRESOURCES.find((sub) => query.some(([param]) => param === sub));
}

function isFormUpload(headers: HeaderMap): boolean {
  return (headerValue(headers, 'content-type') ?? '').toLowerCase().startsWith('multipart/form-data');
}

/** `x-amz-copy-source: /bucket/key?versionId=…` (leading slash optional, URL-encoded). */
export function parseCopySource(value: string | undefined): CopySource {
  if (value === undefined || value === '') {
    throw new S3Error('InvalidArgument', 'x-amz-copy-source must name the source as "bucket/key".');
  }
  const queryAt = value.indexOf('?');
  const pathPart = queryAt < 0 ? value : value.slice(0, queryAt);
  const queryPart = queryAt < 0 ? undefined : value.slice(queryAt + 1);
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathPart.replace(/^\//, ''));
  } catch {
    throw new S3Error('InvalidArgument', 'x-amz-copy-source is not properly URL-encoded; encode it as "bucket/url-encoded-key".');
  }
  const slash = decoded.indexOf('/');
  if (slash <= 0 || slash === decoded.length - 1) {
    throw new S3Error('InvalidArgument', 'x-amz-copy-source must name the source as "bucket/key".');
  }
  // The source bucket is named the way a request path names one. Anything else (`%`, `?`, `#`, a
  // control character, once decoded) would be re-read by the upstream as another bucket, key or
  // query than the one checked here: `data%252Fteam-b%252Fx%3F/team-a/y` decodes to the "bucket"
  // `data%2Fteam-b%2Fx?`, which an upstream reads as `/data/team-b/x`.
  const bucket = decoded.slice(0, slash);
  const bucketProblem = bucketNameProblem(bucket);
  if (bucketProblem !== null) {
    throw new S3Error(
      'InvalidArgument',
      `The bucket of x-amz-copy-source is not a bucket name: ${bucketProblem} Name the source as "bucket/url-encoded-key".`,
      {
        details: { ArgumentName: 'x-amz-copy-source' },
      },
    );
  }
  let versionId: string | null = null;
  if (queryPart !== undefined) {
    const params = [...new URLSearchParams(queryPart)];
    if (queryPart.includes('?') || params.some(([name]) => name !== 'versionId') || params.length > 1) {
      throw new S3Error('InvalidArgument', 'x-amz-copy-source may only carry "?versionId=…" after the key; URL-encode "?" in key names.');
    }
    versionId = params[0]?.[1] ?? null;
  }
  return { bucket, key: decoded.slice(slash + 1), versionId };
}

function describeUnsupported(method: string, address: S3Address): string {
  const subresources = address.query.map(([name]) => name).filter((name) => !name.toLowerCase().startsWith('x-amz-'));
  const target = address.bucket === null ? 'the service root' : address.key === null ? 'a bucket' : 'an object';
  const withQuery = subresources.length > 0 ? ` with ?${subresources.join('&')}` : '';
  return `keygate does not allow ${method} on ${target}${withQuery}; this operation is not supported through the gateway.`;
}
