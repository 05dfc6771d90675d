/**
 * S3 "POST Object": browser form uploads signed with a SigV4 POST policy. The form carries its own
 * authentication (no Authorization header), so this runs instead of the header/presigned path:
 *
 *   read fields (multipart, bounded) -> verify signature and policy -> authorize like PutObject ->
 *   spool the file to a private temp file, enforcing content-length-range and the upstream's
 *   single-PUT cap as bytes arrive -> PUT upstream with a Content-Length -> answer as S3 does.
 *
 * The upstream (RunPod) has no POST Object, and a PUT needs its length before the first byte, which
 * a multipart body does not tell; hence the spool. Nothing reaches the upstream unless the
 * signature, policy and authorization passed and the whole file arrived. The temp file is always
 * removed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import { authorize } from '../authz.js';
import type { AccessKey } from '../keys/model.js';
import { checkPostPolicy, contentLengthProblem, verifyPostSignature, type ContentLengthRange } from '../sigv4/post-policy.js';
import type { KeyLookup } from '../sigv4/types.js';
import { uriEncode } from '../sigv4/uri-encoding.js';
import { forward } from '../upstream/forward.js';
import { sendXml } from '../http/respond.js';
import { MAX_KEY_BYTES } from './address.js';
import { S3Error } from './errors.js';
import { planOperation, sendUpstreamResponse, type HandlerDeps } from './handlers.js';
import { headerValue, type S3Operation } from './operations.js';
import { postResponseXml } from './responses.js';

export interface PostObjectDeps {
  handlerDeps: HandlerDeps;
  lookup: KeyLookup<AccessKey>;
  /** Accepted credential-scope regions (config.acceptedRegions). */
  regions: string[];
  /** Public endpoint, for the Location of the stored object. */
  publicUrl: string;
  /** Where the file is spooled; os.tmpdir() by default. */
  spoolDirectory?: string;
  /**
   * Told once the form's signature verified, before anything else is done for it (access log,
   * admission, last-used). May throw an S3Error (e.g. SlowDown) to refuse the request.
   */
  onAuthenticated(accessKeyId: string): void;
  /** Told the operation once the object key is known. */
  onClassified(operation: S3Operation): void;
  /** Told once the key was authorized for the upload (last-used bookkeeping). */
  onAuthorized(accessKeyId: string): void;
}

