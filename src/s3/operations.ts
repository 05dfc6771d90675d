/**
 * The operations table: the single, complete definition of every S3 operation the gateway offers.
 * An entry says what the operation is allowed to do and nothing else is done:
 *
 * - `permission`: the key's flag it needs (header-borne powers add theirs, request-headers.ts);
 * - `subresource` and `query`: the query parameters sent upstream (all others are dropped);
 * - `headers`: the request header groups sent upstream (all others are dropped);
 * - `body`: none, an object stream, a small document forwarded as is, or an XML document the
 *   gateway reads itself — each with its limit;
 * - `needs`: the upstream capability without which the bucket answers NotImplemented;
 * - `copySource`: the x-amz-copy-source header names a second object, authorized as a read;
 * - `handler`: how the gateway answers when it does not simply forward;
 * - `ownerFields`: the response names the upstream account as owner; rewritten to the key;
 * - `uploadIds`: upload ids are the gateway's own, bound to bucket and key (upload-ids.ts);
 * - `bucketFields`: the answer names the bucket or the object's URL: rewritten to the client's;
 * - `smallAnswer`: the answer is read whole, as it may be an error inside a 200.
 *
 * Requests that match no entry are refused (classify.ts): deny by default. Adding an operation is
 * one entry here plus, at most, one handler (handlers.ts).
 */
import type { Permission } from '../keys/model.js';
import type { Capability } from '../upstream/target.js';
import { HEADERS, type HeaderGroup } from './request-headers.js';
import type { XmlBodyShape } from './xml-body.js';
import { COMPLETE_MULTIPART_SHAPE } from './complete-multipart.js';
import { DELETE_REQUEST_SHAPE } from './delete-objects.js';
import { MAX_XML_BODY_BYTES } from './xml-body.js';

export type Level = 'service' | 'bucket' | 'object';

/**
 * - `none`: no body; a client may still send a small one (it is verified and discarded).
 * - `object`: object bytes, streamed; capped by the upstream's single-request limit.
 * - `document`: a small body (configuration XML) forwarded unchanged, up to `maxBytes`.
 * - `xml`: a document the gateway reads (and, with `forward`, sends on byte for byte).
 * - `form`: a POST Object form, read by the gateway (post-object.ts).
 */
export type BodySpec =
  | { kind: 'none' }
  | { kind: 'object' }
  | { kind: 'document'; maxBytes: number }
  | { kind: 'xml'; shape: XmlBodyShape; maxBytes: number; forward: boolean }
  | { kind: 'form' };

/** How the gateway answers an operation itself instead of forwarding it as is. */
export type Handler =
  | 'forward'
  | 'listBuckets'
  | 'bucketLocation'
  | 'createBucket'
  | 'deleteBucket'
  | 'deleteObjects'
  | 'completeMultipartUpload'
  | 'copy'
  | 'postObject'
  | 'putObjectAcl';

export interface OperationSpec {
  readonly level: Level;
  readonly permission: Permission;
  /** The query parameter naming the sub-resource (`uploads`, `tagging`…), sent upstream. */
  readonly subresource?: string;
  /** Further query parameters sent upstream. */
  readonly query: readonly string[];
  /** Request header groups sent upstream. */
  readonly headers: readonly HeaderGroup[];
  readonly body: BodySpec;
  readonly needs?: Capability;
  /** Set for CopyObject / UploadPartCopy: the source is authorized as a read and rewritten for the upstream. */
  readonly copySource?: true;
  readonly handler: Handler;
  /** HTTP method sent upstream when it differs from the client's (POST Object -> PUT). */
  readonly upstreamMethod?: 'PUT';
  /** The response carries Owner / Initiator / Grantee identities of the upstream account. */
  readonly ownerFields?: true;
  /** Upload ids in the request and answer are the gateway's, bound to bucket and key (upload-ids.ts). */
  readonly uploadIds?: true;
  /** The answer names the bucket (`<Bucket>`, `<Name>`, `<Location>`): the client's bucket name and the public endpoint go back, never the upstream's. */
  readonly bucketFields?: true;
  /** The answer is a small document read whole: S3 may report a failure as an `<Error>` inside a 200. */
  readonly smallAnswer?: true;
  /** The answer carries x-amz-bucket-region: the gateway's region (the one clients sign with), never the upstream's. */
  readonly reportsRegion?: true;
}

