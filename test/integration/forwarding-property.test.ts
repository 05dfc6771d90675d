/**
 * The operations table, end to end (fast-check): for every S3 operation of src/s3/operations.ts,
 * a real gateway process sends upstream only what the operation's entry allows, and a power a key
 * lacks never reaches the upstream.
 *
 * A request is generated from an operation, one of four keys, a bucket the key may or may not use,
 * and random extras: request headers from the whole S3 header vocabulary (every name of every
 * header group, copy sources, bucket-owner checks, credentials of other kinds, hop-by-hop and junk
 * headers) with plausible, power-triggering and random values, sometimes one header twice; query
 * parameters from every entry's `query` list (but those that change the operation) and junk ones;
 * bodies sent with a signed hash, UNSIGNED-PAYLOAD or aws-chunked with a trailing checksum. POST
 * Object forms get the same vocabulary as form fields (each covered by a policy condition), and junk
 * HTTP headers besides. Operations on a multipart upload name one started through the gateway.
 * Requests are signed independently (aws4) and sent as raw bytes; a capturing upstream
 * (test/helpers/capturing-upstream.ts) records what the gateway sends, tied to the client's request
 * by a unique User-Agent the gateway names in its own (ListBuckets' own listing and POST Object,
 * which carry no client agent, by the request in flight: requests are sent one at a time).
 *
 * For every upstream request of a client request:
 *   1. its headers are the entry's groups (values as the client sent them, defaults dropped), the
 *      forwarder's own, the connection header, and the handlers' own (a rewritten copy source for
 *      copies, the computed Content-MD5 of a form, `x-amz-acl: private` for PutObjectAcl) —
 *      never a bucket-owner check, a client credential, a cookie, a forwarded-for or a junk header;
 *      the signature is the gateway's (Credential=UPSTREAMKEY);
 *   2. its query is the entry's sub-resource and `query` names, with the client's values
 *      (DeleteObjects' single deletes: versionId only);
 *   3. a copy source names a bucket the key may read;
 *   4. a request whose header (or form field, or ACL document) needs a permission the key lacks
 *      reaches nothing upstream and is answered 403 AccessDenied — as is any request outside the
 *      key's scope or permissions; an allowed one is not refused as AccessDenied;
 *   5. POST Object goes upstream as a PUT of the form's file, without a copy source;
 *   6. a per-bucket key's requests never address another bucket;
 *   7. checksum headers (and trailers) sent upstream describe the body sent upstream, which is the
 *      client's object or document (the upstream checks them; POST forms' checksum fields are not
 *      verified by the gateway and are left out).
 * An allowed request without deliberately invalid input (a random digest, a dot segment for a
 * per-bucket key) goes through and reaches the upstream. Every request gets an answer (no hang-up,
 * no 5xx: the upstream always succeeds), and the gateway stays healthy.
 *
 * FORWARDING_PROPERTY_RUNS and FORWARDING_PROPERTY_SEED override the number of runs and the seed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { crc32c } from '@aws-crypto/crc32c';
import { Crc64Nvme } from '@aws-sdk/crc64-nvme';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUCKET_CONFIG_SUBRESOURCES, OPERATIONS, type OperationName, type OperationSpec } from '../../src/s3/operations.js';
import { HEADERS } from '../../src/s3/request-headers.js';
import { startCapturingUpstream, type CapturedRequest, type CapturingUpstream } from '../helpers/capturing-upstream.js';
import { startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { multipartForm, signPolicy } from '../helpers/post-forms.js';
import { errorCode, exchange, type RawRequest, type RawResponse } from '../helpers/raw-http.js';
import { signedHeaders } from '../helpers/sign.js';

const NUM_RUNS = Number(process.env.FORWARDING_PROPERTY_RUNS ?? 500);
const SEED = process.env.FORWARDING_PROPERTY_SEED === undefined ? undefined : Number(process.env.FORWARDING_PROPERTY_SEED);
const REGION = 'us-east-1';
const UPSTREAM_KEY_ID = 'UPSTREAMKEY';
const MINE = 'mine';
const OTHER = 'other';

type Permission = 'read' | 'write' | 'delete' | 'admin';
type Algorithm = 'crc32' | 'crc32c' | 'crc64nvme' | 'sha1' | 'sha256' | 'md5';
const OPERATION_NAMES = Object.keys(OPERATIONS) as OperationName[];
const spec = (op: OperationName): OperationSpec => OPERATIONS[op];

// ---------------------------------------------------------------------------------------------
// Keys

interface KeyProfile {
  label: string;
  /** Set for the per-bucket key. */
  bucket: string | null;
  permissions: Permission[];
}

const KEY_PROFILES: KeyProfile[] = [
  { label: 'bucket mine read-write', bucket: MINE, permissions: ['read', 'write'] },
  { label: 'workspace read,write', bucket: null, permissions: ['read', 'write'] },
  { label: 'workspace read,write,delete', bucket: null, permissions: ['read', 'write', 'delete'] },
  { label: 'workspace all', bucket: null, permissions: ['read', 'write', 'delete', 'admin'] },
];
const ADMIN_KEY = 3;

const mayUse = (profile: KeyProfile, bucket: string) => profile.bucket === null || profile.bucket === bucket;
const has = (profile: KeyProfile, permission: Permission) => profile.permissions.includes(permission);

// ---------------------------------------------------------------------------------------------
// The header vocabulary

function matchesPattern(pattern: string, name: string): boolean {
  return pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) && name.length > pattern.length - 1 : pattern === name;
}

/** Whether the operation's entry forwards this header name (one of its groups names it). */
function inGroups(op: OperationName, name: string): boolean {
  return spec(op).headers.some((group) => group.names.some((pattern) => matchesPattern(pattern, name)));
}

const GROUP_NAMES = [...new Set(Object.values(HEADERS).flatMap((group) => [...group.names]))];
/** Headers of no group: other operations', account checks, credentials of other kinds, hop-by-hop, proxies. */
const OUTSIDE_NAMES = [
  'x-amz-copy-source',
  'x-amz-copy-source-range',
  'x-amz-expected-bucket-owner',
  'x-amz-source-expected-bucket-owner',
  'x-amz-request-payer',
  'x-amz-security-token',
  'x-forwarded-for',
  'cookie',
  'proxy-authorization',
  'keep-alive',
];
const VOCABULARY = [...new Set([...GROUP_NAMES, ...OUTSIDE_NAMES])];
/** Never sent upstream, whatever the operation. */
const NEVER_FORWARDED = [
  'x-amz-expected-bucket-owner',
  'x-amz-source-expected-bucket-owner',
  'cookie',
  'proxy-authorization',
  'x-forwarded-for',
  'x-amz-security-token',
  'keep-alive',
];

/** The forwarder's own headers (framing, signature, user agent) and undici's connection header. */
const FORWARDER_HEADERS = new Set([
  'host',
  'x-amz-date',
  'authorization',
  'x-amz-content-sha256',
  'content-length',
  'user-agent',
  'x-amz-decoded-content-length',
  'x-amz-trailer',
]);
const CONNECTION_HEADERS = new Set(['connection']);

const CHECKSUM_ALGORITHM_OF: Record<string, Algorithm> = {
  'x-amz-checksum-crc32': 'crc32',
  'x-amz-checksum-crc32c': 'crc32c',
  'x-amz-checksum-crc64nvme': 'crc64nvme',
  'x-amz-checksum-sha1': 'sha1',
  'x-amz-checksum-sha256': 'sha256',
  'content-md5': 'md5',
};

