/**
 * S3 "POST Object": browser form uploads signed with a SigV4 POST policy. The form is one of the
 * three ways into the request pipeline (src/http/s3.ts), beside header and presigned-query
 * authentication; what it authenticates into is a PutObject:
 *
 *   read the fields before the file (bounded, with a deadline: nobody is authenticated yet) ->
 *   verify the signature and the policy -> the object key and the fields as request headers, which
 *   the pipeline classifies as the PostObject entry of the operations table (PutObject's headers,
 *   filtered like any request's), authorizes and plans -> spool the file to a private temp file,
 *   enforcing content-length-range and the upstream's single-PUT cap as bytes arrive -> PUT
 *   upstream with a Content-Length -> the form's own answer (success_action_status/redirect).
 *
 * The upstream (RunPod) has no POST Object, and a PUT needs its length before the first byte, which
 * a multipart body does not tell; hence the spool. Nothing reaches the upstream unless the
 * signature, policy and authorization passed and the whole file arrived.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type busboy from 'busboy';
import { lazyRequire } from '../lazy-require.js';
import type { Cancellation } from '../cancellation.js';
import { S3Error } from '../errors.js';
import { headerValue } from '../header-value.js';
import type { AccessKey } from '../keys/model.js';
import { checkPostPolicy, contentLengthProblem, verifyPostSignature, type ContentLengthRange } from '../sigv4/post-policy.js';
import type { KeyLookup } from '../sigv4/types.js';
import { uriEncode } from '../sigv4/uri-encoding.js';
import type { UpstreamBody } from '../upstream/forward.js';
import { MAX_KEY_BYTES } from './address.js';
import type { Reply } from './reply.js';
import { xmlReply } from './reply.js';
import { postResponseXml } from './responses.js';

const loadBusboy = lazyRequire<typeof busboy>('busboy');
/** Bounds on everything before the file (S3 allows 20 KB of fields; the policy alone may be that). */
export const FORM_LIMITS = {
  fieldNameBytes: 256,
  fieldValueBytes: 32 * 1024,
  fields: 100,
  preDataBytes: 64 * 1024,
} as const;

/** Fields the gateway reads itself; every other field is offered to the PostObject entry as a request header. */
const NOT_HEADERS = new Set([
  'key',
  'bucket',
  'policy',
  'file',
  'success_action_status',
  'success_action_redirect',
  'redirect',
  'tagging',
  'x-amz-algorithm',
  'x-amz-credential',
  'x-amz-date',
  'x-amz-signature',
  'x-amz-security-token',
  'content-md5',
  'content-length',
  'awsaccesskeyid',
  'signature',
]);

export interface PostFormOptions {
  /**
   * Brings the key store up to now (store.beginRequest): awaited once the fields arrived and before
   * `lookup`, since the sender may have dragged them out and must not choose how old the data it is
   * judged by is.
   */
  refresh: () => Promise<void> | null;
  lookup: KeyLookup<AccessKey>;
  /** Accepted credential-scope regions (config.acceptedRegions). */
  regions: string[];
  /** How long the fields before the file may take to arrive (nobody is authenticated until then). */
  fieldsDeadlineMs: number;
  signal: Cancellation;
}

/** A form whose signature and policy verified: who sent it, what it stores, and its file, not yet read. */
export interface AuthenticatedForm {
  accessKeyId: string;
  key: AccessKey;
  objectKey: string;
  /** The fields that describe the object (Content-Type, x-amz-meta-*, …), as request headers. */
  headers: Record<string, string>;
  range: ContentLengthRange | null;
  successStatus: 200 | 201 | 204;
  redirect: URL | null;
  /** Reads the file into a temp file and offers it as the upload's body. */
  spool(maxBytes: number, spoolDirectory?: string): Promise<UpstreamBody>;
  /** Stops reading the form and removes the temp file (idempotent). */
  dispose(): Promise<void>;
}

