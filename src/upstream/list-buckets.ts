/** Reads an upstream's ListBuckets answer (`<ListAllMyBucketsResult>`). */
import { parseUpstreamXml } from '../s3/xml.js';

export function listBucketsFromXml(xml: string): Array<{ name: string; createdAt: Date | null }> {
  const document = parseUpstreamXml(xml, ['Bucket']) as {
    ListAllMyBucketsResult?: { Buckets?: { Bucket?: Array<{ Name?: unknown; CreationDate?: unknown }> } | string };
  };
  const buckets = document.ListAllMyBucketsResult?.Buckets;
  if (typeof buckets !== 'object' || buckets === null) return [];
  const listed: Array<{ name: string; createdAt: Date | null }> = [];
  for (const bucket of buckets.Bucket ?? []) {
    if (typeof bucket.Name !== 'string' || bucket.Name === '') continue;
    const created = typeof bucket.CreationDate === 'string' ? new Date(bucket.CreationDate.trim()) : null;
    listed.push({ name: bucket.Name, createdAt: created && !Number.isNaN(created.getTime()) ? created : null });
  }
  return listed;
}