export interface PostObjectRequest {
  req: IncomingMessage;
  res: ServerResponse;
  bucket: string;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

/** Bounds on everything before the file (S3 allows 20 KB of fields; the policy alone may be that). */
export const FORM_LIMITS = {
  fieldNameBytes: 256,
  fieldValueBytes: 32 * 1024,
  fields: 100,
  preDataBytes: 64 * 1024,
} as const;

/** Fields the gateway reads itself; everything else may become an upstream header (headers.ts allowlist). */
const NOT_HEADERS = new Set([
  'key', 'bucket', 'policy', 'acl', 'file', 'success_action_status', 'success_action_redirect', 'redirect', 'tagging',
  'x-amz-algorithm', 'x-amz-credential', 'x-amz-date', 'x-amz-signature', 'x-amz-security-token', 'content-md5', 'content-length',
]);

/** ACLs that keep the object private, which is all the gateway does (it forwards no ACLs upstream). */
const PRIVATE_ACLS = new Set(['private', 'bucket-owner-full-control']);

/** Whether this request is a POST Object form upload (POST on a bucket, multipart/form-data, not ?delete). */
export function isPostObjectRequest(method: string, bucket: string | null, key: string | null, query: ReadonlyArray<[string, string]>, contentType: string | undefined): boolean {
  return (
    method === 'POST' &&
    bucket !== null &&
    key === null &&
    !query.some(([name]) => name === 'delete') &&
    (contentType ?? '').toLowerCase().startsWith('multipart/form-data')
  );
}

export async function handlePostObject(deps: PostObjectDeps, request: PostObjectRequest): Promise<void> {
  const { req, res, bucket, signal } = request;
  const form = readForm(req, signal);
  let spoolPath: string | null = null;
  try {
    const head = await form.head;
    const accepted = acceptForm(deps, bucket, head.fields, head.file?.filename ?? '');
    if (head.file === null) {
      throw new S3Error('InvalidArgument', 'POST requires exactly one file upload per request: add a field named "file" as the last field of the form.', {
        details: { ArgumentName: 'file', ArgumentValue: '0' },
      });
    }
    const plan = await planOperation(deps.handlerDeps, accepted.operation, null);
    const target = plan.target!;
    const putLimit = target.capabilities.maxPutObjectBytes;
    spoolPath = path.join(deps.spoolDirectory ?? tmpdir(), `keygate-post-${randomBytes(12).toString('hex')}`);
    const spooled = await spoolFile(head.file.stream, spoolPath, accepted.range, putLimit);
    // The rest of the form (ignored fields after the file) must still be well-formed multipart.
    await form.done;
    const lengthProblem = accepted.range === null ? null : contentLengthProblem(accepted.range, spooled.size);
    if (lengthProblem) throw lengthProblem;

    const upstream = await forward({
      target,
      method: 'PUT',
      objectKey: accepted.objectKey,
      bucketLevel: true,
      query: [],
      headers: { ...accepted.headers, 'content-md5': spooled.md5Base64, 'user-agent': req.headers['user-agent'] },
      body: createReadStream(spoolPath),
      contentLength: spooled.size,
      signal,
      retry: false,
    });
    if (upstream.status >= 300) return await sendUpstreamResponse(res, upstream);
    upstream.body.resume();
    respondStored(deps, res, bucket, accepted, upstream.headers);
  } finally {
    form.close();
    if (spoolPath !== null) await rm(spoolPath, { force: true });
  }
}

// ------------------------------------------------------------------------------------------------
// The form

interface FormFile {
  stream: Readable;
  filename: string;
}

interface FormHead {
  /** Fields before the file, lower-case names. */
  fields: Map<string, string>;
  /** null when the form ended without a file. */
  file: FormFile | null;
}

interface FormReader {
  /** Resolves once the fields before the file are known (with the file, unread), or the form ended. */
  head: Promise<FormHead>;
  /** Resolves when the whole multipart body was parsed. */
  done: Promise<void>;
  /** Stops parsing (idempotent); the HTTP layer drains or closes the connection. */
  close(): void;
}

function malformed(detail: string): S3Error {
  return new S3Error('MalformedPOSTRequest', `The body of your POST request is not well-formed multipart/form-data: ${detail}`);
}

function tooMuchPreData(): S3Error {
  return new S3Error(
    'MaxPostPreDataLengthExceededError',
    `Your POST request fields preceding the upload file were too large (at most ${FORM_LIMITS.fields} fields, ${FORM_LIMITS.fieldValueBytes} bytes each, ${FORM_LIMITS.preDataBytes} bytes in all).`,
  );
}

function readForm(req: IncomingMessage, signal: AbortSignal): FormReader {
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      limits: {
        fieldNameSize: FORM_LIMITS.fieldNameBytes,
        fieldSize: FORM_LIMITS.fieldValueBytes,
        fields: FORM_LIMITS.fields,
        files: 1,
        parts: FORM_LIMITS.fields + 1,
        headerPairs: 20,
      },
    });
  } catch (error) {
    const failure = malformed(`${(error as Error).message}; send the form as multipart/form-data with a boundary.`);
    return { head: Promise.reject(failure), done: Promise.reject(failure), close: () => undefined };
  }

  const fields = new Map<string, string>();
  let preDataBytes = 0;
  let file: FormFile | null = null;
  let settled = false;
  let resolveHead!: (head: FormHead) => void;
  let rejectHead!: (error: Error) => void;
  let resolveDone!: () => void;
  let rejectDone!: (error: Error) => void;
  const head = new Promise<FormHead>((resolve, reject) => {
    resolveHead = resolve;
    rejectHead = reject;
  });
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  // Whoever awaits these later sees the failure; until then it must not count as unhandled.
  head.catch(() => undefined);
  done.catch(() => undefined);

  const fail = (error: Error) => {
    if (settled) return;
    settled = true;
    rejectHead(error);
    rejectDone(error);
    file?.stream.destroy(error);
    req.unpipe(parser);
    parser.removeAllListeners('file');
    parser.removeAllListeners('field');
    parser.on('error', () => undefined);
    parser.destroy();
  };
  const startFile = (stream: Readable, filename: string) => {
    // The file may be destroyed before anyone reads it (the form was refused): that must not be an unhandled error.
    stream.on('error', () => undefined);
    file = { stream, filename };
    resolveHead({ fields, file });
  };

  parser.on('field', (rawName, value, info) => {
    if (file !== null) return; // S3 ignores fields after the file.
    if (info.nameTruncated || info.valueTruncated) return fail(tooMuchPreData());
    preDataBytes += rawName.length + value.length;
    if (preDataBytes > FORM_LIMITS.preDataBytes) return fail(tooMuchPreData());
    const name = rawName.toLowerCase();
    if (name === 'file') return startFile(Readable.from([Buffer.from(value, 'utf8')]), '');
    if (fields.has(name)) {
      return fail(new S3Error('InvalidArgument', `The form field "${rawName}" appears more than once; send each field once.`, { details: { ArgumentName: rawName } }));
    }
    fields.set(name, value);
  });
  parser.on('file', (rawName, stream, info) => {
    if (file !== null) {
      stream.resume();
      return;
    }
    if (rawName.toLowerCase() !== 'file') {
      stream.resume();
      return fail(new S3Error('InvalidArgument', `The file must be sent in a field named "file" (got "${rawName}"), as the last field of the form.`, { details: { ArgumentName: rawName } }));
    }
    startFile(stream, info.filename ?? '');
  });
  parser.on('fieldsLimit', () => fail(tooMuchPreData()));
  parser.on('partsLimit', () => fail(tooMuchPreData()));
  parser.on('error', (error: Error) => fail(malformed(error.message)));
  parser.on('close', () => {
    if (settled) return;
    settled = true;
    if (file === null) resolveHead({ fields, file: null });
    resolveDone();
  });
  const onClientGone = () => {
    if (!req.complete) fail(new S3Error('IncompleteBody', 'The client closed the connection before the form was complete.'));
  };
  req.on('close', onClientGone);
  signal.addEventListener('abort', onClientGone, { once: true });
  req.pipe(parser);
  return {
    head,
    done,
    close: () => {
      req.off('close', onClientGone);
      signal.removeEventListener('abort', onClientGone);
      if (!settled) fail(new S3Error('RequestTimeout', 'The form was not read to its end.'));
    },
  };
}

