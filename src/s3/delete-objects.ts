/**
 * DeleteObjects (multi-object delete). RunPod has no DeleteObjects, so the gateway parses the
 * request, authorizes every key separately and fans it out as single DeleteObject calls, then
 * answers with a proper DeleteResult. Doing it the same way for every upstream keeps one code path.
 */
import { S3Error } from './errors.js';
import { parseXmlBody } from './xml.js';
import { deleteResultXml, type DeleteErrorEntry, type DeletedEntry } from './responses.js';

/** S3's own limit per DeleteObjects request. */
export const MAX_DELETE_KEYS = 1000;
const FAN_OUT_CONCURRENCY = 16;

export interface DeleteRequestEntry {
  key: string;
  versionId: string | null;
}

export interface DeleteRequest {
  quiet: boolean;
  entries: DeleteRequestEntry[];
}

export function parseDeleteRequest(xml: string): DeleteRequest {
  const document = parseXmlBody(xml, ['Object']);
  const root = document.Delete;
  if (typeof root !== 'object' || root === null) {
    throw new S3Error('MalformedXML', 'The DeleteObjects body must be a <Delete> document.');
  }
  const { Object: objects = [], Quiet } = root as { Object?: unknown[]; Quiet?: unknown };
  if (objects.length === 0) {
    throw new S3Error('MalformedXML', 'The <Delete> document must list at least one <Object>.');
  }
  if (objects.length > MAX_DELETE_KEYS) {
    throw new S3Error('MalformedXML', `A DeleteObjects request may list at most ${MAX_DELETE_KEYS} objects; split it into batches.`);
  }
  const entries = objects.map((entry): DeleteRequestEntry => {
    const { Key, VersionId } = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
    if (typeof Key !== 'string' || Key === '') {
      throw new S3Error('MalformedXML', 'Every <Object> in <Delete> needs a non-empty <Key>.');
    }
    return { key: Key, versionId: typeof VersionId === 'string' && VersionId !== '' ? VersionId : null };
  });
  const quiet = typeof Quiet === 'string' && Quiet.trim().toLowerCase() === 'true';
  return { quiet, entries };
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
