/**
 * Fuzzing POST Object forms (browser uploads with a SigV4 POST policy) through a real gateway
 * process in front of moto (fast-check). Every generator starts from a valid signed form — the first
 * test proves the gateway stores it — and changes it in one place: field names and order, file
 * parts, the multipart encoding, sizes and framing, authentication. Forms go out as raw bytes over a
 * socket, so nothing a browser or client library would refuse to send is off limits.
 *
 * The property, per form: a change that must still work stores exactly the file's bytes (and
 * nothing else, e.g. no copied content or metadata from fields after the file); every other one is
 * refused in time with a 4xx S3 `<Error>` document made by the gateway (Code, Message, a 16-hex
 * RequestId) and leaves no object behind. Some changes are legitimately either (a nameless part may
 * be ignored or refused): then one of the two, never a 5xx and never other bytes. After every block
 * the gateway process is still up and serving, and nothing but what the cases stored is upstream.
 * A last describe block runs slow unauthenticated forms against a small cap and deadline.
 *
 * A block that kills the gateway fails; the next block starts a fresh gateway so that one crash
 * does not hide what the other blocks would find. A failing property prints its seed and path
 * (fc.assert's `seed`/`path` options replay it).
 */
import { createHash, createHmac } from 'node:crypto';
import fc from 'fast-check';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { signPolicy, signPolicyText, type SigningIdentity } from '../helpers/post-forms.js';
import { exchange, parseResponse, receiveAll, serializeRequest, type ExchangeOptions, type RawRequest, type RawResponse } from '../helpers/raw-http.js';
import { startMoto, type TestUpstream } from '../helpers/upstreams.js';

const BUCKET = 'post-form-fuzz';
/** Another bucket on the same upstream: forms must never write here. */
const OTHER_BUCKET = 'post-form-fuzz-other';
/** Objects the fuzz cases may try to reach (copy sources); never changed. */
const SEED_KEY = 'seed/source.txt';
const SEED_BYTES = Buffer.from('seed object: must never be copied into a fuzz upload');
const OTHER_SECRET_KEY = 'private/secret.txt';
const OTHER_SECRET_BYTES = Buffer.from('another bucket: must never be copied into a fuzz upload');
/** Every fuzz case writes (if at all) under `fuzz/<n>/`. */
const FUZZ_PREFIX = 'fuzz/';
/** KEYGATE_UNAUTHENTICATED_TIMEOUT_MS of the fuzzed gateway: how long fields before the file may take. */
const FIELDS_DEADLINE_MS = 2_000;
const REQUEST_TIMEOUT_MS = 10_000;
/** The base policy's content-length-range. */
const MAX_FILE_BYTES = 4096;
/** The gateway's documented bounds on what comes before the file (src/s3/post-object.ts FORM_LIMITS). */
const LIMITS = { fieldNameBytes: 256, fieldValueBytes: 32 * 1024, fields: 100, preDataBytes: 64 * 1024 };
const SUCCESS_STATUSES = [200, 201, 204, 303];

// Each block sets its run count; together they keep the file's tests near half a minute on a loaded
// 2-core machine. endOnFailure: a counterexample is reported as found, not shrunk (shrinking would
// replay against a gateway the counterexample may have killed).
const FUZZ = { endOnFailure: true } as const;

// -------------------------------------------------------------------------------------------------
// Forms as bytes

interface Part {
  /** The name parameter as sent (null: no name parameter at all). */
  name: string | null;
  value: Buffer;
  /** Sent with a filename parameter when set. */
  filename?: string;
  /** Further part header lines (no line ending). */
  headers?: string[];
  /** Replaces the whole Content-Disposition header line (null: no Content-Disposition). */
  disposition?: string | null;
}

interface Encoding {
  boundary: string;
  /** The request's Content-Type (default multipart/form-data; boundary=<boundary>). */
  contentType?: string;
  preamble?: Buffer;
  epilogue?: Buffer;
  /** Line ending between boundary lines and part headers (default CRLF). */
  headerEol?: string;
  /** Line ending before each delimiter (default CRLF; multipart requires CRLF). */
  delimiterEol?: string;
  /** How the body ends: `--B--` CRLF (default), nothing after the last part, or `--B` without the dashes. */
  closing?: 'normal' | 'none' | 'no-dashes';
}

interface EncodedForm {
  body: Buffer;
  /** Offset where the first part named "file" (any case) starts its content (body.length if none). */
  fileContentStart: number;
  /** Offset right after the closing `--B--` (body.length if none). */
  closingEnd: number;
}

function encodeForm(parts: Part[], encoding: Encoding): EncodedForm {
  const headerEol = encoding.headerEol ?? '\r\n';
  const delimiterEol = encoding.delimiterEol ?? '\r\n';
  const chunks: Buffer[] = [];
  let length = 0;
  const push = (chunk: Buffer | string) => {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, 'latin1');
    chunks.push(buffer);
    length += buffer.length;
  };
  let fileContentStart = -1;
  if (encoding.preamble) push(encoding.preamble);
  parts.forEach((part, index) => {
    push(`${index === 0 ? '' : delimiterEol}--${encoding.boundary}${headerEol}`);
    let disposition = part.disposition;
    if (disposition === undefined) {
      disposition = 'form-data';
      if (part.name !== null) disposition += `; name="${part.name}"`;
      if (part.filename !== undefined) disposition += `; filename="${part.filename}"`;
    }
    if (disposition !== null) push(`Content-Disposition: ${disposition}${headerEol}`);
    for (const line of part.headers ?? []) push(`${line}${headerEol}`);
    push(headerEol);
    if (fileContentStart === -1 && part.name?.toLowerCase() === 'file') fileContentStart = length;
    push(part.value);
  });
  let closingEnd = -1;
  const closing = encoding.closing ?? 'normal';
  if (closing === 'normal') {
    push(`${parts.length === 0 ? '' : delimiterEol}--${encoding.boundary}--`);
    closingEnd = length;
    push('\r\n');
  } else if (closing === 'no-dashes') {
    push(`${delimiterEol}--${encoding.boundary}`);
  }
  if (encoding.epilogue) push(encoding.epilogue);
  return {
    body: Buffer.concat(chunks),
    fileContentStart: fileContentStart === -1 ? length : fileContentStart,
    closingEnd: closingEnd === -1 ? length : closingEnd,
  };
}

interface Framing {
  /** Content-Length to declare (default the body's length; null: none). */
  contentLength?: number | null;
  /** Send with Transfer-Encoding: chunked, the body already framed. */
  chunked?: boolean;
  headers?: Array<[string, string]>;
}

function formRequest(bucket: string, body: Buffer, contentType: string, framing: Framing = {}): RawRequest {
  const headers: Array<[string, string]> = [
    ['Host', '127.0.0.1'],
    ['Content-Type', contentType],
  ];
  if (framing.chunked) headers.push(['Transfer-Encoding', 'chunked']);
  const contentLength = framing.contentLength === undefined ? (framing.chunked ? null : body.length) : framing.contentLength;
  if (contentLength !== null) headers.push(['Content-Length', String(contentLength)]);
  headers.push(...(framing.headers ?? []), ['Connection', 'close']);
  return { method: 'POST', target: `/${bucket}`, headers, body };
}

function chunkedFraming(body: Buffer, chunkSize: number, options: { extension?: string; trailer?: string; badSizeAt?: number } = {}): Buffer {
  const out: Buffer[] = [];
  let index = 0;
  for (let at = 0; at < body.length; at += chunkSize, index++) {
    const piece = body.subarray(at, at + chunkSize);
    const size = options.badSizeAt === index ? 'zz' : piece.length.toString(16);
    out.push(Buffer.from(`${size}${options.extension ?? ''}\r\n`), piece, Buffer.from('\r\n'));
  }
  out.push(Buffer.from(`0\r\n${options.trailer ? `${options.trailer}\r\n` : ''}\r\n`));
  return Buffer.concat(out);
}

function toggleCase(text: string, mask: number): string {
  let bit = 0;
  return [...text].map((char) => (/[a-z]/i.test(char) ? ((mask >> (bit++ % 30)) & 1 ? char.toUpperCase() : char.toLowerCase()) : char)).join('');
}

function invertCase(text: string): string {
  return [...text].map((char) => (char === char.toLowerCase() ? char.toUpperCase() : char.toLowerCase())).join('');
}

const text = (value: string) => Buffer.from(value, 'utf8');
const field = (name: string, value: string | Buffer, extra: Partial<Part> = {}): Part => ({
  name,
  value: Buffer.isBuffer(value) ? value : text(value),
  ...extra,
});

// -------------------------------------------------------------------------------------------------
// What a case must do

type Outcome =
  /** Refused: a 4xx S3 error from the gateway (status and code when they are certain), nothing stored. */
  | { kind: 'refused'; status?: number; code?: string; message?: RegExp }
  /** Stored: exactly `bytes` under `key`, nothing else under the case's prefix. */
  | {
      kind: 'stored';
      key: string;
      bytes: Buffer;
      status?: number;
      headers?: Record<string, string | undefined>;
      meta?: string[];
      answer?: (response: RawResponse, context: string) => void;
    }
  /** Either of the two; when stored, exactly `bytes` (under `key` if known) and nothing else. */
  | { kind: 'either'; key?: string; bytes: Buffer; headers?: Record<string, string | undefined>; meta?: string[] };

interface Case {
  label: string;
  request: RawRequest;
  outcome: Outcome;
  /** Bucket and key prefix the case may write under (nothing else may appear there). */
  bucket: string;
  prefix: string;
  exchange?: ExchangeOptions;
}

/** What a stored base form carries: its Content-Type and one metadata field. */
const BASE_OBJECT_HEADERS = { 'content-type': 'application/x-fuzz', 'x-amz-meta-origin': 'fuzz' };
const BASE_META = ['x-amz-meta-origin'];