/**
 * Reads the form's fields up to its file and verifies them. Throws the S3Error to answer (the
 * form is then closed; the HTTP layer discards the rest of the body).
 */
export async function authenticateForm(req: IncomingMessage, bucket: string, options: PostFormOptions): Promise<AuthenticatedForm> {
  const form = readForm(req, options.signal, options.fieldsDeadlineMs);
  let spoolPath: string | null = null;
  const dispose = async () => {
    form.close();
    if (spoolPath !== null) await rm(spoolPath, { force: true });
  };
  try {
    const head = await form.head;
    await options.refresh();
    const accepted = acceptFields(options, bucket, head.fields, head.file?.filename ?? '');
    if (head.file === null) {
      throw new S3Error('InvalidArgument', 'POST requires exactly one file upload per request: add a field named "file" as the last field of the form.', {
        details: { ArgumentName: 'file', ArgumentValue: '0' },
      });
    }
    const file = head.file;
    return {
      ...accepted,
      dispose,
      spool: async (maxBytes, spoolDirectory) => {
        spoolPath = path.join(spoolDirectory ?? tmpdir(), `keygate-post-${randomBytes(12).toString('hex')}`);
        const spooled = await spoolFile(file.stream, spoolPath, accepted.range, maxBytes);
        // The rest of the form (ignored fields after the file) must still be well-formed multipart.
        await form.done;
        const lengthProblem = accepted.range === null ? null : contentLengthProblem(accepted.range, spooled.size);
        if (lengthProblem) throw lengthProblem;
        return {
          stream: createReadStream(spoolPath),
          length: spooled.size,
          sha256: null,
          contentMd5: spooled.md5Base64,
          checksums: () => ({}),
          trailerChecksum: null,
        };
      },
    };
  } catch (error) {
    await dispose();
    throw error;
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

function readForm(req: IncomingMessage, signal: Cancellation, fieldsDeadlineMs: number): FormReader {
  let parser: busboy.Busboy;
  try {
    // busboy takes an empty boundary parameter (boundary="") and then finds no parts at all.
    if (!/;\s*boundary=(?:"[^"]+"|[^\s;"]+)/i.test(req.headers['content-type'] ?? '')) throw new Error('the Content-Type has no boundary parameter');
    parser = loadBusboy()({
      headers: req.headers,
      // Field bytes as they are (latin1 maps bytes 1:1); fieldBytes() recovers them (a file sent as
      // a plain field must be stored byte for byte).
      defCharset: 'latin1',
      // A little over the form's own limits, which readForm enforces itself (busboy's are off by
      // one at their boundaries, and it does not check multipart field names at all).
      limits: {
        fieldSize: FORM_LIMITS.fieldValueBytes + 1,
        fields: FORM_LIMITS.fields + 1,
        // Parts sent as files but named other than "file" are read as fields (AWS does the same).
        files: FORM_LIMITS.fields + 2,
        parts: FORM_LIMITS.fields + 2,
        headerPairs: 20,
      },
    });
  } catch (error) {
    const failure = malformed(`${(error as Error).message}; send the form as multipart/form-data with a boundary.`);
    const rejected = Promise.reject(failure);
    // Whoever awaits it sees the failure; it must not count as unhandled meanwhile.
    rejected.catch(() => undefined);
    return { head: rejected, done: rejected, close: () => undefined };
  }

  const fields = new Map<string, string>();
  let fieldCount = 0;
  let preDataBytes = 0;
  let file: FormFile | null = null;
  /** The form was refused (fail): nothing more is offered. */
  let failed = false;
  /** The parser read the whole body. Parts sent as files may still be ending, and the head may still be pending on them. */
  let parsed = false;
  /** Parts sent as files under field names, still being read: the real file waits for them. */
  const pendingFields: Array<Promise<void>> = [];
  let fieldsBeingRead = 0;
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

  const deadline = setTimeout(() => {
    fail(
      new S3Error('RequestTimeout', `The form's fields before the file did not arrive within ${fieldsDeadlineMs} ms; send the form at once, the file last.`),
    );
  }, fieldsDeadlineMs);
  deadline.unref();

  const fail = (error: Error) => {
    clearTimeout(deadline);
    if (failed) return;
    failed = true;
    rejectHead(error);
    rejectDone(error);
    file?.stream.destroy(error);
    req.unpipe(parser);
    parser.removeAllListeners('file');
    parser.removeAllListeners('field');
    parser.on('error', () => undefined);
    parser.destroy();
  };
  /** Runs a parser event handler; whatever it throws refuses the form instead of escaping. */
  const guarded =
    <A extends unknown[]>(handler: (...args: A) => void) =>
    (...args: A): void => {
      try {
        handler(...args);
      } catch (error) {
        fail(error instanceof S3Error ? error : malformed(`${(error as Error).message ?? String(error)}.`));
      }
    };
  // (Fields after the file are not offered here; pending file-part fields that began before it are.)
  const addField = (rawName: string, value: string) => {
    if (failed) return;
    if (
      Buffer.byteLength(rawName) > FORM_LIMITS.fieldNameBytes ||
      Buffer.byteLength(value) > FORM_LIMITS.fieldValueBytes ||
      ++fieldCount > FORM_LIMITS.fields
    ) {
      return fail(tooMuchPreData());
    }
    preDataBytes += Buffer.byteLength(rawName) + Buffer.byteLength(value);
    if (preDataBytes > FORM_LIMITS.preDataBytes) return fail(tooMuchPreData());
    const name = rawName.toLowerCase();
    if (fields.has(name)) {
      return fail(
        new S3Error('InvalidArgument', `The form field "${rawName}" appears more than once; send each field once.`, { details: { ArgumentName: rawName } }),
      );
    }
    fields.set(name, value);
  };
  const startFile = (stream: Readable, filename: string) => {
    // Destroyed when the form is refused before the file is read: never an unheard 'error'.
    stream.on('error', () => undefined);
    clearTimeout(deadline);
    file = { stream, filename };
    // Fields sent as file parts before it may still be arriving through their streams.
    void Promise.all(pendingFields).then(() => {
      // Not gated on `parsed`: the whole body may have been parsed (and the parser closed) before
      // this runs, when it had all arrived by the time the form was read.
      if (!failed) resolveHead({ fields, file });
    });
  };
  const requireName = (name: string | undefined): string => {
    if (name === undefined || name === '') throw malformed('every part needs a name (Content-Disposition: form-data; name="…").');
    return name;
  };

  parser.on(
    'field',
    guarded((rawName: string | undefined, value: string | undefined, info: busboy.FieldInfo) => {
      if (file !== null || failed) return; // S3 ignores fields after the file.
      const name = requireName(rawName);
      if (info.valueTruncated) return fail(tooMuchPreData());
      if (value === undefined) throw malformed(`the part "${name}" declares a character set keygate cannot read; send form fields as UTF-8.`);
      const bytes = fieldBytes(value);
      if (name.toLowerCase() === 'file') return startFile(Readable.from([bytes]), '');
      addField(name, bytes.toString('utf8'));
    }),
  );
  parser.on(
    'file',
    guarded((rawName: string | undefined, stream: Readable, info: busboy.FileInfo) => {
      // Every part's stream has an error listener before anything can destroy it: a destroyed parser
      // errors its open part, and an unheard 'error' event would end the process.
      stream.on('error', () => undefined);
      if (file !== null || failed) {
        stream.resume();
        return;
      }
      const name = requireName(rawName);
      if (name.toLowerCase() === 'file') return startFile(stream, info.filename ?? '');
      // A field still being read counts against the limit until addField counts it itself.
      if (fieldCount + fieldsBeingRead >= FORM_LIMITS.fields) {
        stream.resume();
        return fail(tooMuchPreData());
      }
      fieldsBeingRead++;
      pendingFields.push(
        readFilePartAsField(
          stream,
          (value) => {
            fieldsBeingRead--;
            addField(name, value);
          },
          () => fail(tooMuchPreData()),
        ),
      );
    }),
  );
  // Limits reached after the file only cut off parts S3 ignores anyway.
  const overLimit = () => {
    if (file === null) fail(tooMuchPreData());
  };
  parser.on('fieldsLimit', overLimit);
  parser.on('filesLimit', overLimit);
  parser.on('partsLimit', overLimit);
  parser.on('error', (error: Error) => fail(malformed(error.message)));
  parser.on('close', () => {
    clearTimeout(deadline);
    if (failed) return;
    parsed = true;
    if (file === null) resolveHead({ fields, file: null });
    resolveDone();
  });
  const onClientGone = () => {
    if (!req.complete) fail(new S3Error('IncompleteBody', 'The client closed the connection before the form was complete.'));
  };
  req.on('close', onClientGone);
  const stopListening = signal.onCancel(onClientGone);
  req.pipe(parser);
  return {
    head,
    done,
    close: () => {
      req.off('close', onClientGone);
      stopListening();
      if (!parsed) fail(new S3Error('RequestTimeout', 'The form was not read to its end.'));
    },
  };
}