const HTTP_DATE = 'Wed, 21 Oct 2015 07:28:00 GMT';
const PLAUSIBLE: Record<string, string[]> = {
  'content-type': ['text/plain', 'application/octet-stream', 'application/xml; charset=utf-8'],
  'cache-control': ['no-cache', 'max-age=60'],
  'content-disposition': ['attachment; filename="a.txt"', 'inline'],
  'content-encoding': ['gzip', 'identity', 'aws-chunked,gzip', 'aws-chunked'],
  'content-language': ['en-US'],
  expires: [HTTP_DATE],
  'x-amz-storage-class': ['STANDARD', 'GLACIER', 'REDUCED_REDUNDANCY'],
  'x-amz-website-redirect-location': ['/elsewhere', 'https://example.com/'],
  'x-amz-tagging': ['a=b', 'team=x&env=prod'],
  'x-amz-sdk-checksum-algorithm': ['CRC32', 'CRC32C', 'SHA1', 'SHA256', 'CRC64NVME'],
  'x-amz-checksum-algorithm': ['CRC32', 'CRC32C', 'SHA256'],
  'x-amz-checksum-type': ['FULL_OBJECT', 'COMPOSITE'],
  'x-amz-mp-object-size': ['10', '0'],
  'if-match': ['"0123456789abcdef0123456789abcdef"', '*'],
  'if-none-match': ['*', '"abc"'],
  'if-modified-since': [HTTP_DATE],
  'if-unmodified-since': [HTTP_DATE],
  range: ['bytes=0-3', 'bytes=-1'],
  'x-amz-checksum-mode': ['ENABLED'],
  'x-amz-server-side-encryption-customer-algorithm': ['AES256'],
  'x-amz-server-side-encryption-customer-key': [Buffer.alloc(32, 7).toString('base64')],
  'x-amz-server-side-encryption-customer-key-md5': [createHash('md5').update(Buffer.alloc(32, 7)).digest('base64')],
  'x-amz-copy-source-server-side-encryption-customer-algorithm': ['AES256'],
  'x-amz-copy-source-server-side-encryption-customer-key': [Buffer.alloc(32, 9).toString('base64')],
  'x-amz-copy-source-server-side-encryption-customer-key-md5': [createHash('md5').update(Buffer.alloc(32, 9)).digest('base64')],
  'x-amz-server-side-encryption': ['AES256', 'aes256', 'aws:kms', 'aws:kms:dsse'],
  'x-amz-server-side-encryption-aws-kms-key-id': ['arn:aws:kms:us-east-1:111122223333:key/abcd'],
  'x-amz-server-side-encryption-context': [Buffer.from('{"a":"b"}').toString('base64')],
  'x-amz-server-side-encryption-bucket-key-enabled': ['true', 'false'],
  'x-amz-copy-source-if-match': ['"abc"'],
  'x-amz-copy-source-if-none-match': ['"abc"'],
  'x-amz-copy-source-if-modified-since': [HTTP_DATE],
  'x-amz-copy-source-if-unmodified-since': [HTTP_DATE],
  'x-amz-metadata-directive': ['COPY', 'REPLACE'],
  'x-amz-tagging-directive': ['COPY', 'REPLACE'],
  'x-amz-copy-source-range': ['bytes=0-1'],
  'x-amz-object-attributes': ['ETag,ObjectSize', 'Checksum'],
  'x-amz-max-parts': ['5'],
  'x-amz-part-number-marker': ['2'],
  'x-amz-object-lock-mode': ['GOVERNANCE', 'COMPLIANCE'],
  'x-amz-object-lock-retain-until-date': ['2030-01-01T00:00:00Z'],
  'x-amz-object-lock-legal-hold': ['ON', 'OFF'],
  'x-amz-bypass-governance-retention': ['true', 'TRUE', 'True', 'false', 'yes'],
  'x-amz-acl': ['private', 'PRIVATE', 'bucket-owner-full-control', 'public-read', 'public-read-write', 'authenticated-read'],
  acl: ['private', 'bucket-owner-full-control', 'public-read', 'authenticated-read'],
  'x-amz-grant-full-control': ['id="123"'],
  'x-amz-grant-read': ['uri="http://acs.amazonaws.com/groups/global/AllUsers"'],
  'x-amz-grant-read-acp': ['id="123"'],
  'x-amz-grant-write': ['id="123"'],
  'x-amz-grant-write-acp': ['emailAddress="x@example.com"'],
  'x-amz-bucket-object-lock-enabled': ['true'],
  'x-amz-object-ownership': ['BucketOwnerEnforced', 'ObjectWriter'],
  'x-amz-copy-source': ['/other/secret.txt', '/mine/obj.txt', 'other/a%20b?versionId=1'],
  'x-amz-expected-bucket-owner': ['111122223333'],
  'x-amz-source-expected-bucket-owner': ['111122223333'],
  'x-amz-request-payer': ['requester'],
  'x-amz-security-token': ['FwoGZXIvYXdzEJr//////////wEaDFAKE'],
  'x-forwarded-for': ['10.0.0.1', '203.0.113.7, 10.0.0.2'],
  cookie: ['session=abc; other=def'],
  'proxy-authorization': ['Basic dXNlcjpwYXNz'],
  'keep-alive': ['timeout=5, max=100'],
};

/**
 * Header-borne powers, as the brief for the gateway states them (independently of its code): the
 * permissions a key needs to send a header with a value that triggers them.
 */
const POWERS: Array<{ names: string[]; triggers: (name: string, value: string) => boolean; needs: Permission[] }> = [
  {
    names: ['x-amz-acl', 'x-amz-grant-full-control', 'x-amz-grant-read', 'x-amz-grant-read-acp', 'x-amz-grant-write', 'x-amz-grant-write-acp'],
    triggers: (name, value) => name !== 'x-amz-acl' || !['private', 'bucket-owner-full-control'].includes(value.trim().toLowerCase()),
    needs: ['admin'],
  },
  { names: ['x-amz-object-lock-mode', 'x-amz-object-lock-retain-until-date', 'x-amz-object-lock-legal-hold'], triggers: () => true, needs: ['admin'] },
  { names: ['x-amz-bypass-governance-retention'], triggers: (_name, value) => value.trim().toLowerCase() === 'true', needs: ['admin', 'delete'] },
  {
    names: [
      'x-amz-server-side-encryption',
      'x-amz-server-side-encryption-aws-kms-key-id',
      'x-amz-server-side-encryption-context',
      'x-amz-server-side-encryption-bucket-key-enabled',
    ],
    triggers: (name, value) => !(name === 'x-amz-server-side-encryption' && value.trim().toUpperCase() === 'AES256'),
    needs: ['admin'],
  },
];

/** Values that mean the default: dropped, never forwarded. */
function isDefaultValue(name: string, value: string): boolean {
  if (name === 'x-amz-acl') return ['private', 'bucket-owner-full-control'].includes(value.trim().toLowerCase());
  if (name === 'x-amz-bypass-governance-retention') return value.trim().toLowerCase() !== 'true';
  return false;
}

function withoutAwsChunked(value: string): string {
  const tokens = value.split(',');
  if (!tokens.some((token) => token.trim().toLowerCase() === 'aws-chunked')) return value;
  return tokens
    .map((token) => token.trim())
    .filter((token) => token !== '' && token.toLowerCase() !== 'aws-chunked')
    .join(',');
}

// ---------------------------------------------------------------------------------------------
// Encoding and digests

const rfc3986 = (text: string) => encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const encodeKeyPath = (key: string) => key.split('/').map(rfc3986).join('/');
const xmlEscape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

async function digest(algorithm: Algorithm, body: Buffer): Promise<string> {
  switch (algorithm) {
    case 'crc32': {
      const out = Buffer.alloc(4);
      out.writeUInt32BE(crc32(body) >>> 0);
      return out.toString('base64');
    }
    case 'crc32c': {
      const out = Buffer.alloc(4);
      out.writeUInt32BE(crc32c(body) >>> 0);
      return out.toString('base64');
    }
    case 'crc64nvme': {
      const crc = new Crc64Nvme();
      crc.update(body);
      return Buffer.from(await crc.digest()).toString('base64');
    }
    default:
      return createHash(algorithm).update(body).digest('base64');
  }
}

// ---------------------------------------------------------------------------------------------
// Generators

/** A header value: literal, or the correct digest of the body it travels with. */
type HeaderValue = { literal: string } | { digestOf: Algorithm };

const PRINTABLE_CHARS = [...Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i)), ' ', ' ', 'é', 'ü'];
const printable = fc
  .string({ unit: fc.constantFrom(...PRINTABLE_CHARS), minLength: 1, maxLength: 24 })
  .map((text) => text.trim().replace(/ +/g, ' '))
  .filter((text) => text.length > 0);