describe('POST Object form fuzzing through a real gateway', () => {
  let moto: TestUpstream;
  let gateway: Gateway;
  let port: number;
  /** Per-bucket read-write key on BUCKET: signs the valid forms. */
  let writer: CreatedKey;
  let reader: CreatedKey;
  /** Per-bucket read-write key on OTHER_BUCKET. */
  let foreign: CreatedKey;
  /** A key that existed and was deleted (its secret still signs). */
  let deleted: CreatedKey;
  /** Output of gateway processes that died during the run (one entry per death). */
  const deaths: string[] = [];
  const xml = new XMLParser({ parseTagValue: false });
  let caseNumber = 0;

  async function launchGateway(): Promise<void> {
    gateway = await startGateway({
      ...upstreamEnv(moto),
      KEYGATE_ACCESS_LOG: 'off',
      KEYGATE_UNAUTHENTICATED_TIMEOUT_MS: String(FIELDS_DEADLINE_MS),
    });
    port = Number(new URL(gateway.url).port);
    writer = await gateway.createKey({ name: 'form-writer', bucket: BUCKET, preset: 'read-write' });
    reader = await gateway.createKey({ name: 'form-reader', bucket: BUCKET, preset: 'read-only' });
    foreign = await gateway.createKey({ name: 'form-foreign', bucket: OTHER_BUCKET, preset: 'read-write' });
    deleted = await gateway.createKey({ name: 'form-deleted', bucket: BUCKET, preset: 'read-write' });
    await gateway.deleteKey(deleted.accessKeyId);
  }

  function gatewayAlive(): boolean {
    try {
      process.kill(gateway.pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  beforeAll(async () => {
    moto = await startMoto({ validateSignatures: true });
    await moto.createBucket(BUCKET);
    await moto.createBucket(OTHER_BUCKET);
    await moto.request('PUT', `/${BUCKET}/${SEED_KEY}`, { body: SEED_BYTES });
    await moto.request('PUT', `/${OTHER_BUCKET}/${OTHER_SECRET_KEY}`, { body: OTHER_SECRET_BYTES });
    await launchGateway();
  });

  // A block that killed the gateway has failed already; the next one gets a fresh process.
  beforeEach(async () => {
    if (gateway && !gatewayAlive()) {
      deaths.push(gateway.output().slice(-4000));
      await gateway.stop();
      await launchGateway();
    }
  });

  // Each block starts with nothing but the seeds upstream, whatever the one before left.
  afterEach(async () => {
    if (moto) await purgeUpstream();
  });

  afterAll(async () => {
    await gateway?.stop();
    await moto?.stop();
  });

  // -----------------------------------------------------------------------------------------------
  // The valid form every generator starts from

  interface BaseOptions {
    signer?: SigningIdentity;
    /** The bucket the policy names (default BUCKET). */
    policyBucket?: string;
    /** Fields between the description fields and the auth fields. */
    extra?: Part[];
    extraConditions?: unknown[];
    range?: [number, number] | null;
    expiration?: Date;
    /** The key field's value (default `<prefix>object.bin`). */
    key?: (prefix: string) => string;
  }

  interface BaseForm {
    prefix: string;
    key: string;
    boundary: string;
    /** Fields before the file, in order. */
    fields: Part[];
    file: Part;
  }

  function baseForm(file: Buffer, options: BaseOptions = {}): BaseForm {
    const n = ++caseNumber;
    const prefix = `${FUZZ_PREFIX}${n}/`;
    const key = options.key ? options.key(prefix) : `${prefix}object.bin`;
    const range = options.range === undefined ? [1, MAX_FILE_BYTES] : options.range;
    const conditions: unknown[] = [
      { bucket: options.policyBucket ?? BUCKET },
      ['starts-with', '$key', FUZZ_PREFIX],
      ['starts-with', '$Content-Type', ''],
      { 'x-amz-meta-origin': 'fuzz' },
      ...(range === null ? [] : [['content-length-range', range[0], range[1]]]),
      ...(options.extraConditions ?? []),
    ];
    const auth = signPolicy(options.signer ?? writer, conditions, options.expiration ? { expiration: options.expiration } : {});
    return {
      prefix,
      key,
      boundary: `----KeygateFuzzBoundary${n.toString(16).padStart(8, '0')}x${createHash('md5').update(String(n)).digest('hex').slice(0, 12)}`,
      fields: [
        field('key', key),
        field('Content-Type', 'application/x-fuzz'),
        field('x-amz-meta-origin', 'fuzz'),
        ...(options.extra ?? []),
        ...Object.entries(auth).map(([name, value]) => field(name, value)),
      ],
      file: field('file', file, { filename: 'upload.bin', headers: ['Content-Type: application/octet-stream'] }),
    };
  }

  /** The case for a form's parts, encoded (and framed) as given. */
  function formCase(
    label: string,
    form: BaseForm,
    parts: Part[],
    outcome: Outcome,
    options: { encoding?: Partial<Encoding>; framing?: Framing; bucket?: string } = {},
  ): Case {
    const encoding: Encoding = { boundary: form.boundary, ...options.encoding };
    const { body } = encodeForm(parts, encoding);
    const bucket = options.bucket ?? BUCKET;
    const contentType = encoding.contentType ?? `multipart/form-data; boundary=${form.boundary}`;
    return { label, request: formRequest(bucket, body, contentType, options.framing), outcome, bucket, prefix: form.prefix };
  }

  /** Bytes before the file as FORM_LIMITS.preDataBytes counts them: each field's name and value. */
  const preDataOf = (parts: Part[]) => parts.reduce((sum, part) => sum + part.name!.length + part.value.toString('utf8').length, 0);

  /** x-ignore- fields of at most 30 000 bytes each that bring the form's fields before the file to `total` bytes (when they are below). */
  function padding(form: BaseForm, total: number): Part[] {
    let rest = total - preDataOf(form.fields);
    const pads: Part[] = [];
    while (rest > 0) {
      const name = `x-ignore-pad${pads.length}`;
      const size = Math.min(30_000, rest) - name.length;
      if (size < 0) {
        // Too little left for another field: the previous one grows by the rest.
        const last = pads.at(-1);
        if (last) last.value = Buffer.concat([last.value, Buffer.alloc(rest, 'p')]);
        break;
      }
      pads.push(field(name, 'p'.repeat(size)));
      rest -= name.length + size;
    }
    return pads;
  }

  const storedBase = (form: BaseForm, bytes: Buffer = form.file.value): Outcome => ({ kind: 'stored', key: form.key, bytes });

  // -----------------------------------------------------------------------------------------------
  // Judging

  /** A key as a SigV4 path (RFC 3986: everything but unreserved characters and '/' percent-encoded). */
  function encodeKey(key: string): string {
    return key
      .split('/')
      .map((segment) => encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
      .join('/');
  }

  async function listKeys(bucket: string, prefix: string): Promise<string[]> {
    const listing = await moto.request('GET', `/${bucket}`, { query: `list-type=2&encoding-type=url&prefix=${encodeURIComponent(prefix)}` });
    expect(listing.status, listing.body.toString()).toBe(200);
    return [...listing.body.toString().matchAll(/<Key>([^<]*)<\/Key>/g)].map((match) => decodeURIComponent(match[1]!.replaceAll('+', ' ')));
  }

  /** A 4xx `<Error>` document with Code, Message and a gateway RequestId (16 hex digits). */
  function expectS3Error(response: RawResponse, context: string, expected: { status?: number; code?: string; message?: RegExp } = {}): void {
    if (expected.status !== undefined) expect(response.status, context).toBe(expected.status);
    expect(response.status, context).toBeGreaterThanOrEqual(400);
    expect(response.status, context).toBeLessThan(500);
    expect(response.headers['content-type'], context).toBe('application/xml');
    const error = (xml.parse(response.body) as { Error?: Record<string, unknown> }).Error;
    expect(error, context).toBeDefined();
    for (const name of ['Code', 'Message', 'RequestId'] as const) {
      expect(typeof error![name], `${name}: ${context}`).toBe('string');
      expect((error![name] as string).length, `${name}: ${context}`).toBeGreaterThan(0);
    }
    expect(error!.RequestId, `made by the gateway: ${context}`).toMatch(/^[0-9A-F]{16}$/);
    if (expected.code !== undefined) expect(error!.Code, context).toBe(expected.code);
    if (expected.message !== undefined) expect(error!.Message, context).toMatch(expected.message);
  }

  async function expectNothingStored(bucket: string, prefix: string, context: string): Promise<void> {
    expect(await listKeys(bucket, prefix), `nothing stored: ${context}`).toEqual([]);
  }

  /** Objects a case was meant to store (`bucket/key`), checked byte for byte; anything else upstream is a stray. */
  const legitimate = new Set<string>();

  /** The object stored under the prefix has exactly the file's bytes and the base form's metadata (no more). */
  async function expectStoredExactly(bucket: string, prefix: string, outcome: Extract<Outcome, { kind: 'stored' | 'either' }>, context: string): Promise<void> {
    let key = outcome.key;
    if (key === undefined) {
      const keys = await listKeys(bucket, prefix);
      expect(keys.length, `exactly one object: ${context} (found ${JSON.stringify(keys)})`).toBe(1);
      key = keys[0]!;
    }
    legitimate.add(`${bucket}/${key}`);
    const stored = await moto.request('GET', `/${bucket}/${encodeKey(key)}`);
    expect(stored.status, `${key}: ${context}`).toBe(200);
    expect(
      stored.body.equals(outcome.bytes),
      `stored bytes ${stored.body.subarray(0, 48).toString('hex')}… (${stored.body.length}) differ from the file's ${outcome.bytes.subarray(0, 48).toString('hex')}… (${outcome.bytes.length}): ${context}`,
    ).toBe(true);
    const headers = outcome.headers ?? BASE_OBJECT_HEADERS;
    for (const [name, value] of Object.entries(headers)) expect(stored.headers[name], `${name}: ${context}`).toBe(value);
    const meta = Object.keys(stored.headers)
      .filter((name) => name.startsWith('x-amz-meta-'))
      .sort();
    expect(meta, `metadata: ${context}`).toEqual([...(outcome.meta ?? BASE_META)].sort());
    expect(stored.headers['content-encoding'], context).toBeUndefined();
  }

  /** Every object but the seeds, per bucket. */
  async function nonSeedObjects(): Promise<Array<[string, string]>> {
    return [
      ...(await listKeys(BUCKET, '')).filter((key) => key !== SEED_KEY).map((key): [string, string] => [BUCKET, key]),
      ...(await listKeys(OTHER_BUCKET, '')).filter((key) => key !== OTHER_SECRET_KEY).map((key): [string, string] => [OTHER_BUCKET, key]),
    ];
  }

  /** Removes every object but the seeds (one DeleteObjects request per bucket). */
  async function purgeUpstream(): Promise<void> {
    const objects = await nonSeedObjects();
    for (const bucket of [BUCKET, OTHER_BUCKET]) {
      const keys = objects.filter(([b]) => b === bucket).map(([, key]) => key);
      // Keys XML cannot carry (control characters) one by one, the rest in batches.
      // eslint-disable-next-line no-control-regex -- control characters are what is looked for
      const unbatchable = (k: string) => /[\x00-\x1f]/.test(k);
      for (const key of keys.filter(unbatchable)) await moto.request('DELETE', `/${bucket}/${encodeKey(key)}`);
      const batchable = keys.filter((k) => !unbatchable(k));
      for (let at = 0; at < batchable.length; at += 1000) {
        const escape = (key: string) => key.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
        const body = Buffer.from(
          `<Delete><Quiet>true</Quiet>${batchable
            .slice(at, at + 1000)
            .map((key) => `<Object><Key>${escape(key)}</Key></Object>`)
            .join('')}</Delete>`,
        );
        const deleted = await moto.request('POST', `/${bucket}`, {
          query: 'delete',
          body,
          headers: { 'content-md5': createHash('md5').update(body).digest('base64'), 'content-type': 'application/xml' },
        });
        expect(deleted.status, deleted.body.toString()).toBe(200);
      }
    }
    legitimate.clear();
  }

  async function send(request: RawRequest, options: ExchangeOptions = {}): Promise<RawResponse> {
    return exchange(port, request, { timeoutMs: REQUEST_TIMEOUT_MS, ...options });
  }

  /**
   * The process is alive and answers /_health. Asked after the response: a failure the gateway hits
   * after answering (an unhandled rejection) ends the process before it reads the next request.
   */
  async function expectServing(context: string): Promise<void> {
    const healthy = await fetch(`${gateway.url}/_health`, { signal: AbortSignal.timeout(5_000) }).then(
      (response) => response.status === 200,
      () => false,
    );
    expect(healthy && gatewayAlive(), `the gateway stopped serving after ${context}\n${gateway.output().slice(-2000)}`).toBe(true);
  }

  async function judge(c: Case): Promise<void> {
    let response: RawResponse;
    try {
      response = await send(c.request, c.exchange);
    } catch (error) {
      const alive = gatewayAlive();
      throw new Error(`${c.label}: ${(error as Error).message}${alive ? '' : ` (the gateway process died)\n${gateway.output().slice(-2000)}`}`);
    }
    const context = `${c.label} -> ${response.status} ${response.body.slice(0, 400)}`;
    await expectServing(context);
    const succeeded = SUCCESS_STATUSES.includes(response.status);
    const { outcome } = c;
    if (outcome.kind === 'refused' || (outcome.kind === 'either' && !succeeded)) {
      expectS3Error(response, context, outcome.kind === 'refused' ? outcome : {});
      await expectNothingStored(c.bucket, c.prefix, context);
      return;
    }
    if (outcome.kind === 'stored') {
      expect(response.status, context).toBe(outcome.status ?? 204);
      outcome.answer?.(response, context);
    } else expect(SUCCESS_STATUSES, context).toContain(response.status);
    // A redirect's Location is built from form input: it must not carry anything injected.
    for (const value of Object.values(response.headers)) expect(value, context).not.toMatch(/[\r\n]/);
    expect(response.headers['set-cookie'], context).toBeUndefined();
    await expectStoredExactly(c.bucket, c.prefix, outcome, context);
  }

  /** The end of every block: the process is up and serving, and nothing but what the cases stored is upstream. */
  async function expectGatewayUpAndUpstreamClean(): Promise<void> {
    expect(gatewayAlive(), `the gateway process died:\n${gateway.output().slice(-3000)}`).toBe(true);
    expect((await fetch(`${gateway.url}/_health`)).status).toBe(200);
    const strays = (await nonSeedObjects()).map(([bucket, key]) => `${bucket}/${key}`).filter((object) => !legitimate.has(object));
    expect(strays, 'objects upstream that no case was meant to store').toEqual([]);
    expect((await moto.request('GET', `/${BUCKET}/${SEED_KEY}`)).body.equals(SEED_BYTES)).toBe(true);
    expect((await moto.request('GET', `/${OTHER_BUCKET}/${OTHER_SECRET_KEY}`)).body.equals(OTHER_SECRET_BYTES)).toBe(true);
  }

  const fileBytes = fc.uint8Array({ minLength: 1, maxLength: 1500 }).map((bytes) => Buffer.from(bytes));
  const asciiText = (chars: string, options: { minLength?: number; maxLength?: number } = {}) => fc.string({ unit: fc.constantFrom(...chars), ...options });

  // -----------------------------------------------------------------------------------------------

  it('starts from a valid signed form: the gateway stores it (204) and moto has its exact bytes', async () => {
    for (const file of [Buffer.from('hello, form'), Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff))]) {
      const form = baseForm(file);
      await judge(formCase('valid base form', form, [...form.fields, form.file], storedBase(form)));
    }
    // The same form, every field sent as a file part (read as fields, as S3 does).
    const form = baseForm(Buffer.from('fields as files'));
    const parts = [...form.fields.map((part) => ({ ...part, filename: `${part.name}.txt` })), form.file];
    await judge(formCase('every field as a file part', form, parts, storedBase(form)));
    await expectGatewayUpAndUpstreamClean();
  });

  // -----------------------------------------------------------------------------------------------
  // Field names and order

  /** Fields named like S3 internals, with what a policy that covers them must lead to. */
  const INTERNAL_FIELDS: Array<{ name: string; value: string; covered: 'stored' | 'refused' }> = [
    // Another operation's headers: dropped, never acted on (no copy, no directive).
    { name: 'x-amz-copy-source', value: `/${BUCKET}/${SEED_KEY}`, covered: 'stored' },
    { name: 'x-amz-copy-source', value: `${OTHER_BUCKET}/${OTHER_SECRET_KEY}`, covered: 'stored' },
    { name: 'x-amz-copy-source-range', value: 'bytes=0-3', covered: 'stored' },
    { name: 'x-amz-metadata-directive', value: 'COPY', covered: 'stored' },
    { name: 'x-amz-bypass-governance-retention', value: 'true', covered: 'stored' },
    { name: 'x-amz-expected-bucket-owner', value: '123456789012', covered: 'stored' },
    // Framing and auth headers of the upstream request are the gateway's own.
    {
      name: 'authorization',
      value: 'AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20300101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00',
      covered: 'stored',
    },
    { name: 'host', value: 'evil.example', covered: 'stored' },
    { name: 'content-length', value: '1', covered: 'stored' },
    { name: 'transfer-encoding', value: 'chunked', covered: 'stored' },
    { name: 'x-amz-content-sha256', value: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', covered: 'stored' },
    { name: 'x-amz-decoded-content-length', value: '1', covered: 'stored' },
    { name: 'content-encoding', value: 'aws-chunked', covered: 'stored' },
    { name: 'x-amz-security-token', value: 'token', covered: 'stored' },
    { name: 'x-amz-acl', value: 'private', covered: 'stored' },
    // Powers a read-write key does not have.
    { name: 'x-amz-acl', value: 'public-read', covered: 'refused' },
    { name: 'acl', value: 'public-read-write', covered: 'refused' },
    { name: 'ACL', value: 'authenticated-read', covered: 'refused' },
    { name: 'x-amz-grant-read', value: 'uri="http://acs.amazonaws.com/groups/global/AllUsers"', covered: 'refused' },
    { name: 'x-amz-grant-full-control', value: 'id=123', covered: 'refused' },
    { name: 'x-amz-object-lock-mode', value: 'COMPLIANCE', covered: 'refused' },
    { name: 'x-amz-object-lock-retain-until-date', value: '2099-01-01T00:00:00Z', covered: 'refused' },
    { name: 'x-amz-object-lock-legal-hold', value: 'ON', covered: 'refused' },
    { name: 'x-amz-server-side-encryption', value: 'aws:kms', covered: 'refused' },
    { name: 'x-amz-server-side-encryption-aws-kms-key-id', value: 'arn:aws:kms:us-east-1:123456789012:key/x', covered: 'refused' },
  ];

  /** Keys that satisfy starts-with but have dot segments (refused for a per-bucket key), and look-alikes that are plain names. */
  const DOT_KEYS: Array<{ key: (prefix: string) => string; refused: boolean }> = [
    { key: (p) => `${p}../../${OTHER_BUCKET}/escape.bin`, refused: true },
    { key: (p) => `${p}..`, refused: true },
    { key: (p) => `${p}./object.bin`, refused: true },
    { key: (p) => `${p}a/../../..`, refused: true },
    { key: (p) => `${p}.`, refused: true },
    { key: (p) => `${p}a/./b`, refused: true },
    { key: (p) => `${p}...`, refused: false },
    { key: (p) => `${p}..x/.y`, refused: false },
    { key: (p) => `${p}..%2F..%2Fescape`, refused: false },
  ];

  /** Checks a successful form's answer: the 303 Location, the 201 PostResponse, or an empty 200/204. */
  function successAnswer(key: string, bytes: Buffer, redirect: string | null) {
    const etag = `"${createHash('md5').update(bytes).digest('hex')}"`;
    return (response: RawResponse, context: string) => {
      if (response.status === 303) {
        const location = new URL(response.headers.location!);
        const expected = new URL(redirect!);
        expect(location.origin + location.pathname, context).toBe(expected.origin + expected.pathname);
        expect(location.searchParams.get('bucket'), context).toBe(BUCKET);
        expect(location.searchParams.get('key'), context).toBe(key);
        expect(location.searchParams.get('etag'), context).toBe(etag);
      } else if (response.status === 201) {
        const document = (xml.parse(response.body) as { PostResponse?: Record<string, string> }).PostResponse;
        expect(document, context).toBeDefined();
        expect(document!.Bucket, context).toBe(BUCKET);
        expect(document!.Key, context).toBe(key);
        expect(document!.ETag, context).toBe(etag);
        expect(decodeURIComponent(new URL(document!.Location!).pathname), context).toBe(`/${BUCKET}/${key}`);
      } else {
        expect(response.body, context).toBe('');
        expect(response.headers.etag, context).toBe(etag);
      }
    };
  }

  const ODD_NAME_CHARS = " !#$%&'()*+,./:;<=>?@[]^_`{|}~éü中\u00a0";
  const oddName = fc
    .tuple(asciiText('abcxyz-', { maxLength: 6 }), asciiText(ODD_NAME_CHARS, { minLength: 1, maxLength: 8 }), asciiText('abc-', { maxLength: 4 }))
    .map(([a, b, c]) => a + b + c);

  it('field names and order: duplicates, case, the file part moved/missing/twice, fields after the file, odd/empty/long names, S3 internals', async () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('duplicate' as const), index: fc.nat(), at: fc.nat(), sameValue: fc.boolean(), otherCase: fc.boolean() }),
      fc.record({ kind: fc.constant('case' as const), index: fc.nat(), mask: fc.nat() }),
      fc.record({ kind: fc.constant('shuffle' as const), order: fc.array(fc.double({ noNaN: true }), { minLength: 20, maxLength: 20 }) }),
      fc.record({ kind: fc.constant('file-earlier' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('file-missing' as const) }),
      fc.record({ kind: fc.constant('file-twice' as const), second: fileBytes, secondAsField: fc.boolean() }),
      fc.record({
        kind: fc.constant('after-file' as const),
        fields: fc.array(
          fc.constantFrom<[string, string]>(
            ['x-amz-meta-after', 'after the file'],
            ['key', 'fuzz/elsewhere.bin'],
            ['x-amz-acl', 'public-read'],
            ['bucket', OTHER_BUCKET],
            ['Content-Type', 'text/evil'],
            ['policy', 'garbage'],
            ['file', 'a second file, as a field'],
            ['x-amz-copy-source', `/${BUCKET}/${SEED_KEY}`],
          ),
          { minLength: 1, maxLength: 6 },
        ),
      }),
      fc.record({
        kind: fc.constant('odd-name' as const),
        prefix: fc.constantFrom('', 'x-ignore-', 'X-Ignore-'),
        name: oddName,
        at: fc.nat(),
        asFile: fc.boolean(),
      }),
      fc.record({
        kind: fc.constant('wild-name' as const),
        name: fc.constantFrom('a"b', 'a\\"b', 'x-ignore-\\', 'x-amz-meta-a\tb', 'x-ignore-\u0000', '"', 'key"; name="x'),
        at: fc.nat(),
      }),
      fc.record({
        kind: fc.constant('nameless' as const),
        disposition: fc.constantFrom<string | null>(
          'form-data; name=""',
          'form-data',
          'form-data; filename="x.bin"',
          'form-data; name=""; filename="x.bin"',
          'form-data; name=',
          null,
          'attachment; name="x-amz-meta-evil"',
          'form-data; NAME="x-ignore-upper"',
        ),
        at: fc.nat(),
        asFile: fc.boolean(),
      }),
      fc.record({
        kind: fc.constant('long-name' as const),
        length: fc.integer({ min: LIMITS.fieldNameBytes + 1, max: 20_000 }),
        prefix: fc.constantFrom('', 'x-ignore-', 'x-amz-meta-'),
      }),
      fc.record({ kind: fc.constant('internal' as const), which: fc.nat({ max: INTERNAL_FIELDS.length - 1 }), covered: fc.boolean() }),
      fc.record({ kind: fc.constant('bucket-field' as const), value: fc.constantFrom(BUCKET, OTHER_BUCKET, BUCKET.toUpperCase(), `${BUCKET} `, '') }),
      fc.record({ kind: fc.constant('dot-key' as const), which: fc.nat({ max: DOT_KEYS.length - 1 }) }),
      fc.record({
        kind: fc.constant('success' as const),
        status: fc.constantFrom<string | null>(null, '200', '201', '204', '303', '', 'abc', ' 201'),
        redirect: fc.constantFrom<string | null>(
          null,
          'https://app.example/done?from=form',
          'http://app.example/',
          'javascript:alert(1)',
          '/relative',
          'http://',
          'ftp://app.example/',
        ),
        keySuffix: fc.constantFrom('plain.bin', `a&b<c>"d'e`, ']]>', 'sp ace+plus', '%41%2F', 'ü/中'),
      }),
    );

    await fc.assert(
      fc.asyncProperty(mutation, fileBytes, async (m, file) => {
        let form = baseForm(file);
        const fields = [...form.fields];
        let parts: Part[];
        let outcome: Outcome = storedBase(form);
        switch (m.kind) {
          case 'duplicate': {
            const original = fields[m.index % fields.length]!;
            const copy = field(m.otherCase ? invertCase(original.name!) : original.name!, m.sameValue ? original.value : text('another value'));
            fields.splice(m.at % (fields.length + 1), 0, copy);
            parts = [...fields, form.file];
            outcome = { kind: 'refused', status: 400, code: 'InvalidArgument', message: /more than once/ };
            break;
          }
          case 'case': {
            const all = [...fields, form.file];
            const index = m.index % all.length;
            all[index] = { ...all[index]!, name: toggleCase(all[index]!.name!, m.mask) };
            parts = all;
            break;
          }
          case 'shuffle': {
            const order = fields.map((part, i) => ({ part, weight: m.order[i]! }));
            parts = [...order.sort((a, b) => a.weight - b.weight).map(({ part }) => part), form.file];
            break;
          }
          case 'file-earlier':
            // Fields after the file are ignored: the signature (last) is lost, whatever else is.
            fields.splice(m.at % fields.length, 0, form.file);
            parts = fields;
            outcome = { kind: 'refused' };
            break;
          case 'file-missing':
            parts = fields;
            outcome = { kind: 'refused', status: 400, code: 'InvalidArgument', message: /exactly one file/ };
            break;
          case 'file-twice':
            // Anything after the first file is ignored (or the form refused): never the second file's bytes.
            parts = [...fields, form.file, m.secondAsField ? field('file', m.second) : field('file', m.second, { filename: 'second.bin' })];
            outcome = { kind: 'either', key: form.key, bytes: file };
            break;
          case 'after-file':
            parts = [...fields, form.file, ...m.fields.map(([name, value]) => field(name, value))];
            break;
          case 'odd-name': {
            const name = m.prefix + m.name;
            fields.splice(m.at % (fields.length + 1), 0, field(name, 'odd', m.asFile ? { filename: 'odd.txt' } : {}));
            parts = [...fields, form.file];
            outcome = m.prefix === '' ? { kind: 'refused', status: 403, code: 'AccessDenied', message: /Extra input fields/ } : storedBase(form);
            break;
          }
          case 'wild-name':
            fields.splice(m.at % (fields.length + 1), 0, field(m.name, 'wild'));
            parts = [...fields, form.file];
            outcome = { kind: 'either', key: form.key, bytes: file };
            break;
          case 'nameless':
            // A part without a (usable) name: ignored or refused, never fatal.
            fields.splice(m.at % (fields.length + 1), 0, {
              name: null,
              value: text('nameless'),
              disposition: m.disposition,
              headers: m.asFile ? ['Content-Type: application/octet-stream'] : [],
            });
            parts = [...fields, form.file];
            outcome = { kind: 'either', key: form.key, bytes: file };
            break;
          case 'long-name':
            // Longer than FORM_LIMITS.fieldNameBytes: refused whatever its prefix.
            fields.splice(3, 0, field(m.prefix + 'n'.repeat(m.length - m.prefix.length), 'long'));
            parts = [...fields, form.file];
            outcome = { kind: 'refused' };
            break;
          case 'internal': {
            const internal = INTERNAL_FIELDS[m.which]!;
            form = baseForm(file, {
              extra: [field(internal.name, internal.value)],
              extraConditions: m.covered ? [['eq', `$${internal.name}`, internal.value]] : [],
            });
            parts = [...form.fields, form.file];
            if (!m.covered) outcome = { kind: 'refused', status: 403, code: 'AccessDenied', message: /Extra input fields/ };
            else if (internal.covered === 'refused') outcome = { kind: 'refused', status: 403, code: 'AccessDenied' };
            else outcome = storedBase(form);
            break;
          }
          case 'bucket-field':
            form = baseForm(file, { extra: [field('bucket', m.value)] });
            parts = [...form.fields, form.file];
            outcome = m.value === BUCKET ? storedBase(form) : { kind: 'refused' };
            break;
          case 'success': {
            // The form's own answer: success_action_redirect (a usable http(s) URL) wins, then success_action_status, else 204.
            const extra = [
              ...(m.status === null ? [] : [field('success_action_status', m.status)]),
              ...(m.redirect === null ? [] : [field('success_action_redirect', m.redirect)]),
            ];
            form = baseForm(file, {
              key: (prefix) => `${prefix}${m.keySuffix}`,
              extra,
              extraConditions: extra.map((part) => ['eq', `$${part.name}`, part.value.toString()]),
            });
            parts = [...form.fields, form.file];
            const redirect = m.redirect !== null && /^https?:\/\/[^/]/.test(m.redirect) ? m.redirect : null;
            const status = redirect !== null ? 303 : m.status === '200' ? 200 : m.status === '201' ? 201 : 204;
            outcome = { kind: 'stored', key: form.key, bytes: file, status, answer: successAnswer(form.key, file, redirect) };
            break;
          }
          case 'dot-key': {
            const dot = DOT_KEYS[m.which]!;
            form = baseForm(file, { key: dot.key });
            parts = [...form.fields, form.file];
            outcome = dot.refused ? { kind: 'refused', status: 400, code: 'InvalidArgument' } : storedBase(form);
            break;
          }
        }
        await judge(formCase(JSON.stringify(m).slice(0, 300), form, parts, outcome));
      }),
      { ...FUZZ, numRuns: 120 },
    );
    await expectGatewayUpAndUpstreamClean();
  });

  it('a part without a name (name="" or no name parameter) is ignored or refused, never fatal', async () => {
    for (const disposition of ['form-data; name=""', 'form-data', 'form-data; filename="x.bin"', 'form-data; name=""; filename="x.bin"']) {
      const form = baseForm(Buffer.from('nameless'));
      const nameless: Part = { name: null, value: text('v'), disposition };
      await judge(
        formCase(`a part with Content-Disposition: ${disposition}`, form, [nameless, ...form.fields, form.file], {
          kind: 'either',
          key: form.key,
          bytes: form.file.value,
        }),
      );
    }
    await expectGatewayUpAndUpstreamClean();
  });

  it('a form whose Content-Type has no usable boundary is refused (400 MalformedPOSTRequest), and the gateway survives it', async () => {
    for (const contentType of ['multipart/form-data', 'multipart/form-data; boundary=', 'multipart/form-data; charset=utf-8']) {
      const form = baseForm(Buffer.from('no boundary'));
      await judge(
        formCase(
          `Content-Type: ${contentType}`,
          form,
          [...form.fields, form.file],
          { kind: 'refused', status: 400, code: 'MalformedPOSTRequest' },
          { encoding: { contentType } },
        ),
      );
    }
    await expectGatewayUpAndUpstreamClean();
  });

  it('a field declared in a charset the multipart parser does not know is refused or read, never fatal', async () => {
    for (const charset of ['iso-8859-2', 'shift_jis', 'utf-16be']) {
      const form = baseForm(Buffer.from('charset'));
      const declared = field('x-ignore-note', 'plain ASCII', { headers: [`Content-Type: text/plain; charset=${charset}`] });
      await judge(
        formCase(`a field with Content-Type: text/plain; charset=${charset}`, form, [...form.fields, declared, form.file], {
          kind: 'either',
          key: form.key,
          bytes: form.file.value,
        }),
      );
    }
    await expectGatewayUpAndUpstreamClean();
  });

  // -----------------------------------------------------------------------------------------------
  // File parts

  it('file parts: fields sent as files, huge and many parts, empty and oversized files, odd file parts', async () => {
    const mutation = fc.oneof(
      fc.record({
        kind: fc.constant('fields-as-files' as const),
        mask: fc.integer({ min: 1, max: 255 }),
        filename: fc.constantFrom('a.txt', '', '../../etc/passwd', 'C:\\x\\y.bin', 'ü.txt'),
        withType: fc.boolean(),
        // Sent in pieces, so part boundaries fall anywhere between the parser's reads.
        pieceBytes: fc.option(fc.integer({ min: 16, max: 700 }), { nil: undefined }),
        padding: fc.option(fc.integer({ min: 1, max: 8_000 }), { nil: undefined }),
      }),
      fc.record({ kind: fc.constant('octet-stream-field' as const), index: fc.nat() }),
      fc.record({
        kind: fc.constant('huge-as-file' as const),
        size: fc.integer({ min: LIMITS.fieldValueBytes + 1, max: 96 * 1024 }),
        name: fc.constantFrom('x-ignore-blob', 'key', 'policy', 'x-amz-meta-origin'),
      }),
      fc.record({
        kind: fc.constant('huge-field' as const),
        size: fc.integer({ min: LIMITS.fieldValueBytes + 1, max: 96 * 1024 }),
        name: fc.constantFrom('x-ignore-blob', 'Content-Type'),
      }),
      fc.record({
        kind: fc.constant('many-parts' as const),
        fields: fc.oneof(fc.integer({ min: 1, max: 160 }), fc.integer({ min: LIMITS.fields - 10, max: LIMITS.fields + 5 })),
        asFiles: fc.boolean(),
      }),
      fc.record({ kind: fc.constant('zero-byte' as const), allowEmpty: fc.boolean() }),
      fc.record({ kind: fc.constant('size-vs-range' as const), max: fc.integer({ min: 1, max: 3000 }), size: fc.integer({ min: 0, max: 6000 }) }),
      fc.record({
        kind: fc.constant('file-part-headers' as const),
        headers: fc.subarray([
          'Content-Type: text/plain; charset=utf-16le',
          'Content-Type: multipart/mixed; boundary=inner',
          'Content-Type: ;;;',
          'Content-Transfer-Encoding: base64',
          'Content-Length: 1',
          'X-Extra: yes',
          'Content-Type: text/html; charset=iso-8859-1',
        ]),
      }),
      fc.record({ kind: fc.constant('file-as-text-field' as const), charset: fc.constantFrom(null, 'utf-8', 'iso-8859-1') }),
      fc.record({
        kind: fc.constant('filename-template' as const),
        filename: fc.constantFrom('photo.jpg', '', '..', '.', '../x', 'a/../..', 'C:\\dir\\..', 'dir/photo.jpg', 'a b+c%20d.txt', 'ü中.txt', '%2e%2e'),
      }),
    );
    await fc.assert(
      fc.asyncProperty(mutation, fileBytes, async (m, file) => {
        let form = baseForm(file);
        let parts: Part[] = [...form.fields, form.file];
        let outcome: Outcome = storedBase(form);
        let exchangeOptions: ExchangeOptions | undefined;
        switch (m.kind) {
          case 'fields-as-files': {
            // Parts sent as files but named like fields are read as fields: the form still works, whole
            // (a large one, an x-amz-meta- field covered by the policy, arrives before the file is read).
            const asFile = (part: Part): Part => ({ ...part, filename: m.filename, headers: m.withType ? ['Content-Type: application/octet-stream'] : [] });
            const note = m.padding === undefined ? [] : [field('x-amz-meta-note', 'n'.repeat(m.padding))];
            form = baseForm(file, { extra: note, extraConditions: note.length === 0 ? [] : [['starts-with', '$x-amz-meta-note', '']] });
            parts = [...form.fields.map((part, i) => ((m.mask >> (i % 8)) & 1 || part.name === 'x-amz-meta-note' ? asFile(part) : part)), form.file];
            outcome = { kind: 'stored', key: form.key, bytes: file, ...(note.length === 0 ? {} : { meta: ['x-amz-meta-origin', 'x-amz-meta-note'] }) };
            if (m.pieceBytes !== undefined) exchangeOptions = { pieceBytes: m.pieceBytes, pauseMs: 0 };
            break;
          }
          case 'octet-stream-field': {
            const index = m.index % form.fields.length;
            parts = [...form.fields.map((part, i) => (i === index ? { ...part, headers: ['Content-Type: application/octet-stream'] } : part)), form.file];
            break;
          }
          case 'huge-as-file':
          case 'huge-field': {
            const padding = 'p'.repeat(m.size);
            const asFile = m.kind === 'huge-as-file' ? { filename: 'huge.txt' } : {};
            const huge = field(m.name, padding, asFile);
            const fields = m.name === 'x-ignore-blob' ? [...form.fields, huge] : form.fields.map((part) => (part.name === m.name ? huge : part));
            parts = [...fields, form.file];
            outcome = { kind: 'refused', status: 400, code: 'MaxPostPreDataLengthExceededError' };
            break;
          }
          case 'many-parts': {
            const extra = Math.max(0, m.fields - form.fields.length);
            const ignored = Array.from({ length: extra }, (_, i) => field(`x-ignore-${i}`, 'v', m.asFiles && i % 2 === 0 ? { filename: `${i}.txt` } : {}));
            parts = [...form.fields, ...ignored, form.file];
            const total = form.fields.length + extra;
            // FORM_LIMITS.fields: at most 100 fields before the file.
            outcome = total <= LIMITS.fields ? storedBase(form) : { kind: 'refused', status: 400, code: 'MaxPostPreDataLengthExceededError' };
            break;
          }
          case 'zero-byte':
            form = baseForm(Buffer.alloc(0), { range: m.allowEmpty ? [0, MAX_FILE_BYTES] : [1, MAX_FILE_BYTES] });
            parts = [...form.fields, form.file];
            outcome = m.allowEmpty ? storedBase(form) : { kind: 'refused', status: 400, code: 'EntityTooSmall' };
            break;
          case 'size-vs-range': {
            const sized = Buffer.alloc(m.size, m.size & 0xff);
            form = baseForm(sized, { range: [1, m.max] });
            parts = [...form.fields, form.file];
            if (m.size === 0) outcome = { kind: 'refused', status: 400, code: 'EntityTooSmall' };
            else if (m.size > m.max) outcome = { kind: 'refused', status: 400, code: 'EntityTooLarge' };
            else outcome = storedBase(form);
            break;
          }
          case 'file-part-headers':
            // A file part's own headers do not change its bytes.
            parts = [...form.fields, { ...form.file, headers: m.headers }];
            break;
          case 'file-as-text-field':
            // "file" as a plain field (no filename: `curl -F 'file=<data.bin'`): still the file, byte for byte.
            parts = [...form.fields, field('file', file, m.charset === null ? {} : { headers: [`Content-Type: text/plain; charset=${m.charset}`] })];
            // A part that declares UTF-8 is UTF-8 text: bytes that are not are read as U+FFFD (the
            // multipart parser decodes declared charsets; docs/browser-uploads.md says to send files as file parts).
            if (m.charset === 'utf-8') outcome = storedBase(form, Buffer.from(file.toString('utf8')));
            break;
          case 'filename-template':
            form = baseForm(file, { key: (prefix) => `${prefix}\${filename}` });
            parts = [...form.fields, { ...form.file, filename: m.filename }];
            // Whatever ${filename} became, it is under the prefix with the file's bytes, or refused.
            outcome = { kind: 'either', bytes: file };
            break;
        }
        await judge({ ...formCase(JSON.stringify(m).slice(0, 300), form, parts, outcome), exchange: exchangeOptions });
      }),
      { ...FUZZ, numRuns: 100 },
    );
    await expectGatewayUpAndUpstreamClean();
  });

  it('a file sent as a plain field (no filename) is stored byte for byte, not re-encoded as UTF-8', async () => {
    const binary = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x41, 0xc3, 0x28, 0xe9]);
    for (const headers of [[], ['Content-Type: text/plain; charset=iso-8859-1']]) {
      const form = baseForm(binary);
      await judge(formCase(`file as a plain field ${JSON.stringify(headers)}`, form, [...form.fields, field('file', binary, { headers })], storedBase(form)));
    }
    await expectGatewayUpAndUpstreamClean();
  });

  it('enforces the documented limits on what comes before the file at their exact boundaries', async () => {
    const mismatches: string[] = [];
    const check = async (label: string, parts: (form: BaseForm) => Part[], shouldStore: boolean) => {
      const form = baseForm(Buffer.from('limits'));
      const response = await send(formCase(label, form, parts(form), storedBase(form)).request);
      const stored = (await listKeys(BUCKET, form.prefix)).length > 0;
      if (stored) await moto.request('DELETE', `/${BUCKET}/${encodeKey(form.key)}`);
      const got = `${response.status} ${/<Code>([^<]*)/.exec(response.body)?.[1] ?? ''}`.trim();
      if (shouldStore !== (SUCCESS_STATUSES.includes(response.status) && stored) || (!shouldStore && (response.status < 400 || response.status >= 500))) {
        mismatches.push(`${label}: expected ${shouldStore ? 'stored' : 'a 4xx refusal'}, got ${got}${stored ? ' (stored)' : ''}`);
      }
    };
    const ignored = (form: BaseForm, count: number) => Array.from({ length: count - form.fields.length }, (_, i) => field(`x-ignore-${i}`, 'v'));
    for (const count of [LIMITS.fields - 1, LIMITS.fields, LIMITS.fields + 1]) {
      await check(`${count} fields before the file`, (form) => [...form.fields, ...ignored(form, count), form.file], count <= LIMITS.fields);
    }
    for (const size of [LIMITS.fieldValueBytes - 1, LIMITS.fieldValueBytes, LIMITS.fieldValueBytes + 1]) {
      await check(`a ${size}-byte field value`, (form) => [...form.fields, field('x-ignore-big', 'v'.repeat(size)), form.file], size <= LIMITS.fieldValueBytes);
      await check(
        `a ${size}-byte field sent as a file part`,
        (form) => [...form.fields, field('x-ignore-big', 'v'.repeat(size), { filename: 'big.txt' }), form.file],
        size <= LIMITS.fieldValueBytes,
      );
    }
    for (const length of [LIMITS.fieldNameBytes, LIMITS.fieldNameBytes + 1, 4096]) {
      const name = `x-ignore-${'n'.repeat(length - 'x-ignore-'.length)}`;
      await check(`a ${length}-byte field name`, (form) => [...form.fields, field(name, 'v'), form.file], length <= LIMITS.fieldNameBytes);
    }
    for (const delta of [0, 1]) {
      // Pre-file data counts each field's name and value; pad to exactly the limit, then one more byte.
      await check(
        `${LIMITS.preDataBytes + delta} bytes of fields before the file`,
        (form) => [...form.fields, ...padding(form, LIMITS.preDataBytes + delta), form.file],
        delta === 0,
      );
    }
    expect(gatewayAlive()).toBe(true);
    expect(mismatches).toEqual([]);
  });

  // -----------------------------------------------------------------------------------------------
  // Encodings

  /** Charsets in which the ASCII field values read the same, and charsets in which they may not (or that are unknown). */
  const ASCII_CHARSETS = ['utf-8', 'UTF-8', 'us-ascii', 'iso-8859-1', 'latin1', 'windows-1252'];
  const OTHER_CHARSETS = ['iso-8859-2', 'shift_jis', 'utf-16be', 'koi8-r', 'x-unknown'];

  it('encodings: boundaries in the content, missing final boundary, LF-only lines, preamble/epilogue, Content-Type parameters, part charsets and transfer encodings, non-UTF-8 and CR/LF in values', async () => {
    const mutation = fc.oneof(
      fc.record({
        kind: fc.constant('boundary-in-content' as const),
        variant: fc.constantFrom('no-crlf', 'dashes-only', 'closing-inside', 'delimiter-inside'),
        at: fc.nat(),
      }),
      fc.record({
        kind: fc.constant('missing-final' as const),
        closing: fc.constantFrom('none' as const, 'no-dashes' as const, 'one-dash' as const, 'no-crlf-before' as const),
      }),
      fc.record({ kind: fc.constant('lf-only' as const), scope: fc.constantFrom('everywhere', 'part-headers', 'delimiters') }),
      fc.record({
        kind: fc.constant('preamble' as const),
        garbage: asciiText('abcdef XYZ0189.;:!\r\n\t', { minLength: 1, maxLength: 200 }),
        crlf: fc.boolean(),
      }),
      fc.record({ kind: fc.constant('epilogue' as const), garbage: fc.uint8Array({ minLength: 1, maxLength: 300 }) }),
      fc.record({
        kind: fc.constant('no-boundary' as const),
        contentType: fc.constantFrom(
          'multipart/form-data',
          'multipart/form-data;',
          'multipart/form-data; boundary=',
          'multipart/form-data; boundary=""',
          'multipart/form-data; charset=utf-8',
          'multipart/form-data; boundary=wrong-boundary',
          'multipart/form-data; boundary',
          'multipart/form-data-x; boundary=x',
        ),
      }),
      fc.record({
        kind: fc.constant('not-a-form' as const),
        contentType: fc.constantFrom('multipart/mixed', 'application/x-www-form-urlencoded', 'text/plain', 'application/octet-stream'),
        withBoundary: fc.boolean(),
      }),
      fc.record({
        kind: fc.constant('content-type-params' as const),
        quoted: fc.boolean(),
        charset: fc.constantFrom(null, 'utf-8', 'UTF-8', 'iso-8859-1', 'x-unknown'),
        charsetFirst: fc.boolean(),
        typeCase: fc.nat(),
        paramCase: fc.boolean(),
        spaces: fc.constantFrom('', ' ', '  ', '\t'),
      }),
      fc.record({
        kind: fc.constant('boundary-needs-quotes' as const),
        boundary: fc.constantFrom('a b', 'x:y', 'q?=r', "'()+_,-./:=?", 'a'.repeat(70), 'b'.repeat(200)),
        quoted: fc.boolean(),
      }),
      fc.record({ kind: fc.constant('part-charset' as const), index: fc.nat(), charset: fc.constantFrom(...ASCII_CHARSETS, 'utf-16le', ...OTHER_CHARSETS) }),
      fc.record({
        kind: fc.constant('transfer-encoding' as const),
        index: fc.nat(),
        encoding: fc.constantFrom('7bit', '8bit', 'binary', 'base64', 'quoted-printable', 'x-gzip'),
      }),
      fc.record({
        kind: fc.constant('non-utf8' as const),
        target: fc.constantFrom('x-ignore', 'meta-origin', 'content-type', 'key', 'meta-covered'),
        bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }).map((bytes) => [...bytes].map((b) => 0x80 | b)),
      }),
      fc.record({
        kind: fc.constant('crlf-injection' as const),
        target: fc.constantFrom('content-type', 'meta-covered', 'cache-control', 'key', 'redirect'),
        payload: fc.constantFrom('\r\nx-amz-acl: public-read', '\nSet-Cookie: a=b', '\r', '\r\n\r\nHTTP/1.1 200 OK', '\u0000'),
      }),
    );
    await fc.assert(
      fc.asyncProperty(mutation, fileBytes, async (m, file) => {
        let form = baseForm(file);
        let parts: Part[] = [...form.fields, form.file];
        let outcome: Outcome = storedBase(form);
        let encoding: Partial<Encoding> = {};
        switch (m.kind) {
          case 'boundary-in-content': {
            // The policy does not depend on the file: only its content changes (same boundary).
            const at = m.at % (file.length + 1);
            const splice = (inserted: string) => Buffer.concat([file.subarray(0, at), Buffer.from(inserted), file.subarray(at)]);
            if (m.variant === 'no-crlf' || m.variant === 'dashes-only') {
              // Not a delimiter without the CRLF before it: plain content.
              form.file = { ...form.file, value: splice(m.variant === 'no-crlf' ? `--${form.boundary}` : `\n--${form.boundary}--`) };
              // Unless a CRLF precedes it after all: the blank line ending the part's headers, or the file's own bytes.
              const afterCrlf = m.variant === 'no-crlf' && (at === 0 || (at >= 2 && file[at - 2] === 0x0d && file[at - 1] === 0x0a));
              outcome = afterCrlf ? { kind: 'either', key: form.key, bytes: file.subarray(0, Math.max(0, at - 2)) } : storedBase(form);
            } else {
              // A delimiter inside the content ends the file there (multipart's rules): the file is what precedes it.
              const inserted = m.variant === 'closing-inside' ? `\r\n--${form.boundary}--\r\ntrailing` : `\r\n--${form.boundary}\r\nX-Garbage: yes\r\n\r\nmore`;
              form.file = { ...form.file, value: splice(inserted) };
              // (An empty file is below the range's minimum: refused then.)
              outcome = at === 0 ? { kind: 'refused', status: 400, code: 'EntityTooSmall' } : { kind: 'either', key: form.key, bytes: file.subarray(0, at) };
            }
            parts = [...form.fields, form.file];
            break;
          }
          case 'missing-final':
            if (m.closing === 'none' || m.closing === 'no-dashes') encoding = { closing: m.closing };
            else if (m.closing === 'one-dash') encoding = { closing: 'none', epilogue: Buffer.from(`\r\n--${form.boundary}-`) };
            else encoding = { closing: 'none', epilogue: Buffer.from(`--${form.boundary}--\r\n`) };
            outcome = { kind: 'refused', status: 400, code: 'MalformedPOSTRequest' };
            break;
          case 'lf-only':
            encoding =
              m.scope === 'everywhere' ? { headerEol: '\n', delimiterEol: '\n' } : m.scope === 'part-headers' ? { headerEol: '\n' } : { delimiterEol: '\n' };
            outcome = m.scope === 'part-headers' ? { kind: 'either', key: form.key, bytes: file } : { kind: 'refused' };
            break;
          case 'preamble': {
            const preamble = Buffer.from(m.crlf ? `${m.garbage}\r\n` : m.garbage);
            encoding = { preamble };
            // Without the CRLF before it, the first boundary line is part of the preamble: the key field is lost.
            outcome = m.crlf || m.garbage.endsWith('\r\n') ? storedBase(form) : { kind: 'refused' };
            break;
          }
          case 'epilogue':
            encoding = { epilogue: Buffer.from(m.garbage) };
            break;
          case 'no-boundary':
            encoding = { contentType: m.contentType };
            outcome = { kind: 'refused', status: 400, code: 'MalformedPOSTRequest' };
            break;
          case 'not-a-form':
            // Not a form upload, so not POST Object: a POST on a bucket that no operation takes, refused.
            encoding = { contentType: m.withBoundary ? `${m.contentType}; boundary=${form.boundary}` : m.contentType };
            outcome = { kind: 'refused' };
            break;
          case 'content-type-params': {
            const boundary = m.quoted ? `"${form.boundary}"` : form.boundary;
            const params = [`${m.paramCase ? 'BOUNDARY' : 'boundary'}=${boundary}`];
            if (m.charset !== null) params[m.charsetFirst ? 'unshift' : 'push'](`charset=${m.charset}`);
            encoding = { contentType: `${toggleCase('multipart/form-data', m.typeCase)}${params.map((p) => `;${m.spaces}${p}`).join('')}` };
            break;
          }
          case 'boundary-needs-quotes': {
            const boundary = m.boundary;
            encoding = { boundary, contentType: `multipart/form-data; boundary=${m.quoted ? `"${boundary}"` : boundary}` };
            const token = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(boundary);
            outcome = m.quoted || token ? storedBase(form) : { kind: 'either', key: form.key, bytes: file };
            break;
          }
          case 'part-charset': {
            const index = m.index % form.fields.length;
            parts = [
              ...form.fields.map((part, i) => (i === index ? { ...part, headers: [`Content-Type: text/plain; charset=${m.charset}`] } : part)),
              form.file,
            ];
            // ASCII values read the same in every ASCII-compatible charset.
            outcome = ASCII_CHARSETS.includes(m.charset) ? storedBase(form) : { kind: 'either', key: form.key, bytes: file };
            break;
          }
          case 'transfer-encoding': {
            const all = [...form.fields, form.file];
            const index = m.index % all.length;
            all[index] = { ...all[index]!, headers: [...(all[index]!.headers ?? []), `Content-Transfer-Encoding: ${m.encoding}`] };
            parts = all;
            // Identity encodings change nothing; others (deprecated in form-data, RFC 7578) may be refused, never decoded into other bytes.
            outcome = ['7bit', '8bit', 'binary'].includes(m.encoding) ? storedBase(form) : { kind: 'either', key: form.key, bytes: file };
            break;
          }
          case 'non-utf8': {
            // High bytes each followed by 'a': never valid UTF-8.
            const raw = Buffer.from(m.bytes.flatMap((b) => [b, 0x61]));
            const value = (prefix: string) => Buffer.concat([Buffer.from(prefix), raw]);
            if (m.target === 'x-ignore') {
              form = baseForm(file, { extra: [field('x-ignore-raw', raw)] });
              outcome = storedBase(form);
            } else if (m.target === 'meta-origin') {
              form.fields[2] = field('x-amz-meta-origin', value('fuzz'));
              outcome = { kind: 'refused', status: 403, code: 'AccessDenied' };
            } else if (m.target === 'content-type') {
              form.fields[1] = field('Content-Type', value('text/'));
              outcome = { kind: 'refused' };
            } else if (m.target === 'key') {
              form.fields[0] = field('key', value(form.prefix));
              outcome = { kind: 'either', bytes: file };
            } else {
              form = baseForm(file, { extra: [field('x-amz-meta-note', raw)], extraConditions: [['starts-with', '$x-amz-meta-note', '']] });
              outcome = { kind: 'either', bytes: file, meta: ['x-amz-meta-origin', 'x-amz-meta-note'], headers: { 'content-type': 'application/x-fuzz' } };
            }
            parts = [...form.fields, form.file];
            break;
          }
          case 'crlf-injection': {
            const injected = (prefix: string) => `${prefix}${m.payload}`;
            if (m.target === 'content-type') {
              form.fields[1] = field('Content-Type', injected('text/plain'));
              outcome = { kind: 'refused', status: 400, code: 'InvalidArgument' };
            } else if (m.target === 'meta-covered' || m.target === 'cache-control') {
              const name = m.target === 'cache-control' ? 'Cache-Control' : 'x-amz-meta-note';
              form = baseForm(file, { extra: [field(name, injected('max-age=1'))], extraConditions: [['starts-with', `$${name}`, '']] });
              outcome = { kind: 'refused', status: 400, code: 'InvalidArgument' };
            } else if (m.target === 'key') {
              // Keys may hold any character; stored under the literal key or refused (moto itself answers 404 to a key with a line feed).
              form.fields[0] = field('key', injected(`${form.prefix}a`));
              outcome = { kind: 'either', bytes: file };
            } else {
              form = baseForm(file, {
                extra: [field('success_action_redirect', injected('https://app.example/done'))],
                extraConditions: [['starts-with', '$success_action_redirect', '']],
              });
              outcome = { kind: 'either', key: form.key, bytes: file };
            }
            parts = [...form.fields, form.file];
            break;
          }
        }
        await judge(formCase(JSON.stringify(m).slice(0, 300), form, parts, outcome, { encoding }));
      }),
      { ...FUZZ, numRuns: 150 },
    );
    await expectGatewayUpAndUpstreamClean();
  });

  // -----------------------------------------------------------------------------------------------
  // Sizes and framing

  it('sizes and framing: over 64 KiB before the file, Content-Length shorter than the body, chunked bodies', async () => {
    const mutation = fc.oneof(
      fc.record({
        kind: fc.constant('pre-data' as const),
        total: fc.oneof(fc.integer({ min: LIMITS.preDataBytes - 64, max: LIMITS.preDataBytes + 64 }), fc.integer({ min: 40_000, max: 200_000 })),
      }),
      fc.record({ kind: fc.constant('shorter' as const), cut: fc.nat(), nearEnd: fc.boolean() }),
      fc.record({
        kind: fc.constant('target' as const),
        target: fc.constantFrom(
          '/',
          `/${BUCKET}/`,
          `/${BUCKET}/some/key`,
          `/${BUCKET}?delete`,
          `/${BUCKET}?uploads`,
          `/${BUCKET}?acl`,
          `//${BUCKET}`,
          `/${BUCKET}?x-id=PutObject`,
        ),
      }),
      fc.record({
        kind: fc.constant('chunked' as const),
        chunkSize: fc.integer({ min: 1, max: 4096 }),
        variant: fc.constantFrom('plain', 'extension', 'trailer', 'bad-size', 'with-content-length'),
        badAt: fc.nat(),
      }),
    );
    await fc.assert(
      fc.asyncProperty(mutation, fileBytes, async (m, file) => {
        const form = baseForm(file);
        let parts: Part[] = [...form.fields, form.file];
        let outcome: Outcome = storedBase(form);
        let request: RawRequest;
        switch (m.kind) {
          case 'pre-data': {
            const pads = padding(form, m.total);
            parts = [...form.fields, ...pads, form.file];
            outcome =
              preDataOf([...form.fields, ...pads]) <= LIMITS.preDataBytes
                ? storedBase(form)
                : { kind: 'refused', status: 400, code: 'MaxPostPreDataLengthExceededError' };
            request = formCase('', form, parts, outcome).request;
            break;
          }
          case 'shorter': {
            // Content-Length cuts the form; the bytes after it are not part of this request.
            const encoded = encodeForm(parts, { boundary: form.boundary });
            const cut = m.nearEnd ? Math.max(0, encoded.body.length - 1 - (m.cut % 12)) : m.cut % encoded.body.length;
            outcome = cut >= encoded.closingEnd ? storedBase(form) : { kind: 'refused' };
            request = formRequest(BUCKET, encoded.body, `multipart/form-data; boundary=${form.boundary}`, { contentLength: cut });
            break;
          }
          case 'target': {
            // Posted elsewhere than the bucket: not POST Object, refused; or (a trailing slash, an unknown parameter) the bucket's POST Object.
            const { body } = encodeForm(parts, { boundary: form.boundary });
            request = { ...formRequest(BUCKET, body, `multipart/form-data; boundary=${form.boundary}`), target: m.target };
            const clearlyElsewhere = ['/', `/${BUCKET}?delete`, `/${BUCKET}?uploads`, `/${BUCKET}?acl`].includes(m.target);
            outcome = clearlyElsewhere ? { kind: 'refused' } : { kind: 'either', key: form.key, bytes: file };
            break;
          }
          case 'chunked': {
            const { body } = encodeForm(parts, { boundary: form.boundary });
            const chunks = Math.ceil(body.length / m.chunkSize);
            const framed = chunkedFraming(body, m.chunkSize, {
              extension: m.variant === 'extension' ? ';name=value' : undefined,
              trailer: m.variant === 'trailer' ? 'x-trailer: yes' : undefined,
              badSizeAt: m.variant === 'bad-size' ? m.badAt % chunks : undefined,
            });
            // A form needs no Content-Length (the gateway spools the file): a chunked one works; broken framing does not.
            outcome = m.variant === 'bad-size' || m.variant === 'with-content-length' ? { kind: 'refused' } : storedBase(form);
            request = formRequest(BUCKET, framed, `multipart/form-data; boundary=${form.boundary}`, {
              chunked: true,
              contentLength: m.variant === 'with-content-length' ? framed.length : null,
            });
            break;
          }
        }
        await judge({ label: JSON.stringify(m), request, outcome, bucket: BUCKET, prefix: form.prefix });
      }),
      { ...FUZZ, numRuns: 80 },
    );
    await expectGatewayUpAndUpstreamClean();
  });

  it('a Content-Length longer than the body: refused by the fields deadline before the file, never stored', async () => {
    // Sent at once (not one after the other): each waits for the deadline or the observation window.
    const samples = fc.sample(fc.record({ cut: fc.nat(), extra: fc.integer({ min: 1, max: 5000 }), file: fileBytes }), { numRuns: 10, seed: 4242 });
    const results = await Promise.all(
      samples.map(async ({ cut, extra, file }, index) => {
        const form = baseForm(file);
        const encoded = encodeForm([...form.fields, form.file], { boundary: form.boundary });
        // Half cut within the fields (before the file starts), half sent whole.
        const sent = index % 2 === 0 ? cut % encoded.fileContentStart : encoded.body.length;
        const request = formRequest(BUCKET, encoded.body.subarray(0, sent), `multipart/form-data; boundary=${form.boundary}`, {
          contentLength: encoded.body.length + extra,
        });
        const started = Date.now();
        const beforeFile = sent < encoded.fileContentStart;
        // Before the file: the deadline must answer; a whole signed form: watched for a while, then the client gives up.
        const timeoutMs = beforeFile ? FIELDS_DEADLINE_MS + 4_000 : 1_500;
        const response = await send(request, { timeoutMs, untilResponse: true }).catch((error: Error) => error);
        return { form, sent, beforeFile, response, elapsed: Date.now() - started };
      }),
    );
    for (const { form, sent, beforeFile, response, elapsed } of results) {
      const context = `${sent} bytes sent of a longer declared body (${beforeFile ? 'before the file' : 'whole form'}) -> ${response instanceof Error ? response.message : `${response.status} ${response.body.slice(0, 300)}`}`;
      if (beforeFile) {
        // Nobody is authenticated yet: the fields deadline answers.
        expect(response, context).not.toBeInstanceOf(Error);
        expectS3Error(response as RawResponse, context, { status: 400, code: 'RequestTimeout' });
        expect(elapsed, context).toBeLessThan(FIELDS_DEADLINE_MS + 3_000);
      } else if (!(response instanceof Error)) {
        // A signed form whose body has not ended: waiting for the rest is fine, storing or a 5xx is not.
        expectS3Error(response, context);
      }
      await expectNothingStored(BUCKET, form.prefix, context);
    }
    // The connections are closed now: nothing may be stored late.
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const { form } of results) await expectNothingStored(BUCKET, form.prefix, 'after the client went away');
    await expectGatewayUpAndUpstreamClean();
  });

  /** Every complete response in what a connection sent back (Content-Length framed; 204 has no body). */
  function parseResponses(raw: Buffer): RawResponse[] {
    const responses: RawResponse[] = [];
    let rest = raw;
    while (rest.length > 0) {
      const split = rest.indexOf('\r\n\r\n');
      if (split === -1) break;
      const head = rest.subarray(0, split).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
      const length = status === 204 || status === 304 ? 0 : Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (rest.length < split + 4 + length) break;
      responses.push(parseResponse(rest.subarray(0, split + 4 + length)));
      rest = rest.subarray(split + 4 + length);
    }
    return responses;
  }

  it('a form refused before its file leaves the connection usable: the next form on it is answered, the refused body never parsed as a request', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('uncovered', 'bad-signature', 'expired', 'deleted-key', 'read-only'),
        fc.integer({ min: 0, max: 300_000 }),
        fileBytes,
        async (refusal, size, file) => {
          // A large file of '-' and CR LF bytes that is never read as a form, followed by a valid form.
          const unread = Buffer.alloc(size, '--\r\n');
          const first =
            refusal === 'expired'
              ? baseForm(unread, { expiration: new Date(Date.now() - 60_000), range: null })
              : refusal === 'deleted-key'
                ? baseForm(unread, { signer: deleted, range: null })
                : refusal === 'read-only'
                  ? baseForm(unread, { signer: reader, range: null })
                  : baseForm(unread, { range: null });
          if (refusal === 'uncovered') first.fields.splice(1, 0, field('x-amz-meta-uncovered', 'yes'));
          if (refusal === 'bad-signature')
            first.fields = first.fields.map((part) => (part.name === 'x-amz-signature' ? field('x-amz-signature', '0'.repeat(64)) : part));
          const second = baseForm(file);
          const firstRequest = formRequest(
            BUCKET,
            encodeForm([...first.fields, first.file], { boundary: first.boundary }).body,
            `multipart/form-data; boundary=${first.boundary}`,
          );
          const keepAlive = { ...firstRequest, headers: firstRequest.headers.filter(([name]) => name !== 'Connection') };
          const secondRequest = formRequest(
            BUCKET,
            encodeForm([...second.fields, second.file], { boundary: second.boundary }).body,
            `multipart/form-data; boundary=${second.boundary}`,
          );
          const raw = Buffer.from(
            await receiveAll(port, Buffer.concat([serializeRequest(keepAlive), serializeRequest(secondRequest)]), REQUEST_TIMEOUT_MS),
            'latin1',
          );
          const responses = parseResponses(raw);
          const context = `${refusal}, ${size} unread bytes -> ${responses.map((r) => `${r.status} ${r.body.slice(0, 200)}`).join(' | ')} (${raw.length} bytes)`;
          await expectServing(context);
          expect(responses.length, context).toBeGreaterThanOrEqual(1);
          expectS3Error(responses[0]!, context, { status: 403 });
          await expectNothingStored(BUCKET, first.prefix, context);
          // The gateway may close after the refusal (the client then retries); if it answers the next form, correctly.
          expect(responses.length, context).toBeLessThanOrEqual(2);
          if (responses.length === 2) {
            expect(responses[1]!.status, context).toBe(204);
            await expectStoredExactly(BUCKET, second.prefix, storedBase(second) as Extract<Outcome, { kind: 'stored' }>, context);
          } else {
            await expectNothingStored(BUCKET, second.prefix, context);
          }
        },
      ),
      { ...FUZZ, numRuns: 20 },
    );
    await expectGatewayUpAndUpstreamClean();
  });

  // -----------------------------------------------------------------------------------------------
  // Authentication

  it('auth: deleted key, per-bucket key on another bucket, expired policy, uncovered fields, SigV2 fields, missing or corrupted signature fields', async () => {
    const AUTH_FIELDS = ['policy', 'x-amz-algorithm', 'x-amz-credential', 'x-amz-date', 'x-amz-signature'];
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('deleted-key' as const) }),
      fc.record({ kind: fc.constant('foreign-key' as const), policyBucket: fc.constantFrom(BUCKET, OTHER_BUCKET) }),
      fc.record({ kind: fc.constant('writer-on-other-bucket' as const) }),
      fc.record({ kind: fc.constant('read-only-key' as const) }),
      fc.record({ kind: fc.constant('expired' as const), secondsAgo: fc.integer({ min: 1, max: 10 * 365 * 86_400 }) }),
      fc.record({
        kind: fc.constant('uncovered' as const),
        name: fc.constantFrom('x-amz-meta-extra', 'Cache-Control', 'success_action_status', 'tagging', 'x-amz-storage-class', 'Content-Disposition', 'expires'),
        value: asciiText('abc123 =/', { maxLength: 20 }),
      }),
      fc.record({ kind: fc.constant('condition-failed' as const), which: fc.constantFrom('key-prefix', 'meta-value', 'content-type-prefix') }),
      fc.record({
        kind: fc.constant('sigv2' as const),
        fields: fc.subarray(['AWSAccessKeyId', 'signature', 'policy']).filter((f) => f.includes('AWSAccessKeyId') || f.includes('signature')),
        keepV4: fc.subarray(['x-amz-credential', 'x-amz-date', 'x-amz-signature']),
      }),
      fc.record({ kind: fc.constant('missing' as const), drop: fc.subarray(AUTH_FIELDS, { minLength: 1 }) }),
      fc.record({
        kind: fc.constant('corrupt' as const),
        target: fc.constantFrom(
          'signature-flip',
          'signature-short',
          'signature-upper',
          'credential-region',
          'credential-service',
          'credential-date',
          'credential-garbage',
          'date-garbage',
          'algorithm-lower',
          'algorithm-v2',
          'policy-tampered',
          'policy-not-base64',
          'policy-whitespace',
        ),
        at: fc.nat(),
      }),
    );
    await fc.assert(
      fc.asyncProperty(mutation, fileBytes, async (m, file) => {
        let form = baseForm(file);
        let bucket = BUCKET;
        let outcome: Outcome = { kind: 'refused' };
        const replace = (name: string, value: string) => {
          form.fields = form.fields.map((part) => (part.name === name ? field(name, value) : part));
        };
        const valueOf = (name: string) => form.fields.find((part) => part.name === name)!.value.toString();
        switch (m.kind) {
          case 'deleted-key':
            form = baseForm(file, { signer: deleted });
            outcome = { kind: 'refused', status: 403, code: 'InvalidAccessKeyId' };
            break;
          case 'foreign-key':
            // A valid signature of a key scoped to another bucket.
            form = baseForm(file, { signer: foreign, policyBucket: m.policyBucket });
            outcome = { kind: 'refused', status: 403, code: 'AccessDenied' };
            break;
          case 'writer-on-other-bucket':
            form = baseForm(file, { policyBucket: OTHER_BUCKET });
            bucket = OTHER_BUCKET;
            outcome = { kind: 'refused', status: 403, code: 'AccessDenied' };
            break;
          case 'read-only-key':
            form = baseForm(file, { signer: reader });
            outcome = { kind: 'refused', status: 403, code: 'AccessDenied' };
            break;
          case 'expired':
            form = baseForm(file, { expiration: new Date(Date.now() - m.secondsAgo * 1000) });
            outcome = { kind: 'refused', status: 403, code: 'AccessDenied', message: /expired/ };
            break;
          case 'uncovered':
            form.fields.splice(1, 0, field(m.name, m.value));
            outcome = { kind: 'refused', status: 403, code: 'AccessDenied', message: /Extra input fields/ };
            break;
          case 'condition-failed':
            if (m.which === 'key-prefix') replace('key', `elsewhere/${caseNumber}`);
            else if (m.which === 'meta-value') replace('x-amz-meta-origin', 'Fuzz');
            else form = baseForm(file, { extraConditions: [['starts-with', '$Content-Type', 'image/']] });
            outcome = { kind: 'refused', status: 403, code: 'AccessDenied', message: /Policy Condition failed/ };
            break;
          case 'sigv2': {
            // A SigV2 form (no x-amz-algorithm): refused with an error that says to use SigV4.
            const policy = valueOf('policy');
            const v2: Record<string, string> = {
              AWSAccessKeyId: writer.accessKeyId,
              signature: createHmac('sha1', writer.secretAccessKey).update(policy).digest('base64'),
              policy,
            };
            form.fields = form.fields.filter((part) => !AUTH_FIELDS.includes(part.name!) || m.keepV4.includes(part.name!));
            form.fields.push(...m.fields.map((name) => field(name, v2[name]!)));
            outcome = { kind: 'refused', status: 400, code: 'InvalidArgument', message: /Signature Version 4|SigV4/ };
            break;
          }
          case 'missing':
            form.fields = form.fields.filter((part) => !m.drop.includes(part.name!));
            break;
          case 'corrupt': {
            const signature = valueOf('x-amz-signature');
            const credential = valueOf('x-amz-credential');
            const at = m.at % 64;
            switch (m.target) {
              case 'signature-flip':
                replace('x-amz-signature', signature.slice(0, at) + (signature[at] === '0' ? '1' : '0') + signature.slice(at + 1));
                break;
              case 'signature-short':
                replace('x-amz-signature', signature.slice(0, at));
                break;
              case 'signature-upper':
                // Hex is hex in either case: the same signature (S3 compares the bytes).
                replace('x-amz-signature', signature.toUpperCase());
                outcome = storedBase(form);
                break;
              case 'credential-region':
                replace('x-amz-credential', credential.replace('/us-east-1/', '/eu-west-9/'));
                break;
              case 'credential-service':
                replace('x-amz-credential', credential.replace('/s3/', '/s4/'));
                break;
              case 'credential-date':
                replace('x-amz-credential', credential.replace(/\/(\d{8})\//, '/20000101/'));
                break;
              case 'credential-garbage':
                replace('x-amz-credential', credential.slice(0, at % credential.length));
                break;
              case 'date-garbage':
                replace('x-amz-date', ['', '2030', valueOf('x-amz-date').slice(0, 8), 'not-a-date'][at % 4]!);
                break;
              case 'algorithm-lower':
                replace('x-amz-algorithm', 'aws4-hmac-sha256');
                break;
              case 'algorithm-v2':
                replace('x-amz-algorithm', 'AWS');
                break;
              case 'policy-tampered': {
                const policy = JSON.parse(Buffer.from(valueOf('policy'), 'base64').toString()) as { conditions: unknown[] };
                policy.conditions[1] = ['starts-with', '$key', ''];
                replace('policy', Buffer.from(JSON.stringify(policy)).toString('base64'));
                break;
              }
              case 'policy-not-base64': {
                // Signed, so the signature holds and the policy itself is what is wrong.
                const broken = ['{not json', '!!!!', Buffer.from('[]').toString('base64'), Buffer.from('{"conditions":[]}').toString('base64')][at % 4]!;
                const auth = signPolicyText(writer, broken);
                form.fields = [
                  ...form.fields.filter((part) => !AUTH_FIELDS.includes(part.name!)),
                  ...Object.entries(auth).map(([name, value]) => field(name, value)),
                ];
                break;
              }
              case 'policy-whitespace': {
                // Whitespace in the base64 policy: signed as sent, so it verifies; decoding ignores it.
                const spaced = valueOf('policy').replace(/(.{16})/g, '$1\n');
                const auth = signPolicyText(writer, spaced);
                form.fields = [
                  ...form.fields.filter((part) => !AUTH_FIELDS.includes(part.name!)),
                  ...Object.entries(auth).map(([name, value]) => field(name, value)),
                ];
                outcome = storedBase(form);
                break;
              }
            }
            break;
          }
        }
        await judge(formCase(JSON.stringify(m).slice(0, 300), form, [...form.fields, form.file], outcome, { bucket }));
      }),
      { ...FUZZ, numRuns: 100 },
    );
    await expectGatewayUpAndUpstreamClean();
  });

  // -----------------------------------------------------------------------------------------------

  it('is still up and serving after all of it, and never logged an unexpected error', async () => {
    expect(gatewayAlive()).toBe(true);
    expect((await fetch(`${gateway.url}/_health`)).status).toBe(200);
    const form = baseForm(Buffer.from('still working'));
    await judge(formCase('a valid form at the end', form, [...form.fields, form.file], storedBase(form)));
    expect(deaths, `gateway processes died during the run:\n${deaths.join('\n----\n')}`).toEqual([]);
    expect(gateway.output()).not.toMatch(/unexpected error|uncaught|unhandled/i);
    await expectGatewayUpAndUpstreamClean();
  });
});

