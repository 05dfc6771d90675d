/** The JSON shape of a registered bucket, shared by `keygate buckets list --json` and the admin API. */
import type { BucketRecord } from '../store/buckets.js';

/** The record with its date as an ISO string. */
export type BucketJson = Omit<BucketRecord, 'createdAt'> & { createdAt: string };

export function bucketToJson(bucket: BucketRecord): BucketJson {
  return { ...bucket, createdAt: bucket.createdAt.toISOString() };
}