function valueArb(name: string): fc.Arbitrary<HeaderValue> {
  const literal = printable.map((value): HeaderValue => ({ literal: value }));
  const algorithm = CHECKSUM_ALGORITHM_OF[name];
  if (algorithm !== undefined) {
    return fc.oneof({ arbitrary: fc.constant<HeaderValue>({ digestOf: algorithm }), weight: 4 }, { arbitrary: literal, weight: 1 });
  }
  const plausible = PLAUSIBLE[name] ?? (name.startsWith('x-amz-meta-') ? ['v1', 'hello world'] : []);
  if (plausible.length === 0) return literal;
  return fc.oneof({ arbitrary: fc.constantFrom(...plausible).map((value): HeaderValue => ({ literal: value })), weight: 3 }, { arbitrary: literal, weight: 1 });
}

const junkName = fc.stringMatching(/^[a-z0-9]{1,6}$/).map((suffix) => `x-junk-${suffix}`);
const metaName = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,7}$/).map((suffix) => `x-amz-meta-${suffix}`);

/**
 * Extra request headers (lower-case names) from the vocabulary, a few metadata and junk names;
 * with `repeat`, sometimes one of them twice (signed as SigV4 joins repeated headers, with ',').
 */
function extraHeadersArb(names: readonly string[], repeat: boolean): fc.Arbitrary<Array<[string, HeaderValue]>> {
  const concrete = names.filter((name) => !name.endsWith('*'));
  const headers = fc
    .tuple(
      fc.uniqueArray(fc.constantFrom(...concrete), { maxLength: 10 }),
      fc.uniqueArray(metaName, { maxLength: 2 }),
      fc.uniqueArray(junkName, { maxLength: 2 }),
    )
    .chain(([picked, meta, junk]) => {
      const all = [...picked, ...meta, ...junk];
      return fc.tuple(...all.map((name) => valueArb(name).map((value): [string, HeaderValue] => [name, value])));
    });
  if (!repeat) return headers;
  return headers.chain((list) => {
    // Digests are not repeated: the gateway checks one value against the body.
    const repeatable = list.filter(([name]) => CHECKSUM_ALGORITHM_OF[name] === undefined && name !== 'x-amz-copy-source');
    if (repeatable.length === 0) return fc.constant(list);
    const again = fc.constantFrom(...repeatable).chain(([name]) => valueArb(name).map((value): [string, HeaderValue] => [name, value]));
    return fc.option(again, { freq: 4, nil: null }).map((extra) => (extra === null ? list : [...list, extra]));
  });
}

/** Query names of every entry, minus those that change which operation a request is. */
const QUERY_VOCABULARY = [...new Set(Object.values(OPERATIONS).flatMap((entry) => [...entry.query]))].filter(
  (name) => !['uploadId', 'partNumber', 'list-type'].includes(name),
);
const queryValue = fc.oneof(fc.constant(''), printable, fc.constantFrom('../', 'a/b', '10', 'url', 'true'));
const extraQueryArb = fc
  .tuple(
    fc.uniqueArray(fc.constantFrom(...QUERY_VOCABULARY), { maxLength: 5 }),
    fc.uniqueArray(
      fc.stringMatching(/^[a-z0-9]{1,6}$/).map((suffix) => `zz-junk-${suffix}`),
      { maxLength: 2 },
    ),
    // A listing resumes at an upload-id-marker the gateway issued (if it binds upload ids): never made up.
  )
  .chain(([names, junk]) =>
    fc.tuple(
      ...[...names, ...junk].map((name) => (name === 'upload-id-marker' ? fc.constant('') : queryValue).map((value): [string, string] => [name, value])),
    ),
  );

const OBJECT_KEYS = ['obj.txt', 'dir/sub/file.bin', 'with space+plus&amp', 'ünïcödé.txt', "a(b)!*'.txt", '~tilde_-.', 'a/./b/../c.txt'];
const VERSION_IDS = ['v1', '3/L4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY'];

type AclBody = 'empty' | 'owner-only' | 'public' | 'latin1-owner-only' | 'latin1-public';

interface FormCase {
  keyTemplate: string;
  /** Form fields from the vocabulary (before the file), in order. */
  fields: Array<[string, HeaderValue]>;
  /** Extra HTTP headers on the form's request (the form authenticates, not these). */
  httpHeaders: Array<[string, HeaderValue]>;
  repeatBucket: boolean;
}

interface Case {
  op: OperationName;
  keyIndex: number;
  bucket: string;
  objectKey: string;
  source: { bucket: string; key: string; versionId: string | null };
  configSubresource: string;
  headers: Array<[string, HeaderValue]>;
  query: Array<[string, string]>;
  payload: Uint8Array;
  aclBody: AclBody;
  deletes: Array<{ key: string; versionId: string | null }>;
  createBucketBody: boolean;
  /** How the body is sent: its SHA-256 signed, UNSIGNED-PAYLOAD, or aws-chunked with a trailing checksum. */
  payloadMode: 'signed' | 'unsigned' | 'trailer';
  trailerAlgorithm: Exclude<Algorithm, 'md5'>;
  titleCaseHeaders: boolean;
  form: FormCase;
}

/** PUT object operations that x-amz-copy-source would turn into a copy (or that carry one already). */
const COPY_SOURCE_CLASSIFIES: ReadonlySet<OperationName> = new Set(['PutObject', 'UploadPart', 'CopyObject', 'UploadPartCopy']);

const FORM_VOCABULARY = [...VOCABULARY, 'acl'];
const formCaseArb: fc.Arbitrary<FormCase> = fc.record({
  keyTemplate: fc.constantFrom('post/${filename}', 'post/plain.txt', 'dir/with space.bin'),
  fields: extraHeadersArb(FORM_VOCABULARY, false),
  httpHeaders: extraHeadersArb(
    VOCABULARY.filter((name) => name !== 'content-type'),
    true,
  ),
  repeatBucket: fc.boolean(),
});

function caseArb(op: OperationName): fc.Arbitrary<Case> {
  const vocabulary = VOCABULARY.filter((name) => name !== 'x-amz-copy-source' || !COPY_SOURCE_CLASSIFIES.has(op));
  return fc.record({
    op: fc.constant(op),
    keyIndex: fc.integer({ min: 0, max: KEY_PROFILES.length - 1 }),
    bucket: fc.constantFrom(MINE, OTHER),
    objectKey: fc.constantFrom(...OBJECT_KEYS),
    source: fc.record({
      bucket: fc.constantFrom(MINE, OTHER),
      key: fc.constantFrom(...OBJECT_KEYS),
      versionId: fc.option(fc.constantFrom(...VERSION_IDS), { nil: null }),
    }),
    configSubresource: fc.constantFrom(...BUCKET_CONFIG_SUBRESOURCES),
    headers: extraHeadersArb(vocabulary, true),
    query: extraQueryArb,
    payload: fc.uint8Array({ maxLength: 64 }),
    aclBody: fc.constantFrom<AclBody>('empty', 'owner-only', 'public', 'latin1-owner-only', 'latin1-public'),
    deletes: fc.uniqueArray(fc.record({ key: fc.constantFrom(...OBJECT_KEYS), versionId: fc.option(fc.constantFrom(...VERSION_IDS), { nil: null }) }), {
      minLength: 1,
      maxLength: 3,
      selector: (entry) => entry.key,
    }),
    createBucketBody: fc.boolean(),
    payloadMode: fc.constantFrom<Case['payloadMode']>('signed', 'unsigned', 'trailer'),
    trailerAlgorithm: fc.constantFrom<Case['trailerAlgorithm']>('crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'),
    titleCaseHeaders: fc.boolean(),
    form: formCaseArb,
  });
}

const anyCaseArb = fc.constantFrom(...OPERATION_NAMES).chain(caseArb);

