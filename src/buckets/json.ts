/** The JSON shape of a registered bucket, shared by `keygate buckets list --json` and the admin API. */
import type { BucketRecord } from '../store/buckets.js';
import type { CorsRule } from './cors.js';

export interface BucketJson {
  name: string;
  datacenter: string | null;
  endpoint: string | null;
  region: string | null;
  upstreamBucket: string;
  cors: CorsRule[] | null;
  createdAt: string;
}

export function bucketToJson(bucket: BucketRecord): BucketJson {
  return {
    name: bucket.name,
    datacenter: bucket.datacenter,
    endpoint: bucket.endpoint,
    region: bucket.region,
    upstreamBucket: bucket.upstreamBucket,
    cors: bucket.cors,
    createdAt: bucket.createdAt.toISOString(),
  };
}
