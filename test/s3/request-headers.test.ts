/**
 * Which client request headers an operation sends upstream: only its own header groups
 * (operations.ts), with the powers some of them carry reported as requirements for authorize().
 */
import { describe, expect, it } from 'vitest';
import { describeOperation } from '../../src/s3/classify.js';
import { OPERATIONS } from '../../src/s3/operations.js';
import { forwardedHeaders, HEADERS, rememberedHeaderNames, withoutAwsChunked } from '../../src/s3/request-headers.js';

/** Everything a client (an SDK, a proxy in front of the gateway) may send with an upload. */
const CLIENT_HEADERS = {
  host: 'gateway.example',
  authorization: 'AWS4-HMAC-SHA256 Credential=rs_ak_live_x/…',
  'x-amz-date': '20250101T000000Z',
  'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
  'x-amz-decoded-content-length': '5',
  'x-amz-trailer': 'x-amz-checksum-crc32',
  'x-amz-security-token': 'token',
  'x-amz-expected-bucket-owner': '123456789012',
  'transfer-encoding': 'chunked',
  connection: 'keep-alive',
  'keep-alive': 'timeout=5',
  expect: '100-continue',
  'content-length': '87',
  'x-forwarded-for': '10.0.0.1',
  'content-encoding': 'aws-chunked,gzip',
  'content-type': 'text/plain',
  'content-md5': 'XUFAKrxLKna5cZ2REBfFkg==',
  'cache-control': 'no-cache',
  'content-disposition': 'attachment',
  'content-language': 'en',
  expires: 'Thu, 01 Dec 2094 16:00:00 GMT',
  range: 'bytes=0-1',
  'if-match': '"e"',
  'if-none-match': '"f"',
  'if-modified-since': 'Thu, 01 Dec 1994 16:00:00 GMT',
  'if-unmodified-since': 'Thu, 01 Dec 2094 16:00:00 GMT',
  'x-amz-meta-colour': 'blue',
  'x-amz-copy-source': '/src/key',
  'x-amz-copy-source-range': 'bytes=0-9',
  'x-amz-copy-source-if-match': '"s"',
  'x-amz-metadata-directive': 'REPLACE',
  'x-amz-tagging-directive': 'COPY',
  'x-amz-storage-class': 'STANDARD',
  'x-amz-checksum-algorithm': 'CRC32',
  'x-amz-checksum-type': 'FULL_OBJECT',
  'x-amz-sdk-checksum-algorithm': 'CRC32',
  'x-amz-server-side-encryption': 'AES256',
  'x-amz-website-redirect-location': '/x',
  'x-amz-request-payer': 'requester',
  'user-agent': 'aws-cli/2.23',
};

const PUT_OBJECT = OPERATIONS.PutObject.headers;