// ------------------------------------------------------------------------------------------------
// Authentication, policy and authorization

interface AcceptedForm {
  objectKey: string;
  operation: S3Operation;
  range: ContentLengthRange | null;
  /** Form fields that describe the object (Content-Type, x-amz-meta-*, checksums…), as request headers. */
  headers: Record<string, string>;
  successStatus: 200 | 201 | 204;
  redirect: URL | null;
}

function acceptForm(deps: PostObjectDeps, bucket: string, formFields: Map<string, string>, filename: string): AcceptedForm {
  const fields = new Map(formFields);
  const formBucket = fields.get('bucket');
  if (formBucket !== undefined && formBucket !== bucket) {
    throw new S3Error('InvalidArgument', `The form's bucket field "${formBucket}" differs from the bucket it was posted to ("${bucket}").`, {
      details: { ArgumentName: 'bucket', ArgumentValue: formBucket },
    });
  }
  // The bucket is always subject to the policy, whether or not the form repeats it.
  fields.set('bucket', bucket);

  const verified = verifyPostSignature(
    {
      algorithm: fields.get('x-amz-algorithm'),
      credential: fields.get('x-amz-credential'),
      date: fields.get('x-amz-date'),
      signature: fields.get('x-amz-signature'),
      policy: fields.get('policy'),
    },
    { lookup: deps.lookup, regions: deps.regions },
  );
  deps.onAuthenticated(verified.accessKeyId);
  const range = checkPostPolicy(verified.policy, fields);

  const keyTemplate = fields.get('key');
  if (keyTemplate === undefined) {
    throw new S3Error('InvalidArgument', "Bucket POST must contain a field named 'key'. If it is specified, please check the order of the fields (the file must come last).", {
      details: { ArgumentName: 'key' },
    });
  }
  const objectKey = keyTemplate.replaceAll('${filename}', filename);
  if (objectKey === '') throw new S3Error('InvalidArgument', 'User key must have a length greater than 0.', { details: { ArgumentName: 'key' } });
  if (Buffer.byteLength(objectKey) > MAX_KEY_BYTES) throw new S3Error('KeyTooLongError', `Object keys are limited to ${MAX_KEY_BYTES} bytes of UTF-8.`);

  const acl = fields.get('acl');
  if (acl !== undefined && !PRIVATE_ACLS.has(acl)) {
    throw new S3Error('NotImplemented', `The gateway stores every object private and does not apply the ACL "${acl}"; drop the acl field or use "private".`);
  }

  const operation: S3Operation = { name: 'PostObject', permission: 'write', bucket, key: objectKey, copySource: null, upstreamQuery: [] };
  deps.onClassified(operation);
  authorize(verified.key, operation);
  deps.onAuthorized(verified.accessKeyId);

  return {
    objectKey,
    operation,
    range,
    headers: objectHeaders(fields),
    successStatus: successStatus(fields.get('success_action_status')),
    redirect: redirectUrl(fields.get('success_action_redirect') ?? fields.get('redirect')),
  };
}