/** Largest body of an operation that takes none, read and discarded. */
export const MAX_UNUSED_BODY_BYTES = 64 * 1024;
/** Configuration documents forwarded as they are (policies, lifecycle rules, tags, ACLs…). */
const DOCUMENT: BodySpec = { kind: 'document', maxBytes: MAX_XML_BODY_BYTES };
const NONE: BodySpec = { kind: 'none' };

const LIST_V1 = ['prefix', 'delimiter', 'marker', 'max-keys', 'encoding-type'];
const LIST_V2 = ['list-type', 'prefix', 'delimiter', 'continuation-token', 'max-keys', 'fetch-owner', 'start-after', 'encoding-type'];
const RESPONSE_OVERRIDES = [
  'response-cache-control',
  'response-content-disposition',
  'response-content-encoding',
  'response-content-language',
  'response-content-type',
  'response-expires',
];

const OBJECT_READ = [HEADERS.readConditions, HEADERS.range, HEADERS.checksumMode, HEADERS.customerKey];
/** Headers describing a new object (PutObject, POST Object, CopyObject, CreateMultipartUpload). */
const NEW_OBJECT = [HEADERS.objectDescription, HEADERS.objectTags, HEADERS.serverSideEncryption, HEADERS.customerKey, HEADERS.objectLock, HEADERS.acl];
const PUT_OBJECT_HEADERS = [...NEW_OBJECT, HEADERS.bodyChecksums, HEADERS.writeConditions];

/**
 * Bucket configuration sub-resources, all `admin` (reading a bucket policy or its CORS rules is
 * administration too). `object-lock` has operations of its own.
 */
export const BUCKET_CONFIG_SUBRESOURCES = [
  'accelerate',
  'acl',
  'analytics',
  'cors',
  'encryption',
  'intelligent-tiering',
  'inventory',
  'lifecycle',
  'logging',
  'metadataTable',
  'metrics',
  'notification',
  'ownershipControls',
  'policy',
  'policyStatus',
  'publicAccessBlock',
  'replication',
  'requestPayment',
  'tagging',
  'versioning',
  'website',
] as const;