/** The plain, valid request of an operation: no extra headers or query, the all-permissions key. */
function baseCase(op: OperationName): Case {
  return {
    op,
    keyIndex: ADMIN_KEY,
    bucket: MINE,
    objectKey: 'obj.txt',
    source: { bucket: MINE, key: 'src.txt', versionId: null },
    configSubresource: 'tagging',
    headers: [],
    query: [],
    payload: new Uint8Array(Buffer.from('hello')),
    aclBody: 'owner-only',
    deletes: [{ key: 'gone.txt', versionId: null }],
    createBucketBody: true,
    payloadMode: 'signed',
    trailerAlgorithm: 'crc32',
    titleCaseHeaders: false,
    form: { keyTemplate: 'post/${filename}', fields: [], httpHeaders: [], repeatBucket: false },
  };
}

// ---------------------------------------------------------------------------------------------
// Building requests

const OWNER_ID = 'ownerid0123';
function aclDocument(kind: AclBody): Buffer {
  if (kind === 'empty') return Buffer.alloc(0);
  const latin1 = kind.startsWith('latin1');
  const name = latin1 ? 'Jos\u00e9' : 'owner';
  const ownerGrant = `<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>${OWNER_ID}</ID><DisplayName>${name}</DisplayName></Grantee><Permission>FULL_CONTROL</Permission></Grant>`;
  const publicGrant = kind.endsWith('public')
    ? '<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission></Grant>'
    : '';
  const declaration = latin1 ? '<?xml version="1.0" encoding="ISO-8859-1"?>' : '<?xml version="1.0" encoding="UTF-8"?>';
  const text = `${declaration}<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>${OWNER_ID}</ID><DisplayName>${name}</DisplayName></Owner><AccessControlList>${ownerGrant}${publicGrant}</AccessControlList></AccessControlPolicy>`;
  return Buffer.from(text, latin1 ? 'latin1' : 'utf8');
}

const aclGrantsOthers = (kind: AclBody) => kind.endsWith('public');

