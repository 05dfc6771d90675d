/**
 * Where one bucket's requests go: the upstream S3 endpoint, the bucket name there, the
 * credentials the gateway re-signs with, and what that upstream can do.
 */
import type { UpstreamCredentials } from '../config.js';

/**
 * What an upstream can do. The operations table names the capability each operation (and each
 * header group) needs; a bucket whose upstream lacks it answers NotImplemented. RunPod's
 * differences are all expressed here.
 */
export interface UpstreamCapabilities {
  /** CreateBucket / DeleteBucket. */
  bucketLifecycle: boolean;
  /** Bucket configuration sub-resources (policy, lifecycle, versioning, cors, …). */
  bucketConfiguration: boolean;
  /** Object versions (ListObjectVersions). */
  versioning: boolean;
  /** Object tags (the tagging sub-resource and the x-amz-tagging header). */
  tagging: boolean;
  /** ACLs (the acl sub-resource and ACL headers other than "private"). */
  acl: boolean;
  /** GetObjectAttributes. */
  objectAttributes: boolean;
  /** Object lock: retention, legal hold, lock configuration and their headers. */
  objectLock: boolean;
  uploadPartCopy: boolean;
  /**
   * Object keys name files on the upstream (RunPod's network volumes): a "." or ".." path segment
   * would resolve to another path, so such keys (and listing prefixes and start markers) are refused.
   */
  keysArePaths: boolean;
  /** Largest body of one PutObject or UploadPart, in bytes; null = no limit known. */
  maxPutObjectBytes: number | null;
  /**
   * Whether the upstream decodes `Content-Encoding: aws-chunked` bodies with a trailing
   * x-amz-checksum-*. When false, a client's trailing checksum is verified by the gateway but not
   * forwarded (the upstream then stores no checksum for the object or part).
   */
  trailingChecksums: boolean;
}

/** Capabilities an operation or a header group can require (the yes/no ones). */
export type Capability = Exclude<
  { [K in keyof UpstreamCapabilities]: UpstreamCapabilities[K] extends boolean ? K : never }[keyof UpstreamCapabilities],
  'keysArePaths' | 'trailingChecksums'
>;

/** How the capability is named in a NotImplemented message. */
export const CAPABILITY_NAMES: Readonly<Record<Capability, string>> = {
  bucketLifecycle: 'creating and deleting buckets',
  bucketConfiguration: 'bucket configuration',
  versioning: 'object versions',
  tagging: 'object tags',
  acl: 'ACLs',
  objectAttributes: 'GetObjectAttributes',
  objectLock: 'object lock (retention, legal hold)',
  uploadPartCopy: 'UploadPartCopy',
};

/** Shared between requests (the resolver makes the endpoint, credentials and capabilities once): never modified. */
export interface UpstreamTarget {
  readonly kind: 'runpod' | 's3';
  /** Base URL; requests go path-style to `${endpoint}/${bucket}/${key}`. */
  readonly endpoint: URL;
  readonly region: string;
  /** Bucket name at the upstream (a RunPod network volume id for RunPod). */
  readonly bucket: string;
  readonly credentials: Readonly<UpstreamCredentials>;
  /** RunPod datacenter id (upper case), null for generic S3. */
  readonly datacenter: string | null;
  readonly capabilities: Readonly<UpstreamCapabilities>;
}

/**
 * RunPod documents PutObject as "<500 MB" and parts as at most 500 MB. We read MB as decimal
 * (500,000,000 bytes), the stricter of the two readings: an upload the gateway refuses with a clear
 * EntityTooLarge is better than one RunPod fails after the bytes were sent.
 */
export const RUNPOD_MAX_PUT_BYTES = 500_000_000;

/** S3's own single-request limit (5 GiB) for PutObject and UploadPart. */
export const S3_MAX_PUT_BYTES = 5 * 1024 ** 3;

/** RunPod's S3 API: no bucket creation/deletion, configuration, versions, tagging, ACLs, object lock or UploadPartCopy. */
export const RUNPOD_CAPABILITIES: Readonly<UpstreamCapabilities> = Object.freeze({
  bucketLifecycle: false,
  bucketConfiguration: false,
  versioning: false,
  tagging: false,
  acl: false,
  objectAttributes: false,
  objectLock: false,
  uploadPartCopy: false,
  keysArePaths: true,
  maxPutObjectBytes: RUNPOD_MAX_PUT_BYTES,
  trailingChecksums: true,
});

export const GENERIC_S3_CAPABILITIES: Readonly<UpstreamCapabilities> = Object.freeze({
  bucketLifecycle: true,
  bucketConfiguration: true,
  versioning: true,
  tagging: true,
  acl: true,
  objectAttributes: true,
  objectLock: true,
  uploadPartCopy: true,
  keysArePaths: false,
  maxPutObjectBytes: S3_MAX_PUT_BYTES,
  trailingChecksums: true,
});

/** Human-readable upstream name for error messages and logs: never includes credentials. */
export function describeUpstream(target: Pick<UpstreamTarget, 'kind' | 'datacenter' | 'endpoint'>): string {
  const where = endpointForMessages(target.endpoint);
  return target.kind === 'runpod' ? `RunPod ${target.datacenter ?? 'S3'} (${where})` : where;
}

/** Origin plus path of an endpoint, dropping any user:password a URL might carry. */
export function endpointForMessages(endpoint: URL): string {
  const path = endpoint.pathname === '/' ? '' : endpoint.pathname.replace(/\/+$/, '');
  return `${endpoint.origin}${path}`;
}
