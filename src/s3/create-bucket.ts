/**
 * CreateBucket of a bucket the gateway creates itself (a RunPod network volume, see
 * src/buckets/lifecycle.ts): its CreateBucketConfiguration is read by the gateway (only the
 * LocationConstraint, which names the datacenter), and its settings headers must ask for nothing
 * RunPod lacks.
 */
import { S3Error } from '../errors.js';
import type { XmlBody, XmlBodyShape } from './xml-body.js';

/**
 * `<CreateBucketConfiguration><LocationConstraint>EU-RO-1</LocationConstraint></CreateBucketConfiguration>`.
 * S3's directory-bucket elements (`<Location>`, `<Bucket>`) and tags describe nothing RunPod has.
 */
export const CREATE_BUCKET_SHAPE: XmlBodyShape = {
  root: 'CreateBucketConfiguration',
  rootFields: ['LocationConstraint'],
  entry: 'Location',
  entryFields: ['Name', 'Type'],
  maxEntries: 0,
  tooManyEntries: () =>
    new S3Error('NotImplemented', 'Directory buckets (<Location> in CreateBucketConfiguration) are not offered; name a datacenter as the LocationConstraint.'),
};

/** The LocationConstraint of a read CreateBucketConfiguration; null when absent or empty. */
export function locationConstraintOf(document: XmlBody | null): string | null {
  const value = document?.rootFields.LocationConstraint?.trim();
  return value === undefined || value === '' ? null : value;
}

/**
 * The datacenter a LocationConstraint asks for: a known datacenter (any case) is that datacenter;
 * one of the regions clients sign with (`auto`, `us-east-1`: what aws-cli and the SDKs send when
 * configured as the gateway's docs say) asks for none, so the default datacenter applies; anything
 * else is passed on as asked (and refused with the list of datacenters).
 */
export function datacenterOfLocationConstraint(constraint: string | null, datacenters: readonly string[], signingRegions: readonly string[]): string | null {
  if (constraint === null) return null;
  const upper = constraint.toUpperCase();
  if (datacenters.includes(upper)) return upper;
  if (signingRegions.some((region) => region.toLowerCase() === constraint.toLowerCase())) return null;
  return constraint;
}

/**
 * Bucket settings headers a RunPod bucket cannot honour: object lock, and object ownership that
 * enables ACLs (BucketOwnerEnforced, S3's default, is what RunPod does anyway).
 */
export function assertRunpodBucketSettings(headers: Readonly<Record<string, string>>, bucket: string): void {
  const objectLock = headers['x-amz-bucket-object-lock-enabled'];
  if (objectLock !== undefined && objectLock.trim().toLowerCase() === 'true') {
    throw new S3Error('NotImplemented', `Bucket "${bucket}" would be on RunPod, which has no object lock; create it without x-amz-bucket-object-lock-enabled.`);
  }
  const ownership = headers['x-amz-object-ownership'];
  if (ownership !== undefined && ownership.trim() !== 'BucketOwnerEnforced') {
    throw new S3Error(
      'NotImplemented',
      `Bucket "${bucket}" would be on RunPod, which has no ACLs; create it without x-amz-object-ownership (or with BucketOwnerEnforced).`,
    );
  }
}
