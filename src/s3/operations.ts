/**
 * The operations table: every S3 request is classified into exactly one named operation, which
 * knows the permission it needs, the level it acts on and which query parameters belong to it.
 * Anything not recognized here is refused (deny by default), and only the listed query parameters
 * ever reach the upstream, so an unknown sub-resource cannot slip through as a plain GET.
 */
import type { Permission } from '../keys/model.js';
import { S3Error } from './errors.js';
import type { S3Address } from './address.js';

type Level = 'service' | 'bucket' | 'object';

interface OperationSpec {
  level: Level;
  permission: Permission;
  /** Query parameters forwarded upstream (besides the sub-resource marker itself). */
  params: readonly string[];
}

const LIST_V1 = ['prefix', 'delimiter', 'marker', 'max-keys', 'encoding-type'] as const;
const LIST_V2 = ['list-type', 'prefix', 'delimiter', 'continuation-token', 'max-keys', 'fetch-owner', 'start-after', 'encoding-type'] as const;
const GET_OBJECT = [
  'versionId',
  'partNumber',
  'response-cache-control',
  'response-content-disposition',
  'response-content-encoding',
  'response-content-language',
  'response-content-type',
  'response-expires',
] as const;

/** Bucket sub-resources that configure a bucket; all of them need `admin`. */
export const BUCKET_CONFIG_SUBRESOURCES = [
  'accelerate', 'acl', 'analytics', 'cors', 'encryption', 'intelligent-tiering', 'inventory', 'lifecycle', 'logging',
  'metadataTable', 'metrics', 'notification', 'object-lock', 'ownershipControls', 'policy', 'policyStatus',
  'publicAccessBlock', 'replication', 'requestPayment', 'tagging', 'versioning', 'website',
] as const;

export const OPERATIONS = {
  ListBuckets: { level: 'service', permission: 'read', params: ['prefix', 'max-buckets', 'continuation-token', 'bucket-region'] },
  HeadBucket: { level: 'bucket', permission: 'read', params: [] },
  GetBucketLocation: { level: 'bucket', permission: 'read', params: [] },
  ListObjects: { level: 'bucket', permission: 'read', params: LIST_V1 },
  ListObjectsV2: { level: 'bucket', permission: 'read', params: LIST_V2 },
  ListObjectVersions: { level: 'bucket', permission: 'read', params: ['prefix', 'delimiter', 'key-marker', 'version-id-marker', 'max-keys', 'encoding-type'] },
  ListMultipartUploads: { level: 'bucket', permission: 'read', params: ['prefix', 'delimiter', 'key-marker', 'upload-id-marker', 'max-uploads', 'encoding-type'] },
  CreateBucket: { level: 'bucket', permission: 'admin', params: [] },
  DeleteBucket: { level: 'bucket', permission: 'admin', params: [] },
  GetBucketConfiguration: { level: 'bucket', permission: 'admin', params: ['id'] },
  PutBucketConfiguration: { level: 'bucket', permission: 'admin', params: ['id'] },
  DeleteBucketConfiguration: { level: 'bucket', permission: 'admin', params: ['id'] },
  DeleteObjects: { level: 'bucket', permission: 'delete', params: [] },
  PostObject: { level: 'bucket', permission: 'write', params: [] },
  GetObject: { level: 'object', permission: 'read', params: GET_OBJECT },
  HeadObject: { level: 'object', permission: 'read', params: ['versionId', 'partNumber'] },
  GetObjectAttributes: { level: 'object', permission: 'read', params: ['versionId'] },
  GetObjectTagging: { level: 'object', permission: 'read', params: ['versionId'] },
  GetObjectAcl: { level: 'object', permission: 'read', params: ['versionId'] },
  ListParts: { level: 'object', permission: 'read', params: ['uploadId', 'max-parts', 'part-number-marker'] },
  PutObject: { level: 'object', permission: 'write', params: [] },
  CopyObject: { level: 'object', permission: 'write', params: [] },
  PutObjectTagging: { level: 'object', permission: 'write', params: ['versionId'] },
  PutObjectAcl: { level: 'object', permission: 'write', params: ['versionId'] },
  CreateMultipartUpload: { level: 'object', permission: 'write', params: [] },
  UploadPart: { level: 'object', permission: 'write', params: ['partNumber', 'uploadId'] },
  UploadPartCopy: { level: 'object', permission: 'write', params: ['partNumber', 'uploadId'] },
  CompleteMultipartUpload: { level: 'object', permission: 'write', params: ['uploadId'] },
  // Aborting an upload the key itself started is part of writing; it never removes a stored object.
  AbortMultipartUpload: { level: 'object', permission: 'write', params: ['uploadId'] },
  DeleteObjectTagging: { level: 'object', permission: 'write', params: ['versionId'] },
  DeleteObject: { level: 'object', permission: 'delete', params: ['versionId'] },
} as const satisfies Record<string, OperationSpec>;

