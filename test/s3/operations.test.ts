import { describe, expect, it } from 'vitest';
import { parseAddress } from '../../src/s3/address.js';
import { classify, parseCopySource } from '../../src/s3/classify.js';
import type { OperationName } from '../../src/s3/operations.js';
import { S3Error } from '../../src/errors.js';

function op(method: string, target: string, headers: Record<string, string> = {}) {
  return classify(method, parseAddress(target, 'localhost:9000', null), headers);
}

const CASES: Array<[string, string, Record<string, string>, OperationName]> = [
  ['GET', '/', {}, 'ListBuckets'],
  ['HEAD', '/bkt', {}, 'HeadBucket'],
  ['GET', '/bkt?location', {}, 'GetBucketLocation'],
  ['GET', '/bkt', {}, 'ListObjects'],
  ['GET', '/bkt/?prefix=a&delimiter=%2F', {}, 'ListObjects'],
  ['GET', '/bkt?list-type=2&prefix=x', {}, 'ListObjectsV2'],
  ['GET', '/bkt?versions', {}, 'ListObjectVersions'],
  ['GET', '/bkt?uploads', {}, 'ListMultipartUploads'],
  ['PUT', '/bkt', {}, 'CreateBucket'],
  ['DELETE', '/bkt', {}, 'DeleteBucket'],
  ['GET', '/bkt?policy', {}, 'GetBucketConfiguration'],
  ['PUT', '/bkt?versioning', {}, 'PutBucketConfiguration'],
  ['DELETE', '/bkt?cors', {}, 'DeleteBucketConfiguration'],
  ['GET', '/bkt?tagging', {}, 'GetBucketConfiguration'],
  ['POST', '/bkt?delete', {}, 'DeleteObjects'],
  ['POST', '/bkt', { 'content-type': 'multipart/form-data; boundary=x' }, 'PostObject'],
  ['GET', '/bkt/k', {}, 'GetObject'],
  ['HEAD', '/bkt/k', {}, 'HeadObject'],
  ['GET', '/bkt/k?uploadId=u', {}, 'ListParts'],
  ['GET', '/bkt/k?tagging', {}, 'GetObjectTagging'],
  ['GET', '/bkt/k?acl', {}, 'GetObjectAcl'],
  ['GET', '/bkt/k?attributes', {}, 'GetObjectAttributes'],
  ['GET', '/bkt/k?retention', {}, 'GetObjectRetention'],
  ['PUT', '/bkt/k?retention', {}, 'PutObjectRetention'],
  ['GET', '/bkt/k?legal-hold', {}, 'GetObjectLegalHold'],
  ['PUT', '/bkt/k?legal-hold', {}, 'PutObjectLegalHold'],
  ['GET', '/bkt?object-lock', {}, 'GetObjectLockConfiguration'],
  ['PUT', '/bkt?object-lock', {}, 'PutObjectLockConfiguration'],
  ['PUT', '/bkt/k?acl', {}, 'PutObjectAcl'],
  ['GET', '/bkt/k?partNumber=2', {}, 'GetObject'],
  ['HEAD', '/bkt/k?partNumber=2&versionId=v', {}, 'HeadObject'],
  ['PUT', '/bkt/k', {}, 'PutObject'],
  ['PUT', '/bkt/k', { 'x-amz-copy-source': '/src/a%20b' }, 'CopyObject'],
  ['PUT', '/bkt/k?partNumber=1&uploadId=u', {}, 'UploadPart'],
  ['PUT', '/bkt/k?partNumber=1&uploadId=u', { 'x-amz-copy-source': 'src/a' }, 'UploadPartCopy'],
  ['PUT', '/bkt/k?tagging', {}, 'PutObjectTagging'],
  ['POST', '/bkt/k?uploads', {}, 'CreateMultipartUpload'],
  ['POST', '/bkt/k?uploadId=u', {}, 'CompleteMultipartUpload'],
  ['DELETE', '/bkt/k?uploadId=u', {}, 'AbortMultipartUpload'],
  ['DELETE', '/bkt/k?tagging', {}, 'DeleteObjectTagging'],
  ['DELETE', '/bkt/k', {}, 'DeleteObject'],
];