/** Method, path, base query (sub-resource markers first) and body of an operation's request. */
function baseRequest(
  c: Case,
  uploadId: string,
): { method: string; objectKey: string | null; bucket: string | null; query: Array<[string, string]>; body: Buffer | null; copySource: string | null } {
  const object = (method: string, query: Array<[string, string]> = [], body: Buffer | null = null) => ({
    method,
    bucket: c.bucket,
    objectKey: c.objectKey,
    query,
    body,
    copySource: null as string | null,
  });
  const bucketLevel = (method: string, query: Array<[string, string]> = [], body: Buffer | null = null) => ({
    method,
    bucket: c.bucket,
    objectKey: null,
    query,
    body,
    copySource: null as string | null,
  });
  const payload = Buffer.from(c.payload);
  const copySource = `/${c.source.bucket}/${c.source.key.split('/').map(rfc3986).join('/')}${c.source.versionId === null ? '' : `?versionId=${rfc3986(c.source.versionId)}`}`;
  const document = (xml: string) => Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>${xml}`);
  const upload: Array<[string, string]> = [
    ['partNumber', '1'],
    ['uploadId', uploadId],
  ];
  switch (c.op) {
    case 'ListBuckets':
      return { method: 'GET', bucket: null, objectKey: null, query: [], body: null, copySource: null };
    case 'HeadBucket':
      return bucketLevel('HEAD');
    case 'GetBucketLocation':
      return bucketLevel('GET', [['location', '']]);
    case 'ListObjects':
      return bucketLevel('GET');
    case 'ListObjectsV2':
      return bucketLevel('GET', [['list-type', '2']]);
    case 'ListObjectVersions':
      return bucketLevel('GET', [['versions', '']]);
    case 'ListMultipartUploads':
      return bucketLevel('GET', [['uploads', '']]);
    case 'CreateBucket':
      return bucketLevel(
        'PUT',
        [],
        c.createBucketBody
          ? document('<CreateBucketConfiguration><LocationConstraint>us-west-2</LocationConstraint></CreateBucketConfiguration>')
          : Buffer.alloc(0),
      );
    case 'DeleteBucket':
      return bucketLevel('DELETE');
    case 'GetBucketConfiguration':
      return bucketLevel('GET', [[c.configSubresource, '']]);
    case 'PutBucketConfiguration':
      return bucketLevel('PUT', [[c.configSubresource, '']], document(`<Configuration><Rule><ID>r</ID><Status>Enabled</Status></Rule></Configuration>`));
    case 'DeleteBucketConfiguration':
      return bucketLevel('DELETE', [[c.configSubresource, '']]);
    case 'GetObjectLockConfiguration':
      return bucketLevel('GET', [['object-lock', '']]);
    case 'PutObjectLockConfiguration':
      return bucketLevel(
        'PUT',
        [['object-lock', '']],
        document('<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>'),
      );
    case 'DeleteObjects': {
      const entries = c.deletes
        .map(
          (entry) =>
            `<Object><Key>${xmlEscape(entry.key)}</Key>${entry.versionId === null ? '' : `<VersionId>${xmlEscape(entry.versionId)}</VersionId>`}</Object>`,
        )
        .join('');
      return bucketLevel('POST', [['delete', '']], document(`<Delete><Quiet>false</Quiet>${entries}</Delete>`));
    }
    case 'PostObject':
      return bucketLevel('POST', [], payload);
    case 'GetObject':
      return object('GET');
    case 'HeadObject':
      return object('HEAD');
    case 'GetObjectAttributes':
      return object('GET', [['attributes', '']]);
    case 'GetObjectTagging':
      return object('GET', [['tagging', '']]);
    case 'GetObjectAcl':
      return object('GET', [['acl', '']]);
    case 'GetObjectRetention':
      return object('GET', [['retention', '']]);
    case 'GetObjectLegalHold':
      return object('GET', [['legal-hold', '']]);
    case 'ListParts':
      return object('GET', [['uploadId', uploadId]]);
    case 'PutObject':
      return object('PUT', [], payload);
    case 'CopyObject':
      return { ...object('PUT', [], Buffer.alloc(0)), copySource };
    case 'PutObjectTagging':
      return object('PUT', [['tagging', '']], document('<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>'));
    case 'DeleteObjectTagging':
      return object('DELETE', [['tagging', '']]);
    case 'PutObjectAcl':
      return object('PUT', [['acl', '']], aclDocument(c.aclBody));
    case 'PutObjectRetention':
      return object(
        'PUT',
        [['retention', '']],
        document('<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2030-01-01T00:00:00Z</RetainUntilDate></Retention>'),
      );
    case 'PutObjectLegalHold':
      return object('PUT', [['legal-hold', '']], document('<LegalHold><Status>ON</Status></LegalHold>'));
    case 'CreateMultipartUpload':
      return object('POST', [['uploads', '']], Buffer.alloc(0));
    case 'UploadPart':
      return object('PUT', upload, payload);
    case 'UploadPartCopy':
      return { ...object('PUT', upload, Buffer.alloc(0)), copySource };
    case 'CompleteMultipartUpload':
      return object(
        'POST',
        [['uploadId', uploadId]],
        document('<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"0123456789abcdef0123456789abcdef"</ETag></Part></CompleteMultipartUpload>'),
      );
    case 'AbortMultipartUpload':
      return object('DELETE', [['uploadId', uploadId]]);
    case 'DeleteObject':
      return object('DELETE');
  }
}

function encodeQuery(query: Array<[string, string]>, bare: ReadonlySet<string>): string {
  return query.map(([name, value]) => (value === '' && bare.has(name) ? rfc3986(name) : `${rfc3986(name)}=${rfc3986(value)}`)).join('&');
}

const titleCase = (name: string) => name.replace(/(^|-)([a-z])/g, (_m, dash: string, letter: string) => dash + letter.toUpperCase());

async function resolveValues(headers: Array<[string, HeaderValue]>, body: Buffer): Promise<Array<[string, string]>> {
  return Promise.all(
    headers.map(async ([name, value]): Promise<[string, string]> => [name, 'literal' in value ? value.literal : await digest(value.digestOf, body)]),
  );
}

/** What one client request is, for sending and for judging what the upstream got. */
interface Prepared {
  c: Case;
  profile: KeyProfile;
  tag: string;
  raw: RawRequest;
  method: string;
  bucket: string | null;
  objectKey: string | null;
  /** Decoded query the client sent. */
  query: Array<[string, string]>;
  /** The headers (or for POST Object: the form's fields as headers) the operation is judged against. */
  clientHeaders: Map<string, string>;
  body: Buffer;
  /** POST Object: the file. */
  file: Buffer | null;
  /** Copy operations: the source the client named. */
  copySource: { bucket: string; key: string; versionId: string | null } | null;
  /** The upstream's id of the upload the request names (the gateway may hand out ids of its own). */
  upstreamUploadId: string | null;
}

/** Operations on an existing multipart upload: their request names one by its upload id. */
const UPLOAD_OPERATIONS: ReadonlySet<OperationName> = new Set(['ListParts', 'UploadPart', 'UploadPartCopy', 'CompleteMultipartUpload', 'AbortMultipartUpload']);

/** An upload started through the gateway: the id its client got, and the upstream's own. */
interface Upload {
  clientId: string;
  upstreamId: string;
}

function prepare(c: Case, keys: CreatedKey[], host: string, tag: string, upload: Upload | null): Promise<Prepared> {
  return c.op === 'PostObject' ? prepareForm(c, keys, host, tag) : prepareSigned(c, keys, host, tag, upload);
}

async function prepareSigned(c: Case, keys: CreatedKey[], host: string, tag: string, upload: Upload | null): Promise<Prepared> {
  const base = baseRequest(c, upload?.clientId ?? 'no-upload');
  const body = base.body ?? Buffer.alloc(0);
  const trailer = base.body !== null && c.payloadMode === 'trailer' ? `x-amz-checksum-${c.trailerAlgorithm}` : null;
  // A checksum sent as a trailer is not also sent as a header.
  const extra = await resolveValues(trailer === null ? c.headers : c.headers.filter(([name]) => name !== trailer), body);
  const baseNames = new Set(base.query.map(([name]) => name));
  const query = [...base.query, ...c.query.filter(([name]) => !baseNames.has(name))];
  const path = base.bucket === null ? '/' : `/${base.bucket}${base.objectKey === null ? '' : `/${encodeKeyPath(base.objectKey)}`}`;
  const queryText = encodeQuery(query, baseNames);
  const target = queryText === '' ? path : `${path}?${queryText}`;
  const values = new Map<string, string[]>();
  for (const [name, value] of extra) values.set(name, [...(values.get(name) ?? []), value]);
  const headers: Record<string, string> = {};
  const clientHeaders = new Map<string, string>();
  for (const [name, list] of values) {
    headers[c.titleCaseHeaders ? titleCase(name) : name] = list.join(',');
    clientHeaders.set(name, list.join(','));
  }
  let wire = base.body ?? undefined;
  if (trailer !== null) {
    // aws-chunked, unsigned, one chunk and the trailer (test/integration/fuzz.test.ts has the signed kind).
    const rest = values.get('content-encoding')?.join(',');
    const encoding = rest === undefined ? 'aws-chunked' : `aws-chunked,${rest}`;
    for (const name of Object.keys(headers)) if (name.toLowerCase() === 'content-encoding') delete headers[name];
    values.delete('content-encoding');
    headers['content-encoding'] = encoding;
    clientHeaders.set('content-encoding', encoding);
    headers['x-amz-content-sha256'] = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';
    headers['x-amz-decoded-content-length'] = String(body.length);
    headers['x-amz-trailer'] = trailer;
    const chunk = body.length === 0 ? [] : [Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n')];
    wire = Buffer.concat([...chunk, Buffer.from(`0\r\n${trailer}:${await digest(c.trailerAlgorithm, body)}\r\n\r\n`)]);
  }
  if (base.copySource !== null) {
    headers['x-amz-copy-source'] = base.copySource;
    clientHeaders.set('x-amz-copy-source', base.copySource);
  }
  if (base.body !== null && c.payloadMode === 'unsigned') headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
  const key = keys[c.keyIndex]!;
  const signed = signedHeaders({ accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey, region: REGION }, host, base.method, target, {
    body: wire,
    headers,
  });
  // A repeated header goes out as separate lines (its signature covers them joined with ',').
  const rawHeaders: Array<[string, string]> = Object.entries(signed).flatMap(([name, value]): Array<[string, string]> => {
    const list = values.get(name.toLowerCase());
    return list !== undefined && list.length > 1 ? list.map((one): [string, string] => [name, one]) : [[name, String(value)]];
  });
  rawHeaders.push(['User-Agent', tag], ['Connection', 'close']);
  return {
    c,
    profile: KEY_PROFILES[c.keyIndex]!,
    tag,
    raw: { method: base.method, target, headers: rawHeaders, body: wire },
    method: base.method,
    bucket: base.bucket,
    objectKey: base.objectKey,
    query,
    clientHeaders,
    body,
    file: null,
    copySource: base.copySource === null ? null : { ...c.source },
    upstreamUploadId: upload?.upstreamId ?? null,
  };
}

/** The form's fields as the request headers they describe: `acl` is x-amz-acl; the form's own fields are not headers. */
const FORM_ONLY_FIELDS = new Set(['content-md5', 'x-amz-security-token']);

async function prepareForm(c: Case, keys: CreatedKey[], host: string, tag: string): Promise<Prepared> {
  const file = Buffer.from(c.payload);
  const fields = await resolveValues(c.form.fields, file);
  const key = keys[c.keyIndex]!;
  const conditions: unknown[] = [{ bucket: c.bucket }, ['starts-with', '$key', ''], ...fields.map(([name]) => ['starts-with', `$${name}`, ''])];
  const auth = signPolicy({ accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey, region: REGION }, conditions);
  const parts = [
    { name: 'key', value: c.form.keyTemplate },
    ...(c.form.repeatBucket ? [{ name: 'bucket', value: c.bucket }] : []),
    ...Object.entries(auth).map(([name, value]) => ({ name, value })),
    ...fields.map(([name, value]) => ({ name, value })),
    { name: 'file', value: file, filename: 'f.bin', contentType: 'application/octet-stream' },
  ];
  const form = multipartForm(parts);
  const httpHeaders = await resolveValues(c.form.httpHeaders, form.body);
  const baseNames = new Set<string>();
  const query = c.query;
  const path = `/${c.bucket}`;
  const queryText = encodeQuery(query, baseNames);
  const target = queryText === '' ? path : `${path}?${queryText}`;
  const rawHeaders: Array<[string, string]> = [
    ['Host', host],
    ...httpHeaders.map(([name, value]): [string, string] => [c.titleCaseHeaders ? titleCase(name) : name, value]),
    ['Content-Type', form.contentType],
    ['Content-Length', String(form.body.length)],
    ['User-Agent', tag],
    ['Connection', 'close'],
  ];
  const clientHeaders = new Map<string, string>();
  for (const [name, value] of fields) {
    if (FORM_ONLY_FIELDS.has(name)) continue;
    const header = name === 'acl' ? 'x-amz-acl' : name;
    clientHeaders.delete(header);
    clientHeaders.set(header, value);
  }
  return {
    c,
    profile: KEY_PROFILES[c.keyIndex]!,
    tag,
    raw: { method: 'POST', target, headers: rawHeaders, body: form.body },
    method: 'POST',
    bucket: c.bucket,
    objectKey: c.form.keyTemplate.replaceAll('${filename}', 'f.bin'),
    query,
    clientHeaders,
    body: form.body,
    file,
    copySource: null,
    upstreamUploadId: null,
  };
}

// ---------------------------------------------------------------------------------------------
// The model: what the gateway may do with a request

/** The headers of the operation's groups the client sent, as the upstream should get them. */
function forwardable(op: OperationName, clientHeaders: Map<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, raw] of clientHeaders) {
    if (!inGroups(op, name)) continue;
    const value = name === 'content-encoding' ? withoutAwsChunked(raw) : raw;
    if (value === '' || isDefaultValue(name, value)) continue;
    out.set(name, value);
  }
  return out;
}

/** Why the key may not do this (AccessDenied expected, nothing upstream), or null. */
function expectedRefusal(p: Prepared): { reason: string; beforeBody: boolean } | null {
  const { profile, c } = p;
  const entry = spec(c.op);
  if (p.bucket !== null && !mayUse(profile, p.bucket)) return { reason: `bucket ${p.bucket} is outside the key's scope`, beforeBody: true };
  if (!has(profile, entry.permission)) return { reason: `the operation needs ${entry.permission}`, beforeBody: true };
  for (const [name, value] of p.clientHeaders) {
    if (!inGroups(c.op, name)) continue;
    for (const power of POWERS) {
      if (!power.names.includes(name) || !power.triggers(name, value)) continue;
      const missing = power.needs.filter((permission) => !has(profile, permission));
      if (missing.length > 0) return { reason: `${name}: ${value} needs ${missing.join('+')}`, beforeBody: true };
    }
  }
  if (p.copySource !== null && !mayUse(profile, p.copySource.bucket))
    return { reason: `copy source bucket ${p.copySource.bucket} is outside the key's scope`, beforeBody: true };
  if (c.op === 'PutObjectAcl' && aclGrantsOthers(c.aclBody) && !has(profile, 'admin')) {
    return { reason: 'the ACL document grants access to others', beforeBody: false };
  }
  return null;
}

