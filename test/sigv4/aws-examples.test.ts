/**
 * AWS's published S3 SigV4 examples ("Signature Calculations for the Authorization Header",
 * "Query string auth", "Chunked upload" and "Trailing headers" pages of the S3 API reference):
 * credentials AKIAIOSFODNN7EXAMPLE, 20130524T000000Z, bucket examplebucket, us-east-1.
 * Every expected signature below is AWS's published value, not one computed by this code.
 */
import { describe, expect, it } from 'vitest';
import { createPayloadVerifier } from '../../src/sigv4/payload.js';
import { encodeAwsChunked, signChunk, signTrailer } from '../../src/sigv4/sign.js';
import { deriveSigningKey } from '../../src/sigv4/signing-key.js';
import { verifyRequest } from '../../src/sigv4/verify.js';
import type { SignedRequest } from '../../src/sigv4/types.js';
import { AWS_EXAMPLE, EMPTY_SHA256, awsExampleOptions, expectS3Error, runVerifier, s3ErrorOf } from './helpers.js';

const SCOPE = '20130524/us-east-1/s3/aws4_request';
const CREDENTIAL = `${AWS_EXAMPLE.accessKeyId}/${SCOPE}`;

function authorization(signedHeaders: string, signature: string): string {
  return `AWS4-HMAC-SHA256 Credential=${CREDENTIAL},SignedHeaders=${signedHeaders},Signature=${signature}`;
}

