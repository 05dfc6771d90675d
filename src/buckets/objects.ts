/**
 * The operator's view of a bucket's objects (the dashboard's objects browser): listing by prefix
 * and delimiter, one page at a time, and deleting one object. These requests are the gateway's
 * own, signed with the upstream credentials of the bucket's route, so they need no access key;
 * they go through the same resolver, forwarder and error mapping as clients' requests.
 */
import { S3Error } from '../errors.js';
import { assertListingWithoutDotSegments, assertNoDotSegments } from '../s3/dot-segments.js';
import { parseUpstreamXml } from '../s3/xml.js';
import { readUpstreamBody, type UpstreamForwarder, type UpstreamResponse } from '../upstream/forward.js';
import { readErrorDocument, upstreamAnswerFailure } from '../upstream/failures.js';
import type { UpstreamResolver } from '../upstream/resolver.js';
import type { UpstreamTarget } from '../upstream/target.js';

export interface ListedObject {
  key: string;
  size: number | null;
  lastModified: Date | null;
}

export interface ObjectPage {
  bucket: string;
  prefix: string;
  delimiter: string;
  objects: ListedObject[];
  /** "Folders": the keys' next level under the prefix when a delimiter is set. */
  commonPrefixes: string[];
  /** Pass to list() for the next page; null on the last page. */
  nextPageToken: string | null;
}

export interface ListObjectsOptions {
  prefix?: string;
  delimiter?: string;
  pageToken?: string | null;
  /** 1..1000; default 100. */
  pageSize?: number;
}

/** The largest listing answer read from an upstream (1000 keys of 1 KiB each, with room to spare). */
const MAX_LISTING_XML_BYTES = 8 * 1024 * 1024;
const MAX_ERROR_XML_BYTES = 64 * 1024;
export const DEFAULT_PAGE_SIZE = 100;

export class BucketObjects {
  constructor(
    private readonly resolver: Pick<UpstreamResolver, 'resolve'>,
    private readonly forwarder: Pick<UpstreamForwarder, 'forward'>,
  ) {}

  /** One page of ListObjectsV2. Throws S3Error (NoSuchBucket, BadGateway, …) with a message to show. */
  async list(bucket: string, options: ListObjectsOptions = {}): Promise<ObjectPage> {
    const prefix = options.prefix ?? '';
    const delimiter = options.delimiter ?? '';
    const pageSize = Math.min(1000, Math.max(1, Math.floor(options.pageSize ?? DEFAULT_PAGE_SIZE)));
    const query: Array<[string, string]> = [
      ['list-type', '2'],
      ['max-keys', String(pageSize)],
    ];
    if (prefix !== '') query.push(['prefix', prefix]);
    if (delimiter !== '') query.push(['delimiter', delimiter]);
    if (options.pageToken) query.push(['continuation-token', options.pageToken]);

    const target = await this.targetOf(bucket);
    if (target.capabilities.keysArePaths) assertListingWithoutDotSegments(query, 'runpod-upstream');
    const response = await this.send(target, 'GET', null, query);
    const xml = await readUpstreamBody(response, MAX_LISTING_XML_BYTES);
    return { bucket, prefix, delimiter, ...readListing(xml) };
  }

  /** DeleteObject (S3 answers success for a key that does not exist). */
  async delete(bucket: string, key: string): Promise<void> {
    if (key === '') throw new S3Error('InvalidArgument', 'Name the object to delete.');
    const target = await this.targetOf(bucket);
    if (target.capabilities.keysArePaths) assertNoDotSegments(key, 'runpod-upstream');
    const response = await this.send(target, 'DELETE', key, []);
    response.body.resume();
  }

  private async targetOf(bucket: string): Promise<UpstreamTarget> {
    const target = await this.resolver.resolve(bucket);
    if (target === null) {
      throw new S3Error('NoSuchBucket', `The bucket "${bucket}" is not known to this gateway; register it first.`, { details: { BucketName: bucket } });
    }
    return target;
  }

  /** Sends the request; an answer that is not a success becomes the S3Error a client would get. */
  private async send(target: UpstreamTarget, method: string, objectKey: string | null, query: Array<[string, string]>): Promise<UpstreamResponse> {
    const response = await this.forwarder.forward({ target, method, objectKey, query, headers: {}, body: null, retry: true });
    if (response.status >= 200 && response.status < 300) return response;
    const body = await readUpstreamBody(response, MAX_ERROR_XML_BYTES).catch(() => '');
    const retryAfter = response.headers['retry-after'];
    throw upstreamAnswerFailure(response.status, readErrorDocument(body), target, typeof retryAfter === 'string' ? retryAfter : undefined, method);
  }
}

type ListingDocument = {
  ListBucketResult?: {
    Contents?: Array<{ Key?: unknown; Size?: unknown; LastModified?: unknown }>;
    CommonPrefixes?: Array<{ Prefix?: unknown }>;
    IsTruncated?: unknown;
    NextContinuationToken?: unknown;
  };
};

function readListing(xml: string): Pick<ObjectPage, 'objects' | 'commonPrefixes' | 'nextPageToken'> {
  const result = (parseUpstreamXml(xml, ['Contents', 'CommonPrefixes']) as ListingDocument).ListBucketResult;
  if (result === undefined) throw new S3Error('BadGateway', 'The storage service answered the listing with something other than a ListBucketResult.');
  const objects: ListedObject[] = [];
  for (const entry of result.Contents ?? []) {
    if (typeof entry.Key !== 'string') continue;
    const size = typeof entry.Size === 'string' && /^\d+$/.test(entry.Size.trim()) ? Number(entry.Size.trim()) : null;
    const modified = typeof entry.LastModified === 'string' ? new Date(entry.LastModified.trim()) : null;
    objects.push({ key: entry.Key, size, lastModified: modified && !Number.isNaN(modified.getTime()) ? modified : null });
  }
  const commonPrefixes = (result.CommonPrefixes ?? []).flatMap((entry) => (typeof entry.Prefix === 'string' ? [entry.Prefix] : []));
  const truncated = typeof result.IsTruncated === 'string' && result.IsTruncated.trim() === 'true';
  const token = typeof result.NextContinuationToken === 'string' ? result.NextContinuationToken : null;
  return { objects, commonPrefixes, nextPageToken: truncated && token ? token : null };
}