// -------------------------------------------------------------------------------------------------
// The unauthenticated cap and deadline

describe('slow unauthenticated forms against KEYGATE_UNAUTHENTICATED_TIMEOUT_MS=1000 and KEYGATE_UNAUTHENTICATED_MAX_REQUESTS=5', () => {
  let moto: TestUpstream;
  let gateway: Gateway;
  let port: number;
  let writer: CreatedKey;
  const SLOW_BUCKET = 'post-form-slow';
  const xml = new XMLParser({ parseTagValue: false });

  beforeAll(async () => {
    moto = await startMoto({ validateSignatures: true });
    await moto.createBucket(SLOW_BUCKET);
    gateway = await startGateway({
      ...upstreamEnv(moto),
      KEYGATE_ACCESS_LOG: 'off',
      KEYGATE_UNAUTHENTICATED_TIMEOUT_MS: '1000',
      KEYGATE_UNAUTHENTICATED_MAX_REQUESTS: '5',
    });
    port = Number(new URL(gateway.url).port);
    writer = await gateway.createKey({ name: 'slow-writer', bucket: SLOW_BUCKET, preset: 'read-write' });
  });

  afterAll(async () => {
    await gateway?.stop();
    await moto?.stop();
  });

  function errorOf(response: RawResponse): { Code?: string; Message?: string; RequestId?: string } {
    return (xml.parse(response.body) as { Error?: { Code?: string; Message?: string; RequestId?: string } }).Error ?? {};
  }

  it('holds none of 20 one-byte-per-200-ms forms past a few seconds, and a valid form gets through once the slots free up', async () => {
    const boundary = 'slow-form-boundary';
    const request = (fields: Array<[string, string]>, file: Buffer): RawRequest => {
      const { body } = encodeForm([...fields.map(([name, value]) => field(name, value)), field('file', file, { filename: 'f.bin' })], { boundary });
      return formRequest(SLOW_BUCKET, body, `multipart/form-data; boundary=${boundary}`);
    };
    // Unsigned forms that would take over a minute to arrive at one byte per 200 ms.
    const slowForm = request(
      [
        ['key', 'slow/never.bin'],
        ['x-amz-meta-padding', 'p'.repeat(200)],
      ],
      Buffer.from('never stored'),
    );
    const slow = Array.from({ length: 20 }, async () => {
      const started = Date.now();
      const response = await exchange(port, slowForm, { pieceBytes: 1, pauseMs: 200, timeoutMs: 8_000 });
      return { response, heldMs: Date.now() - started };
    });

    // Meanwhile, from another connection, a valid signed form, retried on SlowDown with backoff.
    await new Promise((resolve) => setTimeout(resolve, 150));
    const key = 'slow/valid.bin';
    const content = Buffer.from('made it through');
    const auth = signPolicy(writer, [{ bucket: SLOW_BUCKET }, ['eq', '$key', key]]);
    const valid = request([['key', key], ...Object.entries(auth)], content);
    const attempts: number[] = [];
    const started = Date.now();
    let response: RawResponse;
    for (let attempt = 0; ; attempt++) {
      response = await exchange(port, valid, { timeoutMs: 8_000 });
      attempts.push(response.status);
      if (response.status !== 503) break;
      expect(errorOf(response).Code, response.body).toBe('SlowDown');
      expect(response.headers['retry-after']).toBeDefined();
      expect(Date.now() - started, `still refused after ${attempts.length} attempts`).toBeLessThan(15_000);
      await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, 100 * 2 ** attempt)));
    }
    expect(response.status, `${response.body} (attempts: ${attempts.join(', ')})`).toBe(204);
    const stored = await moto.request('GET', `/${SLOW_BUCKET}/${key}`);
    expect(stored.body.equals(content)).toBe(true);

    const outcomes = await Promise.all(slow);
    const codes = outcomes.map(({ response: r }) => errorOf(r).Code);
    for (const { response: r, heldMs } of outcomes) {
      const context = `${r.status} ${r.body.slice(0, 300)} after ${heldMs} ms`;
      // Deadline (1 s) plus the bounded discard of the rest (1 s), with room for a loaded machine.
      expect(heldMs, context).toBeLessThan(5_000);
      expect([400, 503], context).toContain(r.status);
      const error = errorOf(r);
      expect(error.Code, context).toBe(r.status === 400 ? 'RequestTimeout' : 'SlowDown');
      expect(error.Message, context).toBeTruthy();
      expect(error.RequestId, context).toMatch(/^[0-9A-F]{16}$/);
    }
    expect(codes, 'the cap was exceeded').toContain('SlowDown');
    expect(codes, 'the deadline answered the forms holding slots').toContain('RequestTimeout');
    const listing = await moto.request('GET', `/${SLOW_BUCKET}`, { query: 'list-type=2' });
    expect([...listing.body.toString().matchAll(/<Key>([^<]*)<\/Key>/g)].map((match) => match[1])).toEqual([key]);
    expect(() => process.kill(gateway.pid, 0)).not.toThrow();
    expect((await fetch(`${gateway.url}/_health`)).status).toBe(200);
  });
});