export type OperationName = keyof typeof OPERATIONS;

export interface CopySource {
  bucket: string;
  key: string;
  versionId: string | null;
}

export interface S3Operation {
  name: OperationName;
  permission: Permission;
  bucket: string | null;
  key: string | null;
  /** For CopyObject / UploadPartCopy: the source, which needs `read` separately. */
  copySource: CopySource | null;
  /** Query parameters to send upstream, including the sub-resource marker (e.g. `uploads`, `tagging`). */
  upstreamQuery: Array<[string, string]>;
}

type Headers = Record<string, string | string[] | undefined>;

/** Classifies a request. Throws S3Error for requests that name no known operation. */
export function classify(method: string, address: S3Address, headers: Headers): S3Operation {
  const present = new Set(address.query.map(([name]) => name));
  const has = (name: string) => present.has(name);
  const name = chooseOperation(method, address, has, headers);
  if (name === null) {
    throw new S3Error('AccessDenied', describeUnsupported(method, address));
  }

  const spec: OperationSpec = OPERATIONS[name];
  const marker = subresourceMarker(name, address);
  const allowed = new Set<string>(spec.params);
  const upstreamQuery = address.query.filter(([param]) => allowed.has(param) || param === marker);
  const copySource = name === 'CopyObject' || name === 'UploadPartCopy' ? parseCopySource(headerValue(headers, 'x-amz-copy-source')) : null;
  return { name, permission: spec.permission, bucket: address.bucket, key: address.key, copySource, upstreamQuery };
}

function chooseOperation(method: string, address: S3Address, has: (name: string) => boolean, headers: Headers): OperationName | null {
  if (address.bucket === null) {
    return method === 'GET' ? 'ListBuckets' : null;
  }
  if (address.key === null) {
    const configSubresource = BUCKET_CONFIG_SUBRESOURCES.some((sub) => has(sub));
    switch (method) {
      case 'HEAD':
        return 'HeadBucket';
      case 'GET':
        if (has('location')) return 'GetBucketLocation';
        if (has('uploads')) return 'ListMultipartUploads';
        if (has('versions')) return 'ListObjectVersions';
        if (configSubresource) return 'GetBucketConfiguration';
        if (hasUnknownSubresource(has)) return null;
        return firstValue(address, 'list-type') === '2' ? 'ListObjectsV2' : 'ListObjects';
      case 'PUT':
        if (configSubresource) return 'PutBucketConfiguration';
        return hasUnknownSubresource(has) ? null : 'CreateBucket';
      case 'DELETE':
        if (configSubresource) return 'DeleteBucketConfiguration';
        return hasUnknownSubresource(has) ? null : 'DeleteBucket';
      case 'POST':
        if (has('delete')) return 'DeleteObjects';
        return isFormUpload(headers) ? 'PostObject' : null;
      default:
        return null;
    }
  }
  switch (method) {
    case 'HEAD':
      return 'HeadObject';
    case 'GET':
      if (has('uploadId')) return 'ListParts';
      if (has('tagging')) return 'GetObjectTagging';
      if (has('acl')) return 'GetObjectAcl';
      if (has('attributes')) return 'GetObjectAttributes';
      return hasUnknownSubresource(has) ? null : 'GetObject';
    case 'PUT':
      if (has('partNumber') && has('uploadId')) {
        return headerValue(headers, 'x-amz-copy-source') !== undefined ? 'UploadPartCopy' : 'UploadPart';
      }
      if (has('tagging')) return 'PutObjectTagging';
      if (has('acl')) return 'PutObjectAcl';
      if (hasUnknownSubresource(has) || has('uploadId') || has('partNumber')) return null;
      return headerValue(headers, 'x-amz-copy-source') !== undefined ? 'CopyObject' : 'PutObject';
    case 'POST':
      if (has('uploads')) return 'CreateMultipartUpload';
      if (has('uploadId')) return 'CompleteMultipartUpload';
      return null;
    case 'DELETE':
      if (has('uploadId')) return 'AbortMultipartUpload';
      if (has('tagging')) return 'DeleteObjectTagging';
      return hasUnknownSubresource(has) ? null : 'DeleteObject';
    default:
      return null;
  }
}