/**
 * A field's bytes as sent. Parts without a charset come decoded as latin1 (one character per
 * byte: reversible); a part that declared UTF-8 or another charset comes as that text, kept as its
 * UTF-8 bytes.
 */
function fieldBytes(value: string): Buffer {
  // eslint-disable-next-line no-control-regex
  return /[^\u0000-\u00ff]/.test(value) ? Buffer.from(value, 'utf8') : Buffer.from(value, 'latin1');
}

/** A part sent as a file but named like a field: its content (as UTF-8 text), capped like a field's value. */
function readFilePartAsField(stream: Readable, onValue: (value: string) => void, onTooLarge: () => void): Promise<void> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    stream.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > FORM_LIMITS.fieldValueBytes) {
        refused = true;
        onTooLarge();
        return;
      }
      chunks.push(chunk);
    });
    stream.on('end', () => {
      if (!refused) onValue(Buffer.concat(chunks).toString('utf8'));
      resolve();
    });
    stream.on('close', () => resolve());
  });
}

// ------------------------------------------------------------------------------------------------
// Authentication and policy

type AcceptedFields = Omit<AuthenticatedForm, 'spool' | 'dispose'>;

function acceptFields(options: PostFormOptions, bucket: string, formFields: Map<string, string>, filename: string): AcceptedFields {
  const fields = new Map(formFields);
  if ((fields.has('awsaccesskeyid') || fields.has('signature')) && !fields.has('x-amz-algorithm')) {
    throw new S3Error(
      'InvalidArgument',
      'This form is signed with Signature Version 2 (AWSAccessKeyId, signature), which keygate does not accept; sign it with Signature Version 4 (x-amz-algorithm AWS4-HMAC-SHA256, x-amz-credential, x-amz-date, x-amz-signature).',
      {
        details: { ArgumentName: 'x-amz-algorithm' },
      },
    );
  }
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
    { lookup: options.lookup, regions: options.regions },
  );
  const range = checkPostPolicy(verified.policy, fields);

  const keyTemplate = fields.get('key');
  if (keyTemplate === undefined) {
    throw new S3Error(
      'InvalidArgument',
      "Bucket POST must contain a field named 'key'. If it is specified, please check the order of the fields (the file must come last).",
      {
        details: { ArgumentName: 'key' },
      },
    );
  }
  const objectKey = keyTemplate.replaceAll('${filename}', filename);
  if (objectKey === '') throw new S3Error('InvalidArgument', 'User key must have a length greater than 0.', { details: { ArgumentName: 'key' } });
  if (Buffer.byteLength(objectKey) > MAX_KEY_BYTES) throw new S3Error('KeyTooLongError', `Object keys are limited to ${MAX_KEY_BYTES} bytes of UTF-8.`);

  return {
    accessKeyId: verified.accessKeyId,
    key: verified.key,
    objectKey,
    headers: fieldsAsHeaders(fields),
    range,
    successStatus: successStatus(fields.get('success_action_status')),
    redirect: redirectUrl(fields.get('success_action_redirect') ?? fields.get('redirect')),
  };
}