export const OPERATIONS = {
  ListBuckets: {
    level: 'service',
    permission: 'read',
    query: ['prefix', 'max-buckets', 'continuation-token', 'bucket-region'],
    headers: [],
    body: NONE,
    handler: 'listBuckets',
  },

  HeadBucket: { level: 'bucket', permission: 'read', query: [], headers: [], body: NONE, handler: 'forward', reportsRegion: true },
  GetBucketLocation: { level: 'bucket', permission: 'read', subresource: 'location', query: [], headers: [], body: NONE, handler: 'bucketLocation' },
  ListObjects: { level: 'bucket', permission: 'read', query: LIST_V1, headers: [], body: NONE, handler: 'forward', ownerFields: true, bucketFields: true },
  ListObjectsV2: { level: 'bucket', permission: 'read', query: LIST_V2, headers: [], body: NONE, handler: 'forward', ownerFields: true, bucketFields: true },
  ListObjectVersions: {
    level: 'bucket',
    permission: 'read',
    subresource: 'versions',
    query: ['prefix', 'delimiter', 'key-marker', 'version-id-marker', 'max-keys', 'encoding-type'],
    headers: [],
    body: NONE,
    needs: 'versioning',
    handler: 'forward',
    ownerFields: true,
    bucketFields: true,
  },
  ListMultipartUploads: {
    level: 'bucket',
    permission: 'read',
    subresource: 'uploads',
    query: ['prefix', 'delimiter', 'key-marker', 'upload-id-marker', 'max-uploads', 'encoding-type'],
    headers: [],
    body: NONE,
    handler: 'forward',
    ownerFields: true,
    uploadIds: true,
    bucketFields: true,
  },
  /**
   * Forwarded to a generic S3 upstream; on RunPod (with RUNPOD_API_KEY) the gateway creates a
   * network volume for a name no route knows, or deletes an empty bucket's volume (handlers.ts,
   * src/buckets/lifecycle.ts).
   */
  CreateBucket: {
    level: 'bucket',
    permission: 'admin',
    query: [],
    headers: [HEADERS.bucketCreation, HEADERS.acl],
    body: DOCUMENT,
    needs: 'bucketLifecycle',
    handler: 'createBucket',
  },
  DeleteBucket: { level: 'bucket', permission: 'admin', query: [], headers: [], body: NONE, needs: 'bucketLifecycle', handler: 'deleteBucket' },
  GetBucketConfiguration: {
    level: 'bucket',
    permission: 'admin',
    query: ['id'],
    headers: [],
    body: NONE,
    needs: 'bucketConfiguration',
    handler: 'forward',
    ownerFields: true,
  },
  PutBucketConfiguration: {
    level: 'bucket',
    permission: 'admin',
    query: ['id'],
    headers: [HEADERS.bodyChecksums, HEADERS.acl],
    body: DOCUMENT,
    needs: 'bucketConfiguration',
    handler: 'forward',
  },
  DeleteBucketConfiguration: { level: 'bucket', permission: 'admin', query: ['id'], headers: [], body: NONE, needs: 'bucketConfiguration', handler: 'forward' },
  GetObjectLockConfiguration: {
    level: 'bucket',
    permission: 'read',
    subresource: 'object-lock',
    query: [],
    headers: [],
    body: NONE,
    needs: 'objectLock',
    handler: 'forward',
  },
  PutObjectLockConfiguration: {
    level: 'bucket',
    permission: 'admin',
    subresource: 'object-lock',
    query: [],
    headers: [HEADERS.bodyChecksums],
    body: DOCUMENT,
    needs: 'objectLock',
    handler: 'forward',
  },
  DeleteObjects: {
    level: 'bucket',
    permission: 'delete',
    subresource: 'delete',
    query: [],
    // Checksums are verified by the gateway against the body; the fan-out sends single deletes.
    headers: [HEADERS.governanceBypass],
    body: { kind: 'xml', shape: DELETE_REQUEST_SHAPE, maxBytes: MAX_XML_BODY_BYTES, forward: false },
    handler: 'deleteObjects',
  },
  /** A browser form upload: a PutObject whose headers come from form fields, filtered like any request's. */
  PostObject: {
    level: 'object',
    permission: 'write',
    query: [],
    headers: PUT_OBJECT_HEADERS,
    body: { kind: 'form' },
    handler: 'postObject',
    upstreamMethod: 'PUT',
  },

  GetObject: {
    level: 'object',
    permission: 'read',
    query: ['versionId', 'partNumber', ...RESPONSE_OVERRIDES],
    headers: OBJECT_READ,
    body: NONE,
    handler: 'forward',
  },
  HeadObject: {
    level: 'object',
    permission: 'read',
    query: ['versionId', 'partNumber', ...RESPONSE_OVERRIDES],
    headers: OBJECT_READ,
    body: NONE,
    handler: 'forward',
  },
  GetObjectAttributes: {
    level: 'object',
    permission: 'read',
    subresource: 'attributes',
    query: ['versionId'],
    headers: [HEADERS.objectAttributes, HEADERS.customerKey],
    body: NONE,
    needs: 'objectAttributes',
    handler: 'forward',
  },
  GetObjectTagging: {
    level: 'object',
    permission: 'read',
    subresource: 'tagging',
    query: ['versionId'],
    headers: [],
    body: NONE,
    needs: 'tagging',
    handler: 'forward',
  },
  GetObjectAcl: {
    level: 'object',
    permission: 'read',
    subresource: 'acl',
    query: ['versionId'],
    headers: [],
    body: NONE,
    needs: 'acl',
    handler: 'forward',
    ownerFields: true,
  },
  GetObjectRetention: {
    level: 'object',
    permission: 'read',
    subresource: 'retention',
    query: ['versionId'],
    headers: [],
    body: NONE,
    needs: 'objectLock',
    handler: 'forward',
  },
  GetObjectLegalHold: {
    level: 'object',
    permission: 'read',
    subresource: 'legal-hold',
    query: ['versionId'],
    headers: [],
    body: NONE,
    needs: 'objectLock',
    handler: 'forward',
  },
  ListParts: {
    level: 'object',
    permission: 'read',
    query: ['uploadId', 'max-parts', 'part-number-marker'],
    headers: [HEADERS.customerKey],
    body: NONE,
    handler: 'forward',
    ownerFields: true,
    uploadIds: true,
    bucketFields: true,
  },
  PutObject: { level: 'object', permission: 'write', query: [], headers: PUT_OBJECT_HEADERS, body: { kind: 'object' }, handler: 'forward' },
  CopyObject: {
    level: 'object',
    permission: 'write',
    query: [],
    headers: [...NEW_OBJECT, HEADERS.copyConditions, HEADERS.copyDirectives, HEADERS.copySourceCustomerKey, HEADERS.writeConditions, HEADERS.checksumSetup],
    body: NONE,
    copySource: true,
    handler: 'copy',
    smallAnswer: true,
  },
  PutObjectTagging: {
    level: 'object',
    permission: 'write',
    subresource: 'tagging',
    query: ['versionId'],
    headers: [HEADERS.bodyChecksums],
    body: DOCUMENT,
    needs: 'tagging',
    handler: 'forward',
  },
  DeleteObjectTagging: {
    level: 'object',
    permission: 'write',
    subresource: 'tagging',
    query: ['versionId'],
    headers: [],
    body: NONE,
    needs: 'tagging',
    handler: 'forward',
  },
  /**
   * Changing who may read an object is administration (`admin`); setting it private, which it is
   * anyway, is allowed with `write` (s3cmd copies a source's ACL onto every copy). See handlers.ts.
   */
  PutObjectAcl: {
    level: 'object',
    permission: 'write',
    subresource: 'acl',
    query: ['versionId'],
    headers: [HEADERS.acl, HEADERS.bodyChecksums],
    body: { kind: 'document', maxBytes: 64 * 1024 },
    needs: 'acl',
    handler: 'putObjectAcl',
  },
  PutObjectRetention: {
    level: 'object',
    permission: 'admin',
    subresource: 'retention',
    query: ['versionId'],
    headers: [HEADERS.governanceBypass, HEADERS.bodyChecksums],
    body: DOCUMENT,
    needs: 'objectLock',
    handler: 'forward',
  },
  PutObjectLegalHold: {
    level: 'object',
    permission: 'admin',
    subresource: 'legal-hold',
    query: ['versionId'],
    headers: [HEADERS.bodyChecksums],
    body: DOCUMENT,
    needs: 'objectLock',
    handler: 'forward',
  },
  CreateMultipartUpload: {
    level: 'object',
    permission: 'write',
    subresource: 'uploads',
    query: [],
    headers: [...NEW_OBJECT, HEADERS.checksumSetup],
    body: NONE,
    handler: 'forward',
    uploadIds: true,
    bucketFields: true,
    smallAnswer: true,
  },
  UploadPart: {
    level: 'object',
    permission: 'write',
    query: ['partNumber', 'uploadId'],
    headers: [HEADERS.bodyChecksums, HEADERS.customerKey],
    body: { kind: 'object' },
    handler: 'forward',
    uploadIds: true,
  },
  UploadPartCopy: {
    level: 'object',
    permission: 'write',
    query: ['partNumber', 'uploadId'],
    headers: [HEADERS.copyConditions, HEADERS.copySourceRange, HEADERS.customerKey, HEADERS.copySourceCustomerKey],
    body: NONE,
    copySource: true,
    needs: 'uploadPartCopy',
    handler: 'copy',
    uploadIds: true,
    smallAnswer: true,
  },
  CompleteMultipartUpload: {
    level: 'object',
    permission: 'write',
    query: ['uploadId'],
    headers: [HEADERS.objectChecksums, HEADERS.writeConditions, HEADERS.customerKey],
    body: { kind: 'xml', shape: COMPLETE_MULTIPART_SHAPE, maxBytes: MAX_XML_BODY_BYTES, forward: true },
    handler: 'completeMultipartUpload',
    uploadIds: true,
    bucketFields: true,
    smallAnswer: true,
  },
  // Aborting an upload is part of writing; it never removes a stored object.
  AbortMultipartUpload: { level: 'object', permission: 'write', query: ['uploadId'], headers: [], body: NONE, handler: 'forward', uploadIds: true },
  DeleteObject: {
    level: 'object',
    permission: 'delete',
    query: ['versionId'],
    headers: [HEADERS.governanceBypass, HEADERS.deleteConditions],
    body: NONE,
    handler: 'forward',
  },
} as const satisfies Record<string, OperationSpec>;

export type OperationName = keyof typeof OPERATIONS;

/**
 * Sub-resources S3 knows that the gateway does not offer: a request naming one answers
 * NotImplemented (not AccessDenied, which a client reads as a permission problem).
 */
export const UNSUPPORTED_SUBRESOURCES = ['restore', 'select', 'select-type', 'torrent', 'renameObject', 'session'] as const;