describe('GET Object with Range (f0e8bdb8…)', () => {
  const request: SignedRequest = {
    method: 'GET',
    rawPath: '/test.txt',
    rawQuery: '',
    headers: {
      host: 'examplebucket.s3.amazonaws.com',
      range: 'bytes=0-9',
      'x-amz-content-sha256': EMPTY_SHA256,
      'x-amz-date': AWS_EXAMPLE.amzDate,
      authorization: authorization('host;range;x-amz-content-sha256;x-amz-date', 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41'),
    },
  };

  it('verifies and reports the key, scope and payload mode', () => {
    const verified = verifyRequest(request, awsExampleOptions);
    expect(verified).toMatchObject({
      key: `key:${AWS_EXAMPLE.accessKeyId}`,
      accessKeyId: AWS_EXAMPLE.accessKeyId,
      authType: 'header',
      amzDate: AWS_EXAMPLE.amzDate,
      scope: SCOPE,
      region: 'us-east-1',
      seedSignature: 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
      payload: { kind: 'signed', sha256: EMPTY_SHA256 },
      decodedContentLength: null,
      trailerHeaders: [],
      presignExpiresAt: null,
    });
    expect(verified.signingKey.equals(deriveSigningKey(AWS_EXAMPLE.secretAccessKey, '20130524', 'us-east-1'))).toBe(true);
  });

  it('reports the documented canonical request and string to sign in debug mode', () => {
    const tampered = { ...request, headers: { ...request.headers, range: 'bytes=0-10' } };
    const error = expectS3Error(() => verifyRequest(tampered, { ...awsExampleOptions, debug: true }), 'SignatureDoesNotMatch');
    expect(error.details['CanonicalRequest']).toBe(
      [
        'GET',
        '/test.txt',
        '',
        'host:examplebucket.s3.amazonaws.com',
        'range:bytes=0-10',
        `x-amz-content-sha256:${EMPTY_SHA256}`,
        'x-amz-date:20130524T000000Z',
        '',
        'host;range;x-amz-content-sha256;x-amz-date',
        EMPTY_SHA256,
      ].join('\n'),
    );
    expect(String(error.details['StringToSign'])).toMatch(/^AWS4-HMAC-SHA256\n20130524T000000Z\n20130524\/us-east-1\/s3\/aws4_request\n[0-9a-f]{64}$/);
    expect(String(error.details['CanonicalRequestBytes'])).toMatch(/^47 45 54 0a 2f /);
    // Without debug the computation stays private.
    const quiet = s3ErrorOf(() => verifyRequest(tampered, awsExampleOptions));
    expect(quiet.details['CanonicalRequest']).toBeUndefined();
    expect(quiet.details['StringToSign']).toBeUndefined();
  });

  it('matches the documented string to sign for the untampered request', () => {
    // Same request with a wrong signature: the string to sign is the one AWS documents (hash 7344ae5b…).
    const wrong = { ...request, headers: { ...request.headers, authorization: authorization('host;range;x-amz-content-sha256;x-amz-date', '0'.repeat(64)) } };
    const error = expectS3Error(() => verifyRequest(wrong, { ...awsExampleOptions, debug: true }), 'SignatureDoesNotMatch');
    expect(error.details['StringToSign']).toBe(
      'AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972',
    );
  });

  it.each([
    ['method', { method: 'HEAD' }],
    ['path', { rawPath: '/test.txu' }],
    ['query', { rawQuery: 'x=1' }],
  ])('rejects a tampered %s', (_what, change) => {
    expectS3Error(() => verifyRequest({ ...request, ...change }, awsExampleOptions), 'SignatureDoesNotMatch');
  });
});

describe('PUT Object (98ad7217…)', () => {
  const body = Buffer.from('Welcome to Amazon S3.');
  const request: SignedRequest = {
    method: 'PUT',
    // As a client sends it on the wire: '$' is legal unescaped in a path; its canonical form is %24.
    rawPath: '/test$file.text',
    rawQuery: '',
    headers: {
      host: 'examplebucket.s3.amazonaws.com',
      date: 'Fri, 24 May 2013 00:00:00 GMT',
      'x-amz-date': AWS_EXAMPLE.amzDate,
      'x-amz-storage-class': 'REDUCED_REDUNDANCY',
      'x-amz-content-sha256': '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072',
      'content-length': String(body.length),
      authorization: authorization(
        'date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class',
        '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd',
      ),
    },
  };

  it('verifies with the path sent raw or already encoded', () => {
    expect(verifyRequest(request, awsExampleOptions).seedSignature).toBe('98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd');
    expect(verifyRequest({ ...request, rawPath: '/test%24file.text' }, awsExampleOptions).payload).toEqual({
      kind: 'signed',
      sha256: '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072',
    });
  });

  it('passes the body through when its sha256 matches', async () => {
    const verified = verifyRequest(request, awsExampleOptions);
    const run = await runVerifier(createPayloadVerifier(verified, request.headers), [body.subarray(0, 7), body.subarray(7)]);
    expect(run.error).toBeUndefined();
    expect(run.output.toString()).toBe('Welcome to Amazon S3.');
  });

  it('fails a body that does not match x-amz-content-sha256, without emitting its last byte', async () => {
    const verified = verifyRequest(request, awsExampleOptions);
    const run = await runVerifier(createPayloadVerifier(verified, request.headers), [Buffer.from('Welcome to Amazon S4.')]);
    expect(run.error?.code).toBe('XAmzContentSHA256Mismatch');
    expect(run.error?.details['ClientComputedContentSHA256']).toBe('44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072');
    expect(run.output.length).toBeLessThan(body.length);
  });

  it('rejects a changed storage class (a signed x-amz header)', () => {
    const tampered = { ...request, headers: { ...request.headers, 'x-amz-storage-class': 'STANDARD' } };
    expectS3Error(() => verifyRequest(tampered, awsExampleOptions), 'SignatureDoesNotMatch');
  });
});

describe('GET Bucket lifecycle and ListObjects', () => {
  const headers = {
    host: 'examplebucket.s3.amazonaws.com',
    'x-amz-date': AWS_EXAMPLE.amzDate,
    'x-amz-content-sha256': EMPTY_SHA256,
  };

  it('GET ?lifecycle (fea454ca…): a value-less parameter signs as "lifecycle="', () => {
    const signature = 'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543';
    const request = {
      method: 'GET',
      rawPath: '/',
      rawQuery: 'lifecycle',
      headers: { ...headers, authorization: authorization('host;x-amz-content-sha256;x-amz-date', signature) },
    };
    expect(verifyRequest(request, awsExampleOptions).seedSignature).toBe(signature);
    expect(verifyRequest({ ...request, rawQuery: 'lifecycle=' }, awsExampleOptions).seedSignature).toBe(signature);
    expectS3Error(() => verifyRequest({ ...request, rawQuery: 'policy' }, awsExampleOptions), 'SignatureDoesNotMatch');
  });

  it('GET ?max-keys=2&prefix=J (34b48302…): order on the wire does not matter', () => {
    const signature = '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7';
    const request = {
      method: 'GET',
      rawPath: '/',
      rawQuery: 'max-keys=2&prefix=J',
      headers: { ...headers, authorization: authorization('host;x-amz-content-sha256;x-amz-date', signature) },
    };
    expect(verifyRequest(request, awsExampleOptions).seedSignature).toBe(signature);
    expect(verifyRequest({ ...request, rawQuery: 'prefix=J&max-keys=2' }, awsExampleOptions).seedSignature).toBe(signature);
    expectS3Error(() => verifyRequest({ ...request, rawQuery: 'max-keys=3&prefix=J' }, awsExampleOptions), 'SignatureDoesNotMatch');
  });
});

describe('presigned GET Object (aeeed9bb…, X-Amz-Expires=86400)', () => {
  const query =
    'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request' +
    '&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host' +
    '&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404';
  const request: SignedRequest = { method: 'GET', rawPath: '/test.txt', rawQuery: query, headers: { host: 'examplebucket.s3.amazonaws.com' } };

  it('verifies as an UNSIGNED-PAYLOAD presigned request until it expires', () => {
    const verified = verifyRequest(request, { ...awsExampleOptions, now: new Date('2013-05-24T23:59:59Z') });
    expect(verified).toMatchObject({
      authType: 'presigned',
      payload: { kind: 'unsigned' },
      seedSignature: 'aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404',
    });
    expect(verified.presignExpiresAt?.toISOString()).toBe('2013-05-25T00:00:00.000Z');
  });

  it('answers 403 AccessDenied "Request has expired" after X-Amz-Date + X-Amz-Expires', () => {
    const error = expectS3Error(
      () => verifyRequest(request, { ...awsExampleOptions, now: new Date('2013-05-25T00:00:01Z') }),
      'AccessDenied',
      'Request has expired',
    );
    expect(error.status).toBe(403);
    expect(error.details).toMatchObject({ 'X-Amz-Expires': 86400, Expires: '2013-05-25T00:00:00Z', ServerTime: '2013-05-25T00:00:01Z' });
  });

  it('rejects the URL on another object or with another expiry', () => {
    expectS3Error(() => verifyRequest({ ...request, rawPath: '/test.txT' }, awsExampleOptions), 'SignatureDoesNotMatch');
    expectS3Error(() => verifyRequest({ ...request, rawQuery: query.replace('86400', '86401') }, awsExampleOptions), 'SignatureDoesNotMatch');
  });
});

// The published seed ends in …a0a9 (some copies of the example, including this project's brief, say …a0a6).
describe('chunked upload, STREAMING-AWS4-HMAC-SHA256-PAYLOAD (seed 4f232c43…)', () => {
  const data = Buffer.alloc(66560, 'a');
  const request: SignedRequest = {
    method: 'PUT',
    rawPath: '/examplebucket/chunkObject.txt',
    rawQuery: '',
    headers: {
      host: 's3.amazonaws.com',
      'x-amz-date': AWS_EXAMPLE.amzDate,
      'x-amz-storage-class': 'REDUCED_REDUNDANCY',
      'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
      'content-encoding': 'aws-chunked',
      'x-amz-decoded-content-length': '66560',
      'content-length': '66824',
      authorization: authorization(
        'content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class',
        '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9',
      ),
    },
  };
  const published = [
    'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648',
    '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497',
    'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9',
  ];

  function body(): Buffer {
    const verified = verifyRequest(request, awsExampleOptions);
    return encodeAwsChunked(data, { chunkSize: 65536, signing: { ...verified, seedSignature: verified.seedSignature } });
  }

  it('verifies the seed request and derives the published chunk signatures', () => {
    const verified = verifyRequest(request, awsExampleOptions);
    expect(verified.payload).toEqual({ kind: 'streaming-signed', trailer: false });
    expect(verified.decodedContentLength).toBe(66560);
    const first = signChunk(verified, verified.seedSignature, data.subarray(0, 65536));
    const second = signChunk(verified, first, data.subarray(65536));
    const final = signChunk(verified, second, new Uint8Array(0));
    expect([first, second, final]).toEqual(published);
    const encoded = body();
    expect(encoded.length).toBe(66824); // the documented Content-Length
    for (const signature of published) expect(encoded.includes(`;chunk-signature=${signature}\r\n`)).toBe(true);
  });

  it('decodes the body to the 66560 bytes of "a"', async () => {
    const verified = verifyRequest(request, awsExampleOptions);
    const encoded = body();
    const run = await runVerifier(createPayloadVerifier(verified, request.headers), [
      encoded.subarray(0, 100),
      encoded.subarray(100, 65700),
      encoded.subarray(65700),
    ]);
    expect(run.error).toBeUndefined();
    expect(run.output.equals(data)).toBe(true);
  });

  it('rejects a changed data byte with SignatureDoesNotMatch and never emits the final byte', async () => {
    const verified = verifyRequest(request, awsExampleOptions);
    const encoded = body();
    encoded[encoded.indexOf('400;chunk-signature=') + 86 + 10] = 'b'.charCodeAt(0); // a data byte of the second chunk
    const run = await runVerifier(createPayloadVerifier(verified, request.headers), [encoded]);
    expect(run.error?.code).toBe('SignatureDoesNotMatch');
    expect(run.output.length).toBeLessThan(data.length);
  });

  it('rejects a body whose final chunk signature was replaced', async () => {
    const verified = verifyRequest(request, awsExampleOptions);
    const encoded = Buffer.from(body().toString('latin1').replace(published[2]!, published[1]!), 'latin1');
    const run = await runVerifier(createPayloadVerifier(verified, request.headers), [encoded]);
    expect(run.error?.code).toBe('SignatureDoesNotMatch');
    expect(run.output.length).toBeLessThan(data.length);
  });
});

describe('chunked upload with a signed trailer, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER (seed 106e2a8a…)', () => {
  // Published on the S3 "Signature calculations for trailing headers" page; the same values appear in
  // several independent open-source S3 servers' test suites.
  const data = Buffer.alloc(66560, 'a');
  const request: SignedRequest = {
    method: 'PUT',
    rawPath: '/examplebucket/chunkObject.txt',
    rawQuery: '',
    headers: {
      host: 's3.amazonaws.com',
      'x-amz-date': AWS_EXAMPLE.amzDate,
      'x-amz-storage-class': 'REDUCED_REDUNDANCY',
      'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER',
      'content-encoding': 'aws-chunked',
      'x-amz-decoded-content-length': '66560',
      'x-amz-trailer': 'x-amz-checksum-crc32c',
      authorization: authorization(
        'content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer',
        '106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e',
      ),
    },
  };
  const chunkSignatures = [
    'b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2',
    '1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7',
    '2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992',
  ];
  const trailerSignature = 'd81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435';

  /** The body exactly as published: note it ends after the trailer signature's CRLF, without a blank line. */
  function publishedBody(checksum = 'sOO8/Q=='): Buffer {
    return Buffer.concat([
      Buffer.from(`10000;chunk-signature=${chunkSignatures[0]}\r\n`),
      data.subarray(0, 65536),
      Buffer.from(`\r\n400;chunk-signature=${chunkSignatures[1]}\r\n`),
      data.subarray(65536),
      Buffer.from(`\r\n0;chunk-signature=${chunkSignatures[2]}\r\n`),
      Buffer.from(`x-amz-checksum-crc32c:${checksum}\r\nx-amz-trailer-signature:${trailerSignature}\r\n`),
    ]);
  }

  it('verifies the seed and reproduces the published chunk and trailer signatures', () => {
    const verified = verifyRequest(request, awsExampleOptions);
    expect(verified.payload).toEqual({ kind: 'streaming-signed', trailer: true });
    expect(verified.trailerHeaders).toEqual(['x-amz-checksum-crc32c']);
    const first = signChunk(verified, verified.seedSignature, data.subarray(0, 65536));
    const second = signChunk(verified, first, data.subarray(65536));
    const final = signChunk(verified, second, new Uint8Array(0));
    expect([first, second, final]).toEqual(chunkSignatures);
    expect(signTrailer(verified, final, [['x-amz-checksum-crc32c', 'sOO8/Q==']])).toBe(trailerSignature);
  });

  it('decodes the published body and exposes the verified trailing checksum', async () => {
    const verified = verifyRequest(request, awsExampleOptions);
    const verifier = createPayloadVerifier(verified, request.headers);
    const run = await runVerifier(verifier, [publishedBody()]);
    expect(run.error).toBeUndefined();
    expect(run.output.equals(data)).toBe(true);
    expect(verifier.checksums).toEqual({ 'x-amz-checksum-crc32c': 'sOO8/Q==' });
    expect(run.events).toEqual([['x-amz-checksum-crc32c', 'sOO8/Q==', 'trailer']]);
  });

  it('rejects a changed trailer value by its signature', async () => {
    const verified = verifyRequest(request, awsExampleOptions);
    const run = await runVerifier(createPayloadVerifier(verified, request.headers), [publishedBody('AAAAAA==')]);
    expect(run.error?.code).toBe('SignatureDoesNotMatch');
    expect(run.output.length).toBeLessThan(data.length);
  });

  it('rejects a correctly signed trailer whose checksum does not match the data (BadDigest)', async () => {
    const verified = verifyRequest(request, awsExampleOptions);
    const wrongChecksum = 'AAAAAA==';
    const final = chunkSignatures[2]!;
    const body = Buffer.concat([
      publishedBody().subarray(0, publishedBody().indexOf('x-amz-checksum-crc32c')),
      Buffer.from(
        `x-amz-checksum-crc32c:${wrongChecksum}\r\nx-amz-trailer-signature:${signTrailer(verified, final, [['x-amz-checksum-crc32c', wrongChecksum]])}\r\n\r\n`,
      ),
    ]);
    const run = await runVerifier(createPayloadVerifier(verified, request.headers), [body]);
    expect(run.error?.code).toBe('BadDigest');
    expect(run.output.length).toBeLessThan(data.length);
  });

  it('rejects the published body when the trailer signature is missing', async () => {
    const verified = verifyRequest(request, awsExampleOptions);
    const body = publishedBody();
    const withoutSignature = body.subarray(0, body.indexOf('x-amz-trailer-signature'));
    const run = await runVerifier(createPayloadVerifier(verified, request.headers), [withoutSignature]);
    expect(run.error?.code).toBe('SignatureDoesNotMatch');
  });
});
