/**
 * Upstream response headers passed back to the client, and the aws-chunked re-encoding of trailing
 * checksums. (Which request headers go upstream is the operations table's business:
 * test/s3/request-headers.test.ts.)
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { awsChunkedLength, AwsChunkedTrailerEncoder, trailerValueLength } from '../../src/upstream/aws-chunked.js';
import { CHECKSUM_HEADER_PREFIX, clientResponseHeaders } from '../../src/upstream/response-headers.js';
import { readAll } from './fixtures.js';

describe('response headers passed to the client', () => {
  it('keeps object and S3 headers, drops hop-by-hop and upstream-private ones (the upstream request ids included)', () => {
    const out = clientResponseHeaders({
      etag: '"abc"',
      'content-length': '10',
      'content-range': 'bytes 0-9/100',
      'last-modified': 'Wed, 01 Jan 2025 00:00:00 GMT',
      'accept-ranges': 'bytes',
      'x-amz-meta-colour': 'blue',
      'x-amz-checksum-crc32': 'AAAAAA==',
      'x-amz-version-id': 'v1',
      'x-amz-request-id': 'req',
      'x-amz-id-2': 'id2',
      'x-amz-mp-parts-count': '3',
      'cache-control': 'max-age=60',
      connection: 'keep-alive, x-custom-hop',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      'x-custom-hop': 'gone',
      server: 'cloudflare',
      'set-cookie': ['__cf_bm=1'],
      'alt-svc': 'h3=":443"',
      trailer: 'x',
      upgrade: 'h2c',
    });
    expect(Object.keys(out).sort()).toEqual(
      [
        'accept-ranges',
        'cache-control',
        'content-length',
        'content-range',
        'etag',
        'last-modified',
        'x-amz-checksum-crc32',
        'x-amz-meta-colour',
        'x-amz-mp-parts-count',
        'x-amz-version-id',
      ].sort(),
    );
    expect(out.etag).toBe('"abc"');
  });

  it('is an allowlist: infrastructure, CORS, KMS key ids, redirects and unknown headers stay in the gateway', () => {
    const out = clientResponseHeaders({
      'content-type': 'text/plain',
      'x-amz-server-side-encryption': 'aws:kms',
      'x-amz-server-side-encryption-aws-kms-key-id': 'arn:aws:kms:eu-ro-1:123456789012:key/secret',
      'x-amz-server-side-encryption-context': 'e30=',
      'x-amz-bucket-region': 'EU-RO-1',
      'x-amzn-requestid': 'upstream-internal',
      'x-amz-request-charged': 'requester',
      'access-control-allow-origin': '*',
      'access-control-allow-credentials': 'true',
      vary: 'Origin',
      location: 'https://s3api-eu-ro-1.runpod.io/volume/key',
      'strict-transport-security': 'max-age=1',
      'cf-ray': '1234-AMS',
      'x-runpod-volume': 'abc',
      'x-powered-by': 'Express',
      via: '1.1 upstream-proxy',
      date: 'Wed, 01 Jan 2025 00:00:00 GMT',
    });
    expect(out).toEqual({ 'content-type': 'text/plain', 'x-amz-server-side-encryption': 'aws:kms' });
  });

  it('passes the object-describing families: user metadata, checksums, object lock, storage class, tagging count', () => {
    const headers = {
      'x-amz-meta-owner': 'me',
      'x-amz-checksum-sha256': 'abc=',
      'x-amz-checksum-type': 'FULL_OBJECT',
      'x-amz-object-lock-mode': 'GOVERNANCE',
      'x-amz-object-lock-retain-until-date': '2030-01-01T00:00:00Z',
      'x-amz-object-lock-legal-hold': 'ON',
      'x-amz-storage-class': 'STANDARD',
      'x-amz-tagging-count': '2',
      'x-amz-delete-marker': 'true',
      'x-amz-copy-source-version-id': 'v0',
      'x-amz-expiration': 'expiry-date="Fri, 23 Dec 2030 00:00:00 GMT", rule-id="r"',
      'x-amz-website-redirect-location': '/other',
      'content-disposition': 'attachment',
      'content-encoding': 'gzip',
      'content-language': 'en',
      expires: 'Thu, 01 Dec 2030 16:00:00 GMT',
    };
    expect(clientResponseHeaders(headers)).toEqual(headers);
  });

  it('lower-cases names and keeps repeated values as they came', () => {
    const out = clientResponseHeaders({
      ETag: '"abc"',
      'X-Amz-Request-Id': 'req',
      'X-AMZ-ID-2': 'id2',
      'x-amz-meta-tags': ['a', 'b'],
      connection: 'X-Private',
      'x-private': 'gone',
      'content-type': undefined,
    });
    expect(out).toEqual({ etag: '"abc"', 'x-amz-meta-tags': ['a', 'b'] });
  });

  it('names checksum headers by their common prefix', () => {
    expect(CHECKSUM_HEADER_PREFIX).toBe('x-amz-checksum-');
  });
});

describe('aws-chunked re-encoding with a trailing checksum', () => {
  /** Parses the encoding back, strictly. */
  function decode(encoded: Buffer): { data: Buffer; trailer: string; chunkSizes: number[] } {
    const chunks: Buffer[] = [];
    const chunkSizes: number[] = [];
    let offset = 0;
    for (;;) {
      const lineEnd = encoded.indexOf('\r\n', offset);
      const size = parseInt(encoded.subarray(offset, lineEnd).toString(), 16);
      offset = lineEnd + 2;
      if (size === 0) break;
      chunkSizes.push(size);
      chunks.push(encoded.subarray(offset, offset + size));
      offset += size;
      expect(encoded.subarray(offset, offset + 2).toString()).toBe('\r\n');
      offset += 2;
    }
    const rest = encoded.subarray(offset).toString();
    expect(rest.endsWith('\r\n\r\n')).toBe(true);
    return { data: Buffer.concat(chunks), trailer: rest.slice(0, -4), chunkSizes };
  }

  it.each([0, 1, 15, 16, 17, 64, 100, 1000])('encodes %i bytes in 16-byte chunks with exactly the precomputed length', async (size) => {
    const data = Buffer.from(Array.from({ length: size }, (_, i) => i & 0xff));
    const encoder = new AwsChunkedTrailerEncoder({ decodedLength: size, chunkSize: 16, trailerName: 'x-amz-checksum-crc32', trailerValue: () => 'AAAAAA==' });
    // Odd input piece sizes: the encoder re-chunks.
    const pieces = [];
    for (let i = 0; i < size; i += 7) pieces.push(data.subarray(i, i + 7));
    const encoded = await readAll(Readable.from(pieces).pipe(encoder));
    expect(encoded.length).toBe(encoder.encodedLength);
    expect(encoded.length).toBe(awsChunkedLength(size, 16, 'x-amz-checksum-crc32', 8));
    const decoded = decode(encoded);
    expect(decoded.data.equals(data)).toBe(true);
    expect(decoded.trailer).toBe('x-amz-checksum-crc32:AAAAAA==');
    expect(decoded.chunkSizes.slice(0, -1).every((s) => s === 16)).toBe(true);
  });

  it('knows the base64 length of every checksum algorithm', () => {
    expect(trailerValueLength('x-amz-checksum-crc32')).toBe(8);
    expect(trailerValueLength('x-amz-checksum-crc32c')).toBe(8);
    expect(trailerValueLength('x-amz-checksum-crc64nvme')).toBe(12);
    expect(trailerValueLength('x-amz-checksum-sha1')).toBe(28);
    expect(trailerValueLength('x-amz-checksum-sha256')).toBe(44);
    expect(trailerValueLength('x-amz-checksum-md5')).toBeNull();
  });

  it('fails instead of sending a short body or a malformed trailer', async () => {
    const short = new AwsChunkedTrailerEncoder({ decodedLength: 10, trailerName: 'x-amz-checksum-crc32', trailerValue: () => 'AAAAAA==' });
    await expect(readAll(Readable.from([Buffer.alloc(5)]).pipe(short))).rejects.toThrow(/ended after 5 of its declared 10 bytes/);
    const long = new AwsChunkedTrailerEncoder({ decodedLength: 1, trailerName: 'x-amz-checksum-crc32', trailerValue: () => 'AAAAAA==' });
    await expect(readAll(Readable.from([Buffer.alloc(2)]).pipe(long))).rejects.toThrow(/longer than its declared 1 bytes/);
    const missing = new AwsChunkedTrailerEncoder({ decodedLength: 1, trailerName: 'x-amz-checksum-crc32', trailerValue: () => undefined });
    await expect(readAll(Readable.from([Buffer.alloc(1)]).pipe(missing))).rejects.toThrow(/missing or malformed/);
  });
});
