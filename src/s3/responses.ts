/**
 * Responses the gateway synthesizes itself instead of asking the upstream, because the upstream
 * (RunPod) lacks the operation or because the answer depends on the key's scope.
 */
import { escapeXml } from '../errors.js';
import { XML_DECLARATION, S3_XMLNS, element } from './xml.js';

export interface BucketListing {
  name: string;
  createdAt: Date | null;
}

/** ListBuckets result (only the buckets the key may see are passed in). */
export interface BucketListPage {
  /** Where the next page starts (the answer is truncated), else null. */
  continuationToken: string | null;
  /** The prefix the client asked for, echoed (null when none). */
  prefix: string | null;
}

export function listBucketsXml(
  buckets: BucketListing[],
  owner: { id: string; displayName: string },
  region: string,
  page: BucketListPage = { continuationToken: null, prefix: null },
): string {
  const entries = buckets
    .map(
      (bucket) =>
        `<Bucket>${element('Name', bucket.name)}${element('CreationDate', (bucket.createdAt ?? EPOCH).toISOString())}` +
        `${element('BucketRegion', region)}</Bucket>`,
    )
    .join('');
  return (
    `${XML_DECLARATION}<ListAllMyBucketsResult xmlns="${S3_XMLNS}">` +
    `<Owner>${element('ID', owner.id)}${element('DisplayName', owner.displayName)}</Owner>` +
    `<Buckets>${entries}</Buckets>` +
    (page.continuationToken === null ? '' : element('ContinuationToken', page.continuationToken)) +
    (page.prefix === null ? '' : element('Prefix', page.prefix)) +
    `</ListAllMyBucketsResult>`
  );
}

const EPOCH = new Date(0);

/** POST Object with success_action_status=201: where the object went (no namespace, as S3 answers). */
export function postResponseXml(stored: { location: string; bucket: string; key: string; etag: string }): string {
  return (
    `${XML_DECLARATION}<PostResponse>${element('Location', stored.location)}${element('Bucket', stored.bucket)}` +
    `${element('Key', stored.key)}${element('ETag', stored.etag)}</PostResponse>`
  );
}

/** GetBucketLocation: us-east-1 is spelled as an empty constraint, as S3 does. */
export function bucketLocationXml(region: string): string {
  const constraint = region === 'us-east-1' ? '' : region;
  return `${XML_DECLARATION}<LocationConstraint xmlns="${S3_XMLNS}">${escapeXml(constraint)}</LocationConstraint>`;
}

export interface DeletedEntry {
  key: string;
  versionId?: string | null;
}

export interface DeleteErrorEntry {
  key: string;
  versionId?: string | null;
  code: string;
  message: string;
}

/** DeleteObjects result; in quiet mode only errors are listed. */
export function deleteResultXml(deleted: DeletedEntry[], errors: DeleteErrorEntry[], quiet: boolean): string {
  const deletedXml = quiet ? '' : deleted.map((entry) => `<Deleted>${element('Key', entry.key)}${element('VersionId', entry.versionId)}</Deleted>`).join('');
  const errorsXml = errors
    .map(
      (entry) =>
        `<Error>${element('Key', entry.key)}${element('VersionId', entry.versionId)}${element('Code', entry.code)}` +
        `${element('Message', entry.message)}</Error>`,
    )
    .join('');
  return `${XML_DECLARATION}<DeleteResult xmlns="${S3_XMLNS}">${deletedXml}${errorsXml}</DeleteResult>`;
}
