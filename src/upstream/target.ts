/**
 * Where one bucket's requests go: the upstream S3 endpoint, the bucket name there, the
 * credentials the gateway re-signs with, and what that upstream can do.
 */
import type { UpstreamCredentials } from '../config.js';

export interface UpstreamCapabilities {
  deleteObjects: boolean;
  uploadPartCopy: boolean;
  /** CreateBucket / DeleteBucket. */
  bucketLifecycle: boolean;
  tagging: boolean;
  /** Largest body of one PutObject or UploadPart, in bytes; null = no limit known. */
  maxPutObjectBytes: number | null;
  /**
   * Whether the upstream decodes `Content-Encoding: aws-chunked` bodies with a trailing
   * x-amz-checksum-*. When false, a client's trailing checksum is verified by the gateway but not
   * forwarded (the upstream then stores no checksum for the object or part).
   */
  trailingChecksums: boolean;
}

export interface UpstreamTarget {
  kind: 'runpod' | 's3';
  /** Base URL; requests go path-style to `${endpoint}/${bucket}/${key}`. */
  endpoint: URL;
  region: string;
  /** Bucket name at the upstream (a RunPod network volume id for RunPod). */
  bucket: string;
  credentials: UpstreamCredentials;
  /** RunPod datacenter id (upper case), null for generic S3. */
  datacenter: string | null;
  capabilities: UpstreamCapabilities;
}

/**
 * RunPod documents PutObject as "<500 MB" and parts as at most 500 MB. We read MB as decimal
 * (500,000,000 bytes), the stricter of the two readings: an upload the gateway refuses with a clear
 * EntityTooLarge is better than one RunPod fails after the bytes were sent.
 */
export const RUNPOD_MAX_PUT_BYTES = 500_000_000;

/** S3's own single-request limit (5 GiB) for PutObject and UploadPart. */
export const S3_MAX_PUT_BYTES = 5 * 1024 ** 3;

/** RunPod's S3 API: no DeleteObjects, UploadPartCopy, bucket creation/deletion, tagging, ACLs, policies or versioning. */
export const RUNPOD_CAPABILITIES: Readonly<UpstreamCapabilities> = Object.freeze({
  deleteObjects: false,
  uploadPartCopy: false,
  bucketLifecycle: false,
  tagging: false,
  maxPutObjectBytes: RUNPOD_MAX_PUT_BYTES,
  trailingChecksums: true,
});

export const GENERIC_S3_CAPABILITIES: Readonly<UpstreamCapabilities> = Object.freeze({
  deleteObjects: true,
  uploadPartCopy: true,
  bucketLifecycle: true,
  tagging: true,
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