const hasDotSegment = (key: string) => key.split('/').some((segment) => segment === '.' || segment === '..');
const prefixHasDotSegment = (prefix: string) => {
  const lastSlash = prefix.lastIndexOf('/');
  return (lastSlash !== -1 && hasDotSegment(prefix.slice(0, lastSlash))) || prefix.slice(lastSlash + 1) === '..';
};

/**
 * What in an allowed request the gateway may rightly refuse (the generators make such inputs on
 * purpose), or null: a request with none of these must go through.
 */
function invalidInput(p: Prepared): string | null {
  const { c } = p;
  // Digests the gateway verifies against the body (any request with one): a random one is wrong.
  if (p.method === 'PUT' || p.method === 'POST') {
    for (const [name, value] of c.op === 'PostObject' ? [] : c.headers) {
      const verified = name === 'content-md5' || (CHECKSUM_ALGORITHM_OF[name] !== undefined && c.op !== 'CompleteMultipartUpload');
      if (verified && 'literal' in value) return `${name} is not the digest of the body`;
    }
  }
  // ListBuckets pages are the gateway's: a page size out of 1..10000 or a token it did not issue is refused.
  if (c.op === 'ListBuckets') {
    const value = (name: string) => p.query.find(([n]) => n === name)?.[1] ?? '';
    const size = value('max-buckets');
    if (size !== '' && !(/^\d{1,5}$/.test(size) && Number(size) >= 1 && Number(size) <= 10_000)) return 'max-buckets out of 1..10000';
    const token = value('continuation-token');
    // Issued tokens are canonical base64url of a bucket name (any name): they decode and encode back the same.
    const canonical = (text: string) => Buffer.from(Buffer.from(text, 'base64url').toString('utf8'), 'utf8').toString('base64url') === text;
    if (token !== '' && !(/^[A-Za-z0-9_-]{1,400}$/.test(token) && canonical(token))) {
      return 'a continuation-token the gateway did not issue';
    }
  }
  // A per-bucket key may not use "." or ".." segments (keys, copy sources, listing prefixes).
  if (p.profile.bucket !== null) {
    if (p.objectKey !== null && hasDotSegment(p.objectKey)) return 'a dot segment in the key';
    if (p.copySource !== null && hasDotSegment(p.copySource.key)) return 'a dot segment in the copy source';
    const prefix = p.query.find(([name]) => name === 'prefix');
    if (prefix !== undefined && spec(c.op).query.includes('prefix') && prefixHasDotSegment(prefix[1])) return 'a dot segment in the listing prefix';
  }
  return null;
}

/** Whether a PutObjectAcl request is sent as the canned private ACL (no body). */
function sentAsPrivateAcl(p: Prepared): boolean {
  const powers = [...forwardable('PutObjectAcl', p.clientHeaders).keys()].some((name) => name === 'x-amz-acl' || name.startsWith('x-amz-grant-'));
  return !powers && !aclGrantsOthers(p.c.aclBody);
}

// ---------------------------------------------------------------------------------------------
// Judging what the upstream got

interface Context {
  /** null: a set-up request, not judged. */
  prepared: Prepared | null;
  captures: CapturedRequest[];
}

type CaptureRole = 'forward' | 'single-delete' | 'list-buckets';

function roleOf(p: Prepared): CaptureRole {
  if (p.c.op === 'DeleteObjects') return 'single-delete';
  if (p.c.op === 'ListBuckets') return 'list-buckets';
  return 'forward';
}

function one(capture: CapturedRequest, name: string): string | undefined {
  const values = capture.headers[name];
  if (values === undefined) return undefined;
  expect(values, `header ${name} sent upstream more than once`).toHaveLength(1);
  return values[0];
}

