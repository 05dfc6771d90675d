/**
 * ListBuckets pages, as S3 paginates since 2024 (`max-buckets`, `continuation-token`, `prefix`,
 * `bucket-region`): over the buckets a key can see, in name order. Without `max-buckets` every
 * bucket comes in one page, as S3 answers clients that do not paginate.
 */
import { S3Error } from '../errors.js';
import type { BucketListing, BucketListPage } from './responses.js';

/** S3's largest ListBuckets page. */
export const MAX_BUCKETS_PER_PAGE = 10_000;

/**
 * The page a ListBuckets query asks for. The continuation token is the previous page's last bucket
 * name (base64url): it reveals nothing the key could not list, and a forged one only moves the start.
 */
export function bucketListPage(
  visible: readonly BucketListing[],
  query: ReadonlyArray<readonly [string, string]>,
  gatewayRegion: string,
): BucketListPage & { buckets: BucketListing[] } {
  const request = readQuery(query);
  const matching = visible
    .filter((bucket) => request.prefix === null || bucket.name.startsWith(request.prefix))
    // Every bucket is in the gateway's region, as clients see it.
    .filter(() => request.region === null || request.region === gatewayRegion)
    .filter((bucket) => request.startAfter === null || bucket.name > request.startAfter)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const buckets = matching.slice(0, request.maxBuckets);
  const truncated = matching.length > buckets.length;
  return {
    buckets,
    continuationToken: truncated ? Buffer.from(buckets[buckets.length - 1]!.name).toString('base64url') : null,
    prefix: request.prefix,
  };
}

interface ListRequest {
  prefix: string | null;
  maxBuckets: number;
  startAfter: string | null;
  region: string | null;
}

function readQuery(query: ReadonlyArray<readonly [string, string]>): ListRequest {
  const value = (name: string) => {
    const found = query.find(([n]) => n === name)?.[1];
    return found === undefined || found === '' ? null : found;
  };
  const maxBuckets = value('max-buckets');
  if (maxBuckets !== null && (!/^\d{1,5}$/.test(maxBuckets) || Number(maxBuckets) < 1 || Number(maxBuckets) > MAX_BUCKETS_PER_PAGE)) {
    throw new S3Error('InvalidArgument', `max-buckets must be a whole number from 1 to ${MAX_BUCKETS_PER_PAGE}.`, {
      details: { ArgumentName: 'max-buckets', ArgumentValue: maxBuckets.slice(0, 64) },
    });
  }
  const token = value('continuation-token');
  const startAfter = token === null ? null : Buffer.from(token, 'base64url').toString('utf8');
  // Any bucket name an upstream lists can be a page's last, so any name is a valid start; a token
  // is only checked to be one the gateway could have made (it decodes and encodes back the same).
  // A forged one merely moves where the visible list begins.
  if (token !== null && (!/^[A-Za-z0-9_-]{1,400}$/.test(token) || Buffer.from(startAfter!, 'utf8').toString('base64url') !== token)) {
    throw new S3Error('InvalidArgument', 'The continuation-token is not one this gateway issued; start the listing again without it.', {
      details: { ArgumentName: 'continuation-token' },
    });
  }
  return {
    prefix: value('prefix'),
    maxBuckets: maxBuckets === null ? Number.MAX_SAFE_INTEGER : Number(maxBuckets),
    startAfter,
    region: value('bucket-region'),
  };
}
