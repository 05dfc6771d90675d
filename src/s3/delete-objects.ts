/**
 * DeleteObjects (multi-object delete). RunPod has no DeleteObjects, so the gateway parses the
 * request, authorizes every key separately and fans it out as single DeleteObject calls, then
 * answers with a proper DeleteResult. Doing it the same way for every upstream keeps one code path.
 */
import { S3Error } from '../errors.js';
import { MAX_KEY_BYTES } from './address.js';
import type { XmlBody, XmlBodyShape } from './xml-body.js';
import { deleteResultXml, type DeleteErrorEntry, type DeletedEntry } from './responses.js';

/** S3's own limit per DeleteObjects request. */
export const MAX_DELETE_KEYS = 1000;
const FAN_OUT_CONCURRENCY = 16;
/**
 * Listeners the fan-out puts on the request's abort signal at once: each delete in flight listens
 * (its upstream request, and a retry pause). Expected, not a leak: Node warns above 10 by default.
 */
export const FAN_OUT_SIGNAL_LISTENERS = FAN_OUT_CONCURRENCY * 2 + 8;

export interface DeleteRequestEntry {
  key: string;
  versionId: string | null;
  /**
   * The entry's conditions (<ETag>, <LastModifiedTime>, <Size>) as the headers of a conditional
   * DeleteObject: the object is deleted only if it is still the one the client saw.
   */
  conditions: Record<string, string>;
}

export interface DeleteRequest {
  quiet: boolean;
  entries: DeleteRequestEntry[];
}

export const DELETE_REQUEST_SHAPE: XmlBodyShape = {
  root: 'Delete',
  rootFields: ['Quiet'],
  entry: 'Object',
  entryFields: ['Key', 'VersionId', 'ETag', 'LastModifiedTime', 'Size'],
  maxEntries: MAX_DELETE_KEYS,
  tooManyEntries: () => new S3Error('MalformedXML', `A DeleteObjects request may list at most ${MAX_DELETE_KEYS} objects; split it into batches.`),
};

/** The request in a read <Delete> body. */
export function deleteRequest(document: XmlBody): DeleteRequest {
  if (document.entries.length === 0) {
    throw new S3Error('MalformedXML', 'The <Delete> document must list at least one <Object>.');
  }
  const entries = document.entries.map((entry): DeleteRequestEntry => {
    const { Key, VersionId } = entry;
    if (Key === undefined || Key === '') throw new S3Error('MalformedXML', 'Every <Object> in <Delete> needs a non-empty <Key>.');
    // No such object can exist, and each entry's key is echoed in the answer: longer ones would only inflate it.
    if (Buffer.byteLength(Key) > MAX_KEY_BYTES)
      throw new S3Error('KeyTooLongError', `Object keys are limited to ${MAX_KEY_BYTES} bytes of UTF-8; one <Key> is longer.`);
    return { key: Key, versionId: VersionId !== undefined && VersionId !== '' ? VersionId : null, conditions: deleteConditions(entry) };
  });
  const quiet = document.rootFields.Quiet?.trim().toLowerCase() === 'true';
  return { quiet, entries };
}

/** ISO 8601 with a time zone: 2025-01-31T12:00:00Z, 2025-01-31T12:00:00.123+02:00. */
const ISO_TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:?\d\d)$/i;

/** Header-safe printable ASCII, as an ETag is. */
const ETAG = /^[\x21-\x7e]{1,1024}$/;

function deleteConditions(entry: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const conditions: Record<string, string> = {};
  const etag = entry.ETag?.trim();
  if (etag !== undefined && etag !== '') {
    if (!ETAG.test(etag)) throw new S3Error('MalformedXML', "An <ETag> in <Delete> must be the object's ETag as S3 reported it (printable ASCII).");
    conditions['if-match'] = etag;
  }
  const lastModified = entry.LastModifiedTime?.trim();
  if (lastModified !== undefined && lastModified !== '') {
    const time = Date.parse(lastModified);
    // A time zone is required: without one, Date.parse would read the time in the gateway's own.
    if (!ISO_TIMESTAMP.test(lastModified) || Number.isNaN(time)) {
      throw new S3Error('MalformedXML', `<LastModifiedTime> "${lastModified.slice(0, 64)}" is not an ISO 8601 timestamp such as 2025-01-31T12:00:00Z.`);
    }
    conditions['x-amz-if-match-last-modified-time'] = new Date(time).toUTCString();
  }
  const size = entry.Size?.trim();
  if (size !== undefined && size !== '') {
    if (!/^\d{1,19}$/.test(size)) throw new S3Error('MalformedXML', `<Size> "${size.slice(0, 64)}" is not a size in bytes.`);
    conditions['x-amz-if-match-size'] = size;
  }
  return conditions;
}

/**
 * Whether an entry has <Size> or <LastModifiedTime>, which the gateway checks itself before deleting:
 * S3 honours x-amz-if-match-size / x-amz-if-match-last-modified-time on directory buckets only, and
 * other upstreams ignore them silently, which would delete an object the client meant to keep.
 */
export function needsGatewayCheck(entry: DeleteRequestEntry): boolean {
  return entry.conditions['x-amz-if-match-size'] !== undefined || entry.conditions['x-amz-if-match-last-modified-time'] !== undefined;
}

/**
 * Whether the object as its HeadObject describes it (Content-Length, Last-Modified) is the one an
 * entry's <Size> and <LastModifiedTime> name. Both times are HTTP dates of whole seconds. An answer
 * without the header does not match: the check fails closed.
 */
export function conditionsHold(entry: DeleteRequestEntry, head: { contentLength?: string; lastModified?: string }): boolean {
  const size = entry.conditions['x-amz-if-match-size'];
  if (size !== undefined && (head.contentLength === undefined || Number(head.contentLength) !== Number(size))) return false;
  const lastModified = entry.conditions['x-amz-if-match-last-modified-time'];
  if (lastModified !== undefined && (head.lastModified === undefined || Date.parse(head.lastModified) !== Date.parse(lastModified))) return false;
  return true;
}

/** Outcome of deleting one object: null on success, or the S3 error code and message. */
export type DeleteOne = (entry: DeleteRequestEntry) => Promise<{ code: string; message: string } | null>;

export async function fanOutDeletes(request: DeleteRequest, deleteOne: DeleteOne): Promise<string> {
  const deleted: DeletedEntry[] = [];
  const errors: DeleteErrorEntry[] = [];
  const outcomes = new Array<{ code: string; message: string } | null>(request.entries.length);
  let next = 0;
  const worker = async () => {
    while (next < request.entries.length) {
      const index = next++;
      outcomes[index] = await deleteOne(request.entries[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(FAN_OUT_CONCURRENCY, request.entries.length) }, worker));
  request.entries.forEach((entry, index) => {
    const outcome = outcomes[index];
    if (outcome) errors.push({ ...entry, ...outcome });
    else deleted.push(entry);
  });
  return deleteResultXml(deleted, errors, request.quiet);
}