function decodeCopySource(value: string): { bucket: string; key: string; versionId: string | null } {
  const [pathPart = '', queryPart] = value.split('?', 2);
  const decoded = decodeURIComponent(pathPart.replace(/^\//, ''));
  const slash = decoded.indexOf('/');
  const versionId = queryPart === undefined ? null : new URLSearchParams(queryPart).get('versionId');
  return { bucket: decoded.slice(0, slash), key: decoded.slice(slash + 1), versionId };
}

/** The decoded body and trailers of an aws-chunked body (unsigned chunks). */
function decodeAwsChunked(raw: Buffer): { body: Buffer; trailers: Map<string, string> } {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = raw.indexOf('\r\n', at);
    if (lineEnd === -1) throw new Error(`aws-chunked body without a final chunk: ${raw.toString('latin1')}`);
    const size = Number.parseInt(raw.subarray(at, lineEnd).toString('latin1').split(';')[0]!, 16);
    at = lineEnd + 2;
    if (size === 0) break;
    parts.push(raw.subarray(at, at + size));
    at += size + 2;
  }
  const trailers = new Map<string, string>();
  for (const line of raw.subarray(at).toString('latin1').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) trailers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { body: Buffer.concat(parts), trailers };
}

async function checkCapture(p: Prepared, capture: CapturedRequest): Promise<void> {
  const op = p.c.op;
  const entry = spec(op);
  const role = roleOf(p);
  const where = `${op} (${p.profile.label}) -> upstream ${capture.method} ${capture.rawPath}${capture.rawQuery ? `?${capture.rawQuery}` : ''}`;

  // The gateway's own signature, never the client's.
  const authorization = one(capture, 'authorization');
  expect(authorization, `${where}: authorization`).toMatch(new RegExp(`^AWS4-HMAC-SHA256 Credential=${UPSTREAM_KEY_ID}/\\d{8}/${REGION}/s3/aws4_request,`));

  // (6) and the path: the request's own bucket (and object), never another.
  if (p.profile.bucket !== null) {
    expect(
      capture.rawPath === '/' || capture.rawPath === `/${p.profile.bucket}` || capture.rawPath.startsWith(`/${p.profile.bucket}/`),
      `${where}: a per-bucket key's request addresses another bucket`,
    ).toBe(true);
  }

  let allowedQuery: ReadonlySet<string>;
  let groupsOf: (name: string) => boolean;
  let expectedHeaders: Map<string, string>;
  switch (role) {
    case 'list-buckets':
      // The gateway lists the default upstream's buckets itself: GET /, nothing of the client's.
      expect(capture.method).toBe('GET');
      expect(capture.rawPath).toBe('/');
      allowedQuery = new Set();
      groupsOf = () => false;
      expectedHeaders = new Map();
      break;
    case 'single-delete': {
      expect(capture.method, where).toBe('DELETE');
      const entryOf = p.c.deletes.find((candidate) => capture.rawPath === `/${p.bucket}/${encodeKeyPath(candidate.key)}`);
      expect(entryOf, `${where}: a single delete of a key the batch did not list`).toBeDefined();
      expect(capture.query, where).toEqual(entryOf!.versionId === null ? [] : [['versionId', entryOf!.versionId]]);
      allowedQuery = new Set(['versionId']);
      groupsOf = (name) => inGroups(op, name);
      expectedHeaders = forwardable(op, p.clientHeaders);
      break;
    }
    case 'forward': {
      expect(capture.method, where).toBe(entry.upstreamMethod ?? p.method);
      const expectedPath = `/${p.bucket}${p.objectKey === null ? '' : `/${encodeKeyPath(p.objectKey)}`}`;
      expect(capture.rawPath, where).toBe(expectedPath);
      const marker =
        entry.subresource ??
        (['GetBucketConfiguration', 'PutBucketConfiguration', 'DeleteBucketConfiguration'].includes(op) ? p.c.configSubresource : undefined);
      allowedQuery = new Set([...(marker === undefined ? [] : [marker]), ...entry.query]);
      if (marker !== undefined)
        expect(
          capture.query.map(([name]) => name),
          `${where}: the sub-resource`,
        ).toContain(marker);
      groupsOf = (name) => inGroups(op, name);
      expectedHeaders = forwardable(op, p.clientHeaders);
      break;
    }
  }

  // (2) The query: the entry's names only, with the client's values.
  for (const [name, value] of capture.query) {
    expect(allowedQuery.has(name), `${where}: query parameter "${name}" is not the operation's`).toBe(true);
    const sent = p.query.find(([clientName]) => clientName === name);
    // An upload id names the upstream's upload (the client's may be the gateway's sealed form of it).
    if (name === 'uploadId' && role === 'forward') expect(value, `${where}: the upload id`).toBe(p.upstreamUploadId);
    else if (role !== 'single-delete') expect(sent?.[1], `${where}: query parameter "${name}"`).toBe(value);
  }
  const names = capture.query.map(([name]) => name);
  expect(new Set(names).size, `${where}: repeated query parameters`).toBe(names.length);

  // (1) The headers.
  const copySourceAllowed = entry.copySource === true && role === 'forward';
  const privateAcl = op === 'PutObjectAcl' && sentAsPrivateAcl(p);
  for (const name of Object.keys(capture.headers)) {
    const value = one(capture, name)!;
    const what = `${where}: header ${name}: ${value}`;
    expect(NEVER_FORWARDED.includes(name) || name.startsWith('x-junk-'), `${what} must never go upstream`).toBe(false);
    if (FORWARDER_HEADERS.has(name) || CONNECTION_HEADERS.has(name)) continue;
    if (name === 'content-encoding' && capture.headers['x-amz-trailer'] !== undefined) {
      // The forwarder's own aws-chunked framing, before what the client's object is encoded with.
      expect(value.toLowerCase().startsWith('aws-chunked'), what).toBe(true);
      const rest = withoutAwsChunked(value);
      if (rest === '') continue;
      expect(expectedHeaders.get(name), what).toBe(rest);
      continue;
    }
    if (name === 'x-amz-copy-source') {
      expect(copySourceAllowed, `${what}: only copies send a copy source`).toBe(true);
      const source = decodeCopySource(value);
      // (3) A bucket the key may read: the one the client named, authorized as a read.
      expect(source, what).toEqual(p.copySource);
      expect(mayUse(p.profile, source.bucket) && has(p.profile, 'read'), `${what}: a copy source the key may not read`).toBe(true);
      continue;
    }
    if (privateAcl && name === 'x-amz-acl') {
      expect(value, what).toBe('private');
      continue;
    }
    if (op === 'PostObject' && name === 'content-md5') {
      expect(value, `${what}: the form file's MD5`).toBe(createHash('md5').update(p.file!).digest('base64'));
      continue;
    }
    expect(groupsOf(name), `${what} is not in the operation's header groups`).toBe(true);
    expect(expectedHeaders.has(name), `${what} was not sent by the client (or is a default that is dropped)`).toBe(true);
    expect(value, what).toBe(expectedHeaders.get(name));
  }
  if (copySourceAllowed) expect(capture.headers['x-amz-copy-source'], `${where}: the copy source`).toBeDefined();
  if (privateAcl) expect(capture.headers['x-amz-acl'], `${where}: PutObjectAcl with a private ACL sends x-amz-acl: private`).toEqual(['private']);

  // The user agent names the client's.
  const agent = one(capture, 'user-agent') ?? '';
  if (role === 'list-buckets' || op === 'PostObject') expect(agent, where).toMatch(/^keygate\/[^ ]+( \(\+.*\))?$/);
  else expect(agent, where).toMatch(new RegExp(`^keygate/[^ ]+ \\(\\+${p.tag}\\)$`));

  // The body (once it arrived whole): the client's object, document or form file; nothing else.
  if (capture.complete) {
    const trailerName = capture.headers['x-amz-trailer']?.[0];
    let sent = capture.body;
    let trailers = new Map<string, string>();
    if (trailerName !== undefined) {
      expect(capture.headers['x-amz-content-sha256'], where).toEqual(['STREAMING-UNSIGNED-PAYLOAD-TRAILER']);
      ({ body: sent, trailers } = decodeAwsChunked(capture.body));
      expect([...trailers.keys()], `${where}: the trailer`).toEqual([trailerName]);
      expect(capture.headers['x-amz-decoded-content-length'], where).toEqual([String(sent.length)]);
    }
    let expectedBody: Buffer;
    if (role !== 'forward' || entry.body.kind === 'none') expectedBody = Buffer.alloc(0);
    else if (op === 'PostObject')
      expectedBody = p.file!; // (5)
    else if (privateAcl) expectedBody = Buffer.alloc(0);
    else expectedBody = p.body;
    expect(sent.equals(expectedBody), `${where}: the body sent upstream (${sent.length} bytes) is not the ${expectedBody.length} bytes expected`).toBe(true);

    // (7) Checksums sent upstream describe what was sent (CompleteMultipartUpload's describe the object).
    if (!spec(op).headers.includes(HEADERS.objectChecksums) && op !== 'PostObject') {
      for (const [name, algorithm] of Object.entries(CHECKSUM_ALGORITHM_OF)) {
        const value = capture.headers[name]?.[0] ?? trailers.get(name);
        if (value === undefined) continue;
        expect(value, `${where}: ${name} does not describe the ${sent.length}-byte body sent upstream`).toBe(await digest(algorithm, sent));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------

describe('the operations table, end to end: only what an entry allows reaches the upstream', () => {
  let upstream: CapturingUpstream;
  let gateway: Gateway;
  let keys: CreatedKey[];
  let port: number;
  let host: string;
  const contexts = new Map<string, Context>();
  let current: Context | null = null;
  const orphans: CapturedRequest[] = [];
  let counter = 0;
  const runId = randomBytes(4).toString('hex');
  const stats = new Map<OperationName, { sent: number; forwarded: number; trailers: number; refused: number; statuses: Map<string, number> }>();

  beforeAll(async () => {
    upstream = await startCapturingUpstream();
    upstream.buckets = [MINE, OTHER];
    upstream.onRequest = (capture) => {
      const agent = capture.headers['user-agent']?.[0] ?? '';
      const tag = /\(\+(prop-[^)]+)\)$/.exec(agent)?.[1];
      const context = tag === undefined ? current : contexts.get(tag);
      if (context === undefined || context === null) orphans.push(capture);
      else context.captures.push(capture);
    };
    gateway = await startGateway({
      ...upstreamEnv({ endpoint: upstream.endpoint, region: REGION, accessKeyId: UPSTREAM_KEY_ID, secretAccessKey: 'upstream-secret' }),
      KEYGATE_ACCESS_LOG: 'off',
    });
    keys = [];
    for (const profile of KEY_PROFILES) {
      keys.push(
        await gateway.createKey(
          profile.bucket === null
            ? { name: profile.label, permissions: profile.permissions }
            : { name: profile.label, bucket: profile.bucket, preset: 'read-write' },
        ),
      );
    }
    port = Number(new URL(gateway.url).port);
    host = `127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await gateway?.stop();
    await upstream?.stop();
  });

  /**
   * Starts a multipart upload through the gateway (all-permissions key), for a case that names one:
   * a set-up request, not judged.
   */
  async function startUpload(bucket: string, objectKey: string): Promise<Upload> {
    const tag = `prop-${runId}-${++counter}-setup`;
    const context: Context = { prepared: null, captures: [] };
    contexts.set(tag, context);
    const target = `/${bucket}/${encodeKeyPath(objectKey)}?uploads`;
    const key = keys[ADMIN_KEY]!;
    const signed = signedHeaders({ accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey, region: REGION }, host, 'POST', target, {
      body: Buffer.alloc(0),
    });
    const response = await exchange(port, {
      method: 'POST',
      target,
      headers: [...Object.entries(signed).map(([n, v]): [string, string] => [n, String(v)]), ['User-Agent', tag], ['Connection', 'close']],
      body: Buffer.alloc(0),
    });
    const clientId = /<UploadId>([^<]+)<\/UploadId>/.exec(response.body)?.[1];
    expect(response.status, `starting an upload: ${response.body}`).toBe(200);
    expect(context.captures, 'starting an upload').toHaveLength(1);
    return { clientId: clientId!, upstreamId: `upload-${context.captures[0]!.seq}` };
  }

  /** Sends one case and judges it; returns the response and what was captured for it. */
  async function run(c: Case): Promise<{ response: RawResponse; captures: CapturedRequest[]; prepared: Prepared }> {
    const tag = `prop-${runId}-${++counter}`;
    const upload = UPLOAD_OPERATIONS.has(c.op) ? await startUpload(c.bucket, c.objectKey) : null;
    const prepared = await prepare(c, keys, host, tag, upload);
    const context: Context = { prepared, captures: [] };
    contexts.set(tag, context);
    current = context;
    let response: RawResponse;
    try {
      response = await exchange(port, prepared.raw, { timeoutMs: 20_000 });
    } finally {
      current = null;
    }
    await Promise.all(context.captures.map((capture) => capture.settled));
    const where = `${c.op} (${prepared.profile.label}) ${prepared.raw.method} ${prepared.raw.target}`;
    expect(Number.isInteger(response.status) && response.status >= 100 && response.status < 600, `${where}: no status`).toBe(true);
    expect(response.status, `${where}: a 5xx from a gateway whose upstream always succeeds: ${response.body}`).toBeLessThan(500);
    expect(orphans, 'upstream requests tied to no client request').toEqual([]);

    const entry = stats.get(c.op) ?? { sent: 0, forwarded: 0, trailers: 0, refused: 0, statuses: new Map() };
    entry.sent++;
    if (context.captures.length > 0) entry.forwarded++;
    if (context.captures.some((capture) => capture.headers['x-amz-trailer'] !== undefined)) entry.trailers++;
    const statusKey = `${response.status}${errorCode(response) ? ` ${errorCode(response)}` : ''}`;
    entry.statuses.set(statusKey, (entry.statuses.get(statusKey) ?? 0) + 1);
    stats.set(c.op, entry);

    const refusal = expectedRefusal(prepared);
    if (refusal !== null) {
      entry.refused++;
      // (4) Nothing upstream, and AccessDenied (a refusal after the body was read may be the body's own problem).
      expect(
        context.captures.map((capture) => `${capture.method} ${capture.rawPath}?${capture.rawQuery}`),
        `${where}: ${refusal.reason}, yet the upstream got`,
      ).toEqual([]);
      // Refused by authorization: before anything else of the request is looked at. Refused by the
      // ACL handler: after the checks of the key, the copy source and the body.
      if (refusal.beforeBody || invalidInput(prepared) === null) {
        // A HEAD answer has no body: its status is all there is.
        expect([response.status, prepared.method === 'HEAD' ? 'AccessDenied' : errorCode(response)], `${where}: ${refusal.reason}: ${response.body}`).toEqual([
          403,
          'AccessDenied',
        ]);
      } else {
        expect(response.status, `${where}: ${refusal.reason}: ${response.body}`).toBeGreaterThanOrEqual(400);
      }
    } else {
      const invalid = invalidInput(prepared);
      if (invalid === null) {
        // An allowed, valid request goes through (GetBucketLocation is answered by the gateway itself).
        expect(response.status, `${where}: an allowed, valid request failed: ${response.body}`).toBeLessThan(300);
        if (c.op !== 'GetBucketLocation') expect(context.captures.length, `${where}: an allowed, valid request reached nothing upstream`).toBeGreaterThan(0);
      }
      const refusedAsDenied = prepared.method === 'HEAD' ? response.status === 403 : errorCode(response) === 'AccessDenied';
      expect(refusedAsDenied, `${where}: an allowed request was refused as AccessDenied: ${response.status} ${response.body}`).toBe(false);
    }
    if (c.op === 'GetBucketLocation') expect(context.captures, `${where}: GetBucketLocation is the gateway's own answer`).toEqual([]);
    if (c.op === 'ListBuckets' && response.status === 200) expect(context.captures.length, `${where}: one listing of the default upstream`).toBe(1);
    if (c.op === 'DeleteObjects' && response.status === 200) {
      const inScope = c.deletes.filter((entry) => prepared.profile.bucket === null || !/(^|\/)\.\.?(\/|$)/.test(entry.key));
      expect(context.captures.length, `${where}: one single delete per listed key`).toBe(inScope.length);
    }
    for (const capture of context.captures) await checkCapture(prepared, capture);
    return { response, captures: context.captures, prepared };
  }

  it.each(OPERATION_NAMES)('%s: the plain request with the all-permissions key works', async (op) => {
    const { response, captures } = await run(baseCase(op));
    expect(response.status, response.body).toBeGreaterThanOrEqual(200);
    expect(response.status, response.body).toBeLessThan(300);
    if (op === 'GetBucketLocation') expect(captures).toHaveLength(0);
    else expect(captures.length).toBeGreaterThan(0);
  });

  // Minimal reproductions of what the property found; they fail until the gateway is fixed.
  //
  // 1. PutObjectAcl with an ACL that grants only the owner is sent upstream as the canned
  //    `x-amz-acl: private` without a body (handlers.ts putObjectAcl), but with the client's body
  //    checksum headers (content-md5, x-amz-checksum-*, x-amz-sdk-checksum-algorithm), which
  //    describe the document that is no longer sent: S3 answers BadDigest. The AWS SDKs always send
  //    a checksum with PutObjectAcl (requestChecksumRequired), so this is every SDK client setting
  //    an owner-only ACL.
  // 2. PutObjectAcl with an ACL that needs `admin` re-sends the document decoded as UTF-8 and
  //    encoded again (readSmallBody + Buffer.from(body)) under the client's Content-Length: a
  //    document that is not UTF-8 (ISO-8859-1, declared as such, is valid XML) changes length and
  //    bytes, and the request fails with IncompleteBody (or, at equal length, would send other bytes).
  it('PutObjectAcl with a private ACL document and its checksum (as the AWS SDKs send it): no checksum of a body that is not sent', async () => {
    await run({
      ...baseCase('PutObjectAcl'),
      keyIndex: 0,
      aclBody: 'owner-only',
      headers: [
        ['x-amz-sdk-checksum-algorithm', { literal: 'CRC32' }],
        ['x-amz-checksum-crc32', { digestOf: 'crc32' }],
      ],
    });
  });

  it('PutObjectAcl granting access with a document that is not UTF-8 (admin key): forwarded byte for byte', async () => {
    await run({ ...baseCase('PutObjectAcl'), keyIndex: ADMIN_KEY, aclBody: 'latin1-public' });
  });

  it(`holds for ${NUM_RUNS} random requests over the whole table`, { timeout: 300_000 }, async () => {
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(anyCaseArb, async (c) => {
        await run(c);
      }),
      { numRuns: NUM_RUNS, seed: SEED },
    );
    // Upstream requests that arrived after their client request was judged are judged now.
    for (const context of contexts.values()) {
      for (const capture of context.captures) if (context.prepared !== null) await checkCapture(context.prepared, capture);
    }
    expect(orphans).toEqual([]);
    const lines = [...stats.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(
        ([op, s]) =>
          `${op.padEnd(28)} sent ${String(s.sent).padStart(3)} forwarded ${String(s.forwarded).padStart(3)} (with a trailer ${String(s.trailers).padStart(3)}) refused-by-model ${String(s.refused).padStart(3)}  ${[...s.statuses.entries()].map(([k, n]) => `${k}×${n}`).join(', ')}`,
      );
    console.log(`forwarding property: ${NUM_RUNS} runs in ${Date.now() - started} ms\n${lines.join('\n')}`);
  });

  it('the gateway is still healthy', async () => {
    const health = await fetch(`${gateway.url}/_health`);
    expect(health.status).toBe(200);
  });
});
