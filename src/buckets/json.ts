/** The JSON shapes of a registered bucket and of its CORS rules, shared by the CLI's --json output and the admin API. */
import type { BucketRecord } from '../store/store.js';
import type { CorsRule } from './cors.js';

/** The record with its date as an ISO string. */
export type BucketJson = Omit<BucketRecord, 'createdAt'> & { createdAt: string };

export function bucketToJson(bucket: BucketRecord): BucketJson {
  return { ...bucket, createdAt: bucket.createdAt.toISOString() };
}

/** A bucket's CORS rules: `rules` is empty when none are set (cross-origin browser requests are then refused). */
export interface BucketCorsJson {
  bucket: string;
  rules: CorsRule[];
}

export function corsToJson(bucket: string, rules: CorsRule[] | null): BucketCorsJson {
  return { bucket, rules: rules ?? [] };
}