/**
 * The fields that may describe the object, as request headers. Which of them go upstream is the
 * PostObject table entry's decision (like any request's headers); a field naming a power (an ACL,
 * object lock) needs the permission it names there, and a field naming another operation's header
 * (a copy source) is dropped.
 */
function fieldsAsHeaders(fields: Map<string, string>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of fields) {
    if (NOT_HEADERS.has(name) || name.startsWith('x-ignore-')) continue;
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) {
      throw new S3Error('InvalidArgument', `The form field name "${name}" cannot become an object header; use letters, digits and "-".`, {
        details: { ArgumentName: name },
      });
    }
    if (/[^\t\x20-\x7e\x80-\xff]/.test(value)) {
      throw new S3Error('InvalidArgument', `The form field "${name}" contains characters not allowed in a header value (e.g. line breaks).`, {
        details: { ArgumentName: name },
      });
    }
    // S3's form field for the ACL is "acl"; as a header it is x-amz-acl.
    headers[name === 'acl' ? 'x-amz-acl' : name] = value;
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
    private readonly maxBytes: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.size += chunk.length;
    if (this.range !== null && this.size > this.range.max) return callback(contentLengthProblem(this.range, this.size));
    if (this.size > this.maxBytes) {
      return callback(
        new S3Error(
          'EntityTooLarge',
          `This bucket's storage accepts at most ${this.maxBytes} bytes per object upload; a form upload cannot be split, so use a multipart upload for larger files.`,
          {
            details: { ProposedSize: this.size, MaxSizeAllowed: this.maxBytes },
          },
        ),
      );
    }
    this.md5.update(chunk);
    callback(null, chunk);
  }

  digest(): string {
    return this.md5.digest('base64');
  }
}