function objectHeaders(fields: Map<string, string>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of fields) {
    if (NOT_HEADERS.has(name) || name.startsWith('x-ignore-')) continue;
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) {
      throw new S3Error('InvalidArgument', `The form field name "${name}" cannot become an object header; use letters, digits and "-".`, { details: { ArgumentName: name } });
    }
    if (/[^\t\x20-\x7e\x80-\xff]/.test(value)) {
      throw new S3Error('InvalidArgument', `The form field "${name}" contains characters not allowed in a header value (e.g. line breaks).`, { details: { ArgumentName: name } });
    }
    headers[name] = value;
  }
  return headers;
}

function successStatus(value: string | undefined): 200 | 201 | 204 {
  if (value === '200') return 200;
  if (value === '201') return 201;
  return 204;
}

/** S3 follows success_action_redirect only when it is a usable URL; otherwise it answers with the status. */
function redirectUrl(value: string | undefined): URL | null {
  if (value === undefined || value === '') return null;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : null;
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------------------------------------
// The file

interface SpooledFile {
  size: number;
  md5Base64: string;
}

/** Counts and hashes the bytes, failing with EntityTooLarge the moment a limit is passed. */
class SizeLimiter extends Transform {
  size = 0;
  private readonly md5 = createHash('md5');

  constructor(
    private readonly range: ContentLengthRange | null,
    private readonly putLimit: number | null,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.size += chunk.length;
    if (this.range !== null && this.size > this.range.max) return callback(contentLengthProblem(this.range, this.size)!);
    if (this.putLimit !== null && this.size > this.putLimit) {
      return callback(
        new S3Error('EntityTooLarge', `This upstream accepts at most ${this.putLimit} bytes per object upload; a form upload cannot be split, so use a multipart upload for larger files.`, {
          details: { ProposedSize: this.size, MaxSizeAllowed: this.putLimit },
        }),
      );
    }
    this.md5.update(chunk);
    callback(null, chunk);
  }

  digest(): string {
    return this.md5.digest('base64');
  }
}

async function spoolFile(stream: Readable, spoolPath: string, range: ContentLengthRange | null, putLimit: number | null): Promise<SpooledFile> {
  const limiter = new SizeLimiter(range, putLimit);
  try {
    await pipeline(stream, limiter, createWriteStream(spoolPath, { flags: 'wx', mode: 0o600 }));
  } catch (error) {
    if (error instanceof S3Error) throw error;
    throw malformed(`the file part ended early (${(error as Error).message}).`);
  }
  return { size: limiter.size, md5Base64: limiter.digest() };
}

// ------------------------------------------------------------------------------------------------
// The answer

function respondStored(deps: PostObjectDeps, res: ServerResponse, bucket: string, accepted: AcceptedForm, upstreamHeaders: Record<string, string | string[]>): void {
  const etag = headerValue(upstreamHeaders, 'etag') ?? '';
  const location = `${deps.publicUrl}/${bucket}/${uriEncode(accepted.objectKey, true)}`;
  const headers: Record<string, string> = { location };
  if (etag !== '') headers.etag = etag;
  const versionId = headerValue(upstreamHeaders, 'x-amz-version-id');
  if (versionId !== undefined) headers['x-amz-version-id'] = versionId;

  if (accepted.redirect !== null) {
    const redirect = new URL(accepted.redirect);
    redirect.searchParams.append('bucket', bucket);
    redirect.searchParams.append('key', accepted.objectKey);
    redirect.searchParams.append('etag', etag);
    res.writeHead(303, { ...headers, location: redirect.href, 'content-length': '0' });
    res.end();
    return;
  }
  if (accepted.successStatus === 201) {
    sendXml(res, 201, postResponseXml({ location, bucket, key: accepted.objectKey, etag }), headers);
    return;
  }
  res.writeHead(accepted.successStatus, accepted.successStatus === 200 ? { ...headers, 'content-length': '0' } : headers);
  res.end();
}