describe('headers a PutObject sends upstream', () => {
  it("keeps its own groups and drops signature, framing, connection, bucket-owner and other operations' headers", () => {
    const { headers, requirements } = forwardedHeaders(PUT_OBJECT, CLIENT_HEADERS);
    expect(Object.keys(headers).sort()).toEqual(
      [
        'cache-control',
        'content-disposition',
        'content-encoding',
        'content-language',
        'content-md5',
        'content-type',
        'expires',
        'if-match',
        'if-none-match',
        'x-amz-meta-colour',
        'x-amz-sdk-checksum-algorithm',
        'x-amz-server-side-encryption',
        'x-amz-storage-class',
        'x-amz-website-redirect-location',
      ].sort(),
    );
    expect(headers).toMatchObject({ 'content-type': 'text/plain', 'x-amz-meta-colour': 'blue', 'if-match': '"e"', 'x-amz-server-side-encryption': 'AES256' });
    // AES256 is the storage's own default encryption: nothing beyond `write`.
    expect(requirements).toEqual([]);
  });

  it('removes aws-chunked from Content-Encoding, and leaves any other value exactly as sent', () => {
    expect(forwardedHeaders(PUT_OBJECT, { 'content-encoding': 'aws-chunked,gzip' }).headers).toEqual({ 'content-encoding': 'gzip' });
    expect(forwardedHeaders(PUT_OBJECT, { 'content-encoding': 'gzip, AWS-CHUNKED ,br' }).headers).toEqual({ 'content-encoding': 'gzip,br' });
    expect(forwardedHeaders(PUT_OBJECT, { 'content-encoding': 'deflate, gzip' }).headers).toEqual({ 'content-encoding': 'deflate, gzip' });
    expect(forwardedHeaders(PUT_OBJECT, { 'content-encoding': 'aws-chunked' }).headers).toEqual({});
    expect(withoutAwsChunked('deflate, gzip')).toBe('deflate, gzip');
    expect(withoutAwsChunked(' aws-chunked ')).toBe('');
  });

  it('never forwards x-amz-copy-source (nor its conditions, range or directives)', () => {
    const { headers } = forwardedHeaders(PUT_OBJECT, {
      'x-amz-copy-source': '/other-bucket/secret',
      'x-amz-copy-source-range': 'bytes=0-9',
      'x-amz-copy-source-if-match': '"s"',
      'x-amz-copy-source-server-side-encryption-customer-key': 'k',
      'x-amz-metadata-directive': 'REPLACE',
    });
    expect(headers).toEqual({});
  });

  it('drops a private ACL (the default) without a requirement', () => {
    for (const acl of ['private', ' Private ', 'bucket-owner-full-control']) {
      expect(forwardedHeaders(PUT_OBJECT, { 'x-amz-acl': acl })).toEqual({ headers: {}, requirements: [] });
    }
  });

  it('keeps ACL grants and reports that they need admin and the acl capability', () => {
    const { headers, requirements } = forwardedHeaders(PUT_OBJECT, {
      'x-amz-acl': 'public-read',
      'x-amz-grant-read': 'uri=http://acs.amazonaws.com/groups/global/AllUsers',
    });
    expect(headers).toEqual({ 'x-amz-acl': 'public-read', 'x-amz-grant-read': 'uri=http://acs.amazonaws.com/groups/global/AllUsers' });
    expect(requirements).toEqual([
      { header: 'x-amz-acl', purpose: 'ACL', permissions: ['admin'], capability: 'acl' },
      { header: 'x-amz-grant-read', purpose: 'ACL', permissions: ['admin'], capability: 'acl' },
    ]);
  });

  it('keeps object-lock headers and reports that they need admin and the objectLock capability', () => {
    const lock = {
      'x-amz-object-lock-mode': 'GOVERNANCE',
      'x-amz-object-lock-retain-until-date': '2030-01-01T00:00:00Z',
      'x-amz-object-lock-legal-hold': 'ON',
    };
    const { headers, requirements } = forwardedHeaders(PUT_OBJECT, lock);
    expect(headers).toEqual(lock);
    expect(requirements).toEqual(Object.keys(lock).map((header) => ({ header, purpose: 'object lock', permissions: ['admin'], capability: 'objectLock' })));
  });

  it('keeps AES256 encryption without a requirement, while a KMS key needs admin', () => {
    expect(forwardedHeaders(PUT_OBJECT, { 'x-amz-server-side-encryption': 'aes256' })).toEqual({
      headers: { 'x-amz-server-side-encryption': 'aes256' },
      requirements: [],
    });
    const kms = forwardedHeaders(PUT_OBJECT, { 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id': 'arn:aws:kms:key/1' });
    expect(kms.headers).toEqual({ 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id': 'arn:aws:kms:key/1' });
    expect(kms.requirements).toEqual([
      { header: 'x-amz-server-side-encryption', purpose: 'encryption with a KMS key', permissions: ['admin'], capability: undefined },
      { header: 'x-amz-server-side-encryption-aws-kms-key-id', purpose: 'encryption with a KMS key', permissions: ['admin'], capability: undefined },
    ]);
  });

  it('keeps object tags, which need the tagging capability but no permission beyond write', () => {
    expect(forwardedHeaders(PUT_OBJECT, { 'x-amz-tagging': 'a=b' })).toEqual({
      headers: { 'x-amz-tagging': 'a=b' },
      requirements: [{ header: 'x-amz-tagging', purpose: 'object tags', permissions: [], capability: 'tagging' }],
    });
  });

  it('lower-cases names, joins repeated values, and needs a name after a prefix', () => {
    const { headers } = forwardedHeaders(PUT_OBJECT, {
      'Content-Type': 'text/plain',
      'X-Amz-Meta-Tags': ['a', 'b'],
      'x-amz-meta-': 'no name',
      'x-amz-metadata': 'not user metadata',
      'content-language': undefined,
    });
    expect(headers).toEqual({ 'content-type': 'text/plain', 'x-amz-meta-tags': 'a,b' });
  });
});

describe('headers of other operations', () => {
  it('DeleteObject: a governance bypass needs admin and delete; anything but "true" is dropped', () => {
    const headers = OPERATIONS.DeleteObject.headers;
    expect(forwardedHeaders(headers, { 'x-amz-bypass-governance-retention': 'true' })).toEqual({
      headers: { 'x-amz-bypass-governance-retention': 'true' },
      requirements: [
        {
          header: 'x-amz-bypass-governance-retention',
          purpose: 'governance-mode retention bypass',
          permissions: ['admin', 'delete'],
          capability: 'objectLock',
        },
      ],
    });
    expect(forwardedHeaders(headers, { 'x-amz-bypass-governance-retention': 'false' })).toEqual({ headers: {}, requirements: [] });
    expect(forwardedHeaders(OPERATIONS.DeleteObjects.headers, { 'x-amz-bypass-governance-retention': ' TRUE ' }).requirements).toHaveLength(1);
    // Not a header of an upload.
    expect(forwardedHeaders(PUT_OBJECT, { 'x-amz-bypass-governance-retention': 'true' }).headers).toEqual({});
  });

  it('GetObject: read conditions, range, checksum mode and customer key; nothing of a write', () => {
    const { headers, requirements } = forwardedHeaders(OPERATIONS.GetObject.headers, {
      ...CLIENT_HEADERS,
      'x-amz-checksum-mode': 'ENABLED',
      'x-amz-server-side-encryption-customer-algorithm': 'AES256',
    });
    expect(Object.keys(headers).sort()).toEqual(
      [
        'if-match',
        'if-modified-since',
        'if-none-match',
        'if-unmodified-since',
        'range',
        'x-amz-checksum-mode',
        'x-amz-server-side-encryption-customer-algorithm',
      ].sort(),
    );
    expect(requirements).toEqual([]);
  });

  it('CopyObject: copy conditions and directives, but the copy source itself only through the copy handler', () => {
    const { headers } = forwardedHeaders(OPERATIONS.CopyObject.headers, CLIENT_HEADERS);
    expect(headers).toMatchObject({
      'x-amz-copy-source-if-match': '"s"',
      'x-amz-metadata-directive': 'REPLACE',
      'x-amz-tagging-directive': 'COPY',
      'x-amz-checksum-algorithm': 'CRC32',
    });
    expect(headers).not.toHaveProperty('x-amz-copy-source');
    expect(headers).not.toHaveProperty('x-amz-copy-source-range');
    expect(headers).not.toHaveProperty('content-md5');
    expect(headers).not.toHaveProperty('range');
  });

  it("CompleteMultipartUpload: the whole object's checksums and size, not body checksums", () => {
    const { headers } = forwardedHeaders(OPERATIONS.CompleteMultipartUpload.headers, {
      'x-amz-checksum-crc32': 'AAAAAA==',
      'x-amz-checksum-type': 'FULL_OBJECT',
      'x-amz-mp-object-size': '10',
      'content-md5': 'x',
      'x-amz-sdk-checksum-algorithm': 'CRC32',
    });
    expect(headers).toEqual({ 'x-amz-checksum-crc32': 'AAAAAA==', 'x-amz-checksum-type': 'FULL_OBJECT', 'x-amz-mp-object-size': '10' });
  });

  it('operations without header groups forward nothing', () => {
    for (const name of ['ListBuckets', 'HeadBucket', 'ListObjectsV2', 'AbortMultipartUpload'] as const) {
      expect(forwardedHeaders(OPERATIONS[name].headers, CLIENT_HEADERS), name).toEqual({ headers: {}, requirements: [] });
    }
  });

  it('the first group naming a header decides its rules', () => {
    const groups = [HEADERS.acl, { purpose: 'free ACL', names: ['x-amz-acl'] }];
    expect(forwardedHeaders(groups, { 'x-amz-acl': 'public-read' }).requirements).toHaveLength(1);
    expect(forwardedHeaders([...groups].reverse(), { 'x-amz-acl': 'public-read' }).requirements).toEqual([]);
  });

  it('decides the same for a header name seen before, and for names beyond those it remembers (sent by a hostile client)', () => {
    const groups = [HEADERS.acl, HEADERS.objectDescription];
    const first = forwardedHeaders(groups, { 'x-amz-grant-read': 'uri=everyone', 'x-amz-meta-a': '1', 'x-amz-copy-source': '/b/k' });
    for (let i = 0; i < 3; i++) {
      expect(forwardedHeaders(groups, { 'x-amz-grant-read': 'uri=everyone', 'x-amz-meta-a': '1', 'x-amz-copy-source': '/b/k' })).toEqual(first);
    }
    expect(first.headers).toEqual({ 'x-amz-grant-read': 'uri=everyone', 'x-amz-meta-a': '1' });
    expect(first.requirements.map((requirement) => requirement.header)).toEqual(['x-amz-grant-read']);
    const many: Record<string, string> = {};
    for (let i = 0; i < 2000; i++) many[`x-junk-${i}`] = 'v';
    expect(forwardedHeaders(groups, many)).toEqual({ headers: {}, requirements: [] });
    expect(rememberedHeaderNames(groups).count).toBeLessThanOrEqual(512);
    // Still decided right once the junk filled what is remembered.
    expect(forwardedHeaders(groups, { 'x-amz-meta-late': '2', 'x-amz-acl': 'public-read', 'x-junk-1999': 'v' })).toMatchObject({
      headers: { 'x-amz-meta-late': '2', 'x-amz-acl': 'public-read' },
      requirements: [{ header: 'x-amz-acl' }],
    });
  });
  it('remembers no long header name: a client cannot make the gateway keep kilobytes per name it sends', () => {
    const groups = [HEADERS.objectDescription];
    for (let i = 0; i < 600; i++) {
      const long = `x-amz-meta-${String(i).padStart(4, '0')}${'n'.repeat(16_000)}`;
      expect(forwardedHeaders(groups, { [long]: 'v' }).headers).toEqual({ [long]: 'v' });
      expect(forwardedHeaders(groups, { [`x-junk-${i}${'j'.repeat(16_000)}`]: 'v' }).headers).toEqual({});
    }
    expect(rememberedHeaderNames(groups).longest).toBeLessThanOrEqual(64);
  });
});

describe('describeOperation', () => {
  it('carries the filtered headers, their requirements and the client User-Agent', () => {
    const operation = describeOperation(
      'PutObject',
      { bucket: 'bkt', key: 'k', query: [['x-id', 'PutObject']] },
      { ...CLIENT_HEADERS, 'x-amz-acl': 'public-read' },
    );
    expect(operation.headers).toEqual(forwardedHeaders(PUT_OBJECT, { ...CLIENT_HEADERS, 'x-amz-acl': 'public-read' }).headers);
    expect(operation.headers).not.toHaveProperty('user-agent');
    expect(operation.headers).not.toHaveProperty('authorization');
    expect(operation.requirements).toEqual([{ header: 'x-amz-acl', purpose: 'ACL', permissions: ['admin'], capability: 'acl' }]);
    expect(operation.userAgent).toBe('aws-cli/2.23');
    expect(operation.query).toEqual([]);
    expect(operation.copySource).toBeNull();
  });
});
