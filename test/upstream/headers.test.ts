/** What crosses the gateway in headers, both ways, and the aws-chunked re-encoding of trailing checksums. */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { awsChunkedLength, AwsChunkedTrailerEncoder, trailerValueLength } from '../../src/upstream/aws-chunked.js';
import { announcedTrailerChecksum, clientResponseHeaders, upstreamRequestHeaders, withoutAwsChunked } from '../../src/upstream/headers.js';
import { readAll } from './fixtures.js';

describe('request headers sent upstream', () => {
  const clientHeaders = {
    host: 'gateway.example',
    authorization: 'AWS4-HMAC-SHA256 Credential=rs_ak_live_x/…',
    'x-amz-date': '20250101T000000Z',
    'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
    'x-amz-decoded-content-length': '5',
    'x-amz-trailer': 'x-amz-checksum-crc32',
    'x-amz-security-token': 'token',
    'x-amz-expected-bucket-owner': '123456789012',
    'x-amz-acl': 'public-read',
    'x-amz-grant-read': 'uri=http://acs.amazonaws.com/groups/global/AllUsers',
    'transfer-encoding': 'chunked',
    connection: 'keep-alive',
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
    'x-amz-tagging': 'a=b',
    'x-amz-tagging-directive': 'COPY',
    'x-amz-storage-class': 'STANDARD',
    'x-amz-checksum-algorithm': 'CRC32',
    'x-amz-checksum-type': 'FULL_OBJECT',
    'x-amz-sdk-checksum-algorithm': 'CRC32',
    'x-amz-server-side-encryption': 'AES256',
    'x-amz-website-redirect-location': '/x',
    'x-amz-object-lock-mode': 'GOVERNANCE',
    'x-amz-request-payer': 'requester',
    'user-agent': 'aws-cli/2.23',
  };

  it('forwards the S3 request headers of the allowlist and drops signature, framing, connection and access headers', () => {
    const out = upstreamRequestHeaders(clientHeaders, { trailerChecksum: 'x-amz-checksum-crc32', userAgent: 'keygate/1' });
    expect(Object.keys(out).sort()).toEqual(
      [
        'cache-control',
        'content-disposition',
        'content-encoding',
        'content-language',
        'content-md5',
        'content-type',
        'expires',
        'if-match',
        'if-modified-since',
        'if-none-match',
        'if-unmodified-since',
        'range',
        'user-agent',
        'x-amz-checksum-algorithm',
        'x-amz-checksum-type',
        'x-amz-copy-source',
        'x-amz-copy-source-if-match',
        'x-amz-copy-source-range',
        'x-amz-meta-colour',
        'x-amz-metadata-directive',
        'x-amz-object-lock-mode',
        'x-amz-request-payer',
        'x-amz-sdk-checksum-algorithm',
        'x-amz-server-side-encryption',
        'x-amz-storage-class',
        'x-amz-tagging',
        'x-amz-tagging-directive',
        'x-amz-website-redirect-location',
      ].sort(),
    );
    expect(out['content-encoding']).toBe('gzip');
    expect(out['user-agent']).toBe('keygate/1 (+aws-cli/2.23)');
  });

  it('drops x-amz-sdk-checksum-algorithm when its checksum travels neither as header nor as trailer', () => {
    const trailerDropped = upstreamRequestHeaders(
      { 'x-amz-trailer': 'x-amz-checksum-crc32', 'x-amz-sdk-checksum-algorithm': 'CRC32' },
      { trailerChecksum: null, userAgent: 'k' },
    );
    expect(trailerDropped).not.toHaveProperty('x-amz-sdk-checksum-algorithm');
    const asHeader = upstreamRequestHeaders(
      { 'x-amz-checksum-sha256': 'abc=', 'x-amz-sdk-checksum-algorithm': 'SHA256' },
      { trailerChecksum: null, userAgent: 'k' },
    );
    expect(asHeader).toMatchObject({ 'x-amz-checksum-sha256': 'abc=', 'x-amz-sdk-checksum-algorithm': 'SHA256' });
  });

  it('never forwards the trailer checksum as a header, and drops content-encoding that was only aws-chunked', () => {
    const out = upstreamRequestHeaders(
      { 'x-amz-checksum-crc32': 'AAAAAA==', 'content-encoding': 'aws-chunked' },
      { trailerChecksum: 'x-amz-checksum-crc32', userAgent: 'k' },
    );
    expect(out).not.toHaveProperty('x-amz-checksum-crc32');
    expect(out).not.toHaveProperty('content-encoding');
    expect(withoutAwsChunked('gzip, AWS-CHUNKED ,br')).toBe('gzip,br');
  });

  it('finds the checksum a client announces as trailer', () => {
    expect(announcedTrailerChecksum({ 'x-amz-trailer': 'X-Amz-Checksum-CRC64NVME' })).toBe('x-amz-checksum-crc64nvme');
    expect(announcedTrailerChecksum({ 'x-amz-trailer': 'x-amz-foo, x-amz-checksum-sha1' })).toBe('x-amz-checksum-sha1');
    expect(announcedTrailerChecksum({})).toBeNull();
  });
});

describe('response headers passed to the client', () => {
  it('keeps object and S3 headers, drops hop-by-hop and upstream-private ones', () => {
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
        'x-amz-id-2',
        'x-amz-meta-colour',
        'x-amz-mp-parts-count',
        'x-amz-request-id',
        'x-amz-version-id',
      ].sort(),
    );
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