describe('classify', () => {
  it.each(CASES)('%s %s -> %s', (method, target, headers, expected) => {
    expect(op(method, target, headers).name).toBe(expected);
  });

  it.each([
    ['PUT', '/'],
    ['POST', '/bkt'],
    ['PATCH', '/bkt/k'],
    ['PUT', '/bkt/k?uploadId=u'],
    ['GET', '/bkt/k?cors'],
    ['GET', '/?acl'],
    ['POST', '/bkt?uploads'],
    ['DELETE', '/bkt/k?retention'],
    ['HEAD', '/bkt/k?tagging'],
  ])('denies unrecognized %s %s', (method, target) => {
    expect(() => op(method, target)).toThrowError(expect.objectContaining({ code: 'AccessDenied' }) as Error);
  });

  it.each([
    ['GET', '/bkt/k?restore'],
    ['POST', '/bkt/k?restore'],
    ['POST', '/bkt/k?select&select-type=2'],
    ['GET', '/bkt?website-ish&torrent'],
    ['GET', '/bkt/k?torrent'],
    ['GET', '/bkt?session'],
  ])('answers S3 features the gateway does not offer with NotImplemented: %s %s', (method, target) => {
    expect(() => op(method, target)).toThrowError(expect.objectContaining({ code: 'NotImplemented', status: 501 }) as Error);
  });

  it('refuses a query parameter given twice instead of guessing which one counts', () => {
    for (const target of [
      '/bkt?list-type=2&prefix=a&prefix=b',
      '/bkt/k?versionId=1&versionId=2',
      '/bkt?uploads&key-marker=a&key-marker=b',
      '/bkt/k?x-id=a&x-id=b',
    ]) {
      expect(() => op('GET', target), target).toThrowError(expect.objectContaining({ code: 'InvalidArgument', status: 400 }) as Error);
    }
  });

  it('forwards only the parameters that belong to the operation', () => {
    const listed = op('GET', '/bkt?list-type=2&prefix=a%2Bb&x-id=ListObjectsV2&foo=bar');
    expect(listed.query).toEqual([
      ['list-type', '2'],
      ['prefix', 'a+b'],
    ]);
    const part = op('PUT', '/bkt/k?partNumber=3&uploadId=abc&x-id=UploadPart');
    expect(part.query).toEqual([
      ['partNumber', '3'],
      ['uploadId', 'abc'],
    ]);
    expect(op('POST', '/bkt/k?uploads=').query).toEqual([['uploads', '']]);
  });

  it('decodes keys without normalizing them', () => {
    expect(op('GET', '/bkt/a//b/../c%20d%2Be+f').key).toBe('a//b/../c d+e+f');
    expect(op('GET', '/bkt/%E2%9C%93/').key).toBe('✓/');
  });

  it('parses copy sources in every form clients send', () => {
    expect(parseCopySource('/src/a%20b%2Bc')).toEqual({ bucket: 'src', key: 'a b+c', versionId: null });
    expect(parseCopySource('src/dir/x.txt?versionId=v1')).toEqual({ bucket: 'src', key: 'dir/x.txt', versionId: 'v1' });
    expect(() => parseCopySource('onlybucket')).toThrow(S3Error);
    expect(() => parseCopySource('/src/%ZZ')).toThrow(S3Error);
    expect(() => parseCopySource('/src/k?versionId=1&x=2')).toThrow(S3Error);
    expect(() => parseCopySource('/src/k?versionId=1?/../other')).toThrow(S3Error);
    const copy = op('PUT', '/bkt/k', { 'x-amz-copy-source': '/other/src.txt' });
    expect(copy.copySource).toEqual({ bucket: 'other', key: 'src.txt', versionId: null });
  });

  it('refuses a copy source whose bucket is no bucket name, so the upstream cannot read another path out of it', () => {
    const refusal = (value: string) => {
      try {
        parseCopySource(value);
        return 'parsed';
      } catch (error) {
        return (error as S3Error).code;
      }
    };
    // Decodes to the "bucket" `data%2Fteam-b%2Fsecret.txt?`, which an upstream reads as /data/team-b/secret.txt.
    expect(refusal('data%252Fteam-b%252Fsecret.txt%3F/team-a/x')).toBe('InvalidArgument');
    for (const bucket of ['data%3Fx', 'data%23x', 'data%0D%0Ax-injected:%201', 'Data', 'da', '..', 'data%25', 'data%20x']) {
      expect(refusal(`/${bucket}/team-a/x`), bucket).toBe('InvalidArgument');
    }
    expect(parseCopySource('/vol-1.data/k')).toEqual({ bucket: 'vol-1.data', key: 'k', versionId: null });
  });
});

describe('parseAddress', () => {
  it('uses virtual-host addressing only for hosts under the domain', () => {
    expect(parseAddress('/k/x', 'bkt.s3.test:9000', 's3.test')).toMatchObject({ bucket: 'bkt', key: 'k/x', style: 'virtual-host' });
    expect(parseAddress('/bkt/k', 's3.test:9000', 's3.test')).toMatchObject({ bucket: 'bkt', key: 'k', style: 'path' });
    expect(parseAddress('/bkt/k', 'other.example', 's3.test')).toMatchObject({ bucket: 'bkt', key: 'k', style: 'path' });
    expect(parseAddress('/', 'bkt.s3.test', 's3.test:9000')).toMatchObject({ bucket: 'bkt', key: null });
  });

  it('rejects invalid bucket names, bad encodings and overlong keys with S3 errors', () => {
    expect(() => parseAddress('/Bad_Bucket/k', undefined, null)).toThrowError(expect.objectContaining({ code: 'InvalidBucketName' }) as Error);
    expect(() => parseAddress('/192.168.0.1/k', undefined, null)).toThrowError(expect.objectContaining({ code: 'InvalidBucketName' }) as Error);
    expect(() => parseAddress('/bkt/%E0%A4%A', undefined, null)).toThrowError(expect.objectContaining({ code: 'InvalidArgument' }) as Error);
    expect(() => parseAddress(`/bkt/${'k'.repeat(1025)}`, undefined, null)).toThrowError(expect.objectContaining({ code: 'KeyTooLongError' }) as Error);
    expect(parseAddress(`/bkt/${'k'.repeat(1024)}`, undefined, null).key).toHaveLength(1024);
    expect(() => parseAddress('http://x/bkt', undefined, null)).toThrowError(expect.objectContaining({ code: 'InvalidRequest' }) as Error);
  });

  it('reads a raw + in the query as a space and %2B as a plus', () => {
    expect(parseAddress('/bkt?prefix=a+b%2Bc', undefined, null).query).toEqual([['prefix', 'a b+c']]);
  });
});