/**
 * Sub-resources S3 knows but this table does not route (restore, select, retention, legal-hold,
 * torrent, …, and bucket ones on objects). Their presence must not degrade into a plain operation.
 */
const OTHER_SUBRESOURCES = [
  'restore', 'select', 'select-type', 'retention', 'legal-hold', 'torrent', 'renameObject', 'session', 'uploads', 'delete',
  'location', 'versions', 'attributes', ...BUCKET_CONFIG_SUBRESOURCES,
];

function hasUnknownSubresource(has: (name: string) => boolean): boolean {
  return OTHER_SUBRESOURCES.some((sub) => has(sub));
}

function subresourceMarker(name: OperationName, address: S3Address): string | null {
  switch (name) {
    case 'GetBucketLocation':
      return 'location';
    case 'ListMultipartUploads':
    case 'CreateMultipartUpload':
      return 'uploads';
    case 'ListObjectVersions':
      return 'versions';
    case 'DeleteObjects':
      return 'delete';
    case 'GetObjectTagging':
    case 'PutObjectTagging':
    case 'DeleteObjectTagging':
      return 'tagging';
    case 'GetObjectAcl':
    case 'PutObjectAcl':
      return 'acl';
    case 'GetObjectAttributes':
      return 'attributes';
    case 'GetBucketConfiguration':
    case 'PutBucketConfiguration':
    case 'DeleteBucketConfiguration':
      return BUCKET_CONFIG_SUBRESOURCES.find((sub) => address.query.some(([param]) => param === sub)) ?? null;
    default:
      return null;
  }
}

function isFormUpload(headers: Headers): boolean {
  return (headerValue(headers, 'content-type') ?? '').toLowerCase().startsWith('multipart/form-data');
}

function firstValue(address: S3Address, name: string): string | undefined {
  return address.query.find(([param]) => param === name)?.[1];
}

export function headerValue(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `x-amz-copy-source: /bucket/key?versionId=…` (leading slash optional, URL-encoded). */
export function parseCopySource(value: string | undefined): CopySource {
  if (value === undefined || value === '') {
    throw new S3Error('InvalidArgument', 'x-amz-copy-source must name the source as "bucket/key".');
  }
  const [pathPart = '', queryPart] = value.split('?', 2);
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
  let versionId: string | null = null;
  if (queryPart !== undefined) {
    const params = new URLSearchParams(queryPart);
    versionId = params.get('versionId');
  }
  return { bucket: decoded.slice(0, slash), key: decoded.slice(slash + 1), versionId };
}

function describeUnsupported(method: string, address: S3Address): string {
  const subresources = address.query.map(([name]) => name).filter((name) => !name.toLowerCase().startsWith('x-amz-'));
  const target = address.bucket === null ? 'the service root' : address.key === null ? 'a bucket' : 'an object';
  const withQuery = subresources.length > 0 ? ` with ?${subresources.join('&')}` : '';
  return `keygate does not allow ${method} on ${target}${withQuery}; this operation is not supported through the gateway.`;
}