async function spoolFile(stream: Readable, spoolPath: string, range: ContentLengthRange | null, maxBytes: number): Promise<SpooledFile> {
  const limiter = new SizeLimiter(range, maxBytes);
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

/**
 * The form's answer once the PutObject it became succeeded: a redirect, 201 with a PostResponse
 * document, or 200/204. Failures (any non-2xx reply) stay as they are.
 */
export function postObjectReply(
  stored: Reply,
  form: Pick<AuthenticatedForm, 'objectKey' | 'successStatus' | 'redirect'>,
  bucket: string,
  publicUrl: string,
): Reply {
  if (stored.status >= 300) return stored;
  if (stored.kind === 'stream') stored.body.resume();
  const upstreamHeaders = stored.headers ?? {};
  const etag = headerValue(upstreamHeaders, 'etag') ?? '';
  const location = `${publicUrl}/${bucket}/${uriEncode(form.objectKey, true)}`;
  const headers: Record<string, string> = { location };
  if (etag !== '') headers.etag = etag;
  const versionId = headerValue(upstreamHeaders, 'x-amz-version-id');
  if (versionId !== undefined) headers['x-amz-version-id'] = versionId;

  if (form.redirect !== null) {
    const redirect = new URL(form.redirect);
    redirect.searchParams.append('bucket', bucket);
    redirect.searchParams.append('key', form.objectKey);
    redirect.searchParams.append('etag', etag);
    return { kind: 'empty', status: 303, headers: { ...headers, location: redirect.href, 'content-length': '0' } };
  }
  if (form.successStatus === 201) return xmlReply(201, postResponseXml({ location, bucket, key: form.objectKey, etag }), headers);
  return { kind: 'empty', status: form.successStatus, headers: form.successStatus === 200 ? { ...headers, 'content-length': '0' } : headers };
}
