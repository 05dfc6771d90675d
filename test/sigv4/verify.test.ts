/**
 * verifyRequest: every rejection path with its S3 error, plus presignUrl/signRequest round trips.
 * Valid requests are signed with aws4 (an independent implementation) unless stated otherwise.
 */
import aws4 from 'aws4';
import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { computeSigningKey, deriveSigningKey, signingKeyCacheSize } from '../../src/sigv4/signing-key.js';
import { presignUrl, signRequest } from '../../src/sigv4/sign.js';
import { verifyRequest } from '../../src/sigv4/verify.js';
import type { SignedRequest, VerifyOptions } from '../../src/sigv4/types.js';
import { AWS_EXAMPLE, EMPTY_SHA256, awsExampleOptions, expectS3Error, lookupFor, nodeHeaders, splitTarget } from './helpers.js';

const KEY_ID = 'rs_ak_live_0123456789abcdef';
const SECRET = 'rs_sk_live_abcdefghijklmnopqrstuvwxyz012345';
const NOW = new Date('2025-03-01T12:00:00Z');
const HOST = 'localhost:9000';

const options: VerifyOptions<string> = { lookup: lookupFor({ [KEY_ID]: SECRET }), regions: ['auto', 'us-east-1'], now: NOW };

function aws4Signed(
  init: { method?: string; path?: string; headers?: Record<string, string>; region?: string; date?: Date; secret?: string; keyId?: string } = {},
): SignedRequest {
  const request = {
    host: HOST,
    method: init.method ?? 'GET',
    path: init.path ?? '/bucket/key.txt',
    service: 's3',
    region: init.region ?? 'auto',
    headers: {
      'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD',
      'X-Amz-Date': (init.date ?? NOW).toISOString().replace(/[-:]|\.\d{3}/g, ''),
      ...init.headers,
    } as Record<string, string>,
  };
  aws4.sign(request, { accessKeyId: init.keyId ?? KEY_ID, secretAccessKey: init.secret ?? SECRET });
  return { method: request.method, ...splitTarget(request.path), headers: nodeHeaders(request.headers) };
}

function withHeader(req: SignedRequest, name: string, value: string | undefined): SignedRequest {
  return { ...req, headers: { ...req.headers, [name]: value } };
}

function presigned(init: { expires?: number; date?: Date; region?: string; path?: string } = {}): SignedRequest {
  const url = presignUrl({
    method: 'GET',
    url: new URL(`http://${HOST}${init.path ?? '/bucket/key.txt'}`),
    accessKeyId: KEY_ID,
    secretAccessKey: SECRET,
    region: init.region ?? 'auto',
    expiresInSeconds: init.expires ?? 3600,
    now: init.date ?? NOW,
  });
  const parsed = new URL(url);
  return { method: 'GET', rawPath: parsed.pathname, rawQuery: parsed.search.slice(1), headers: { host: HOST } };
}

describe('valid requests', () => {
  it('accepts an aws4-signed request in every configured region', () => {
    expect(verifyRequest(aws4Signed(), options)).toMatchObject({ key: `key:${KEY_ID}`, region: 'auto', authType: 'header', payload: { kind: 'unsigned' } });
    expect(verifyRequest(aws4Signed({ region: 'us-east-1' }), options).scope).toBe('20250301/us-east-1/s3/aws4_request');
  });

  it('accepts the Date header when x-amz-date is absent (signed as its ISO basic form)', () => {
    // Hand-rolled SigV4 so the Date fallback is checked against an implementation that is not ours.
    const date = 'Sat, 01 Mar 2025 12:00:00 GMT';
    const canonical = [
      'GET',
      '/bucket/key.txt',
      '',
      `date:${date}`,
      `host:${HOST}`,
      'x-amz-content-sha256:UNSIGNED-PAYLOAD',
      '',
      'date;host;x-amz-content-sha256',
      'UNSIGNED-PAYLOAD',
    ].join('\n');
    const scope = '20250301/auto/s3/aws4_request';
    const stringToSign = ['AWS4-HMAC-SHA256', '20250301T120000Z', scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
    const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
    const signingKey = hmac(hmac(hmac(hmac('AWS4' + SECRET, '20250301'), 'auto'), 's3'), 'aws4_request');
    const signature = createHmac('sha256', signingKey).update(stringToSign).digest('hex');
    const req: SignedRequest = {
      method: 'GET',
      rawPath: '/bucket/key.txt',
      rawQuery: '',
      headers: {
        host: HOST,
        date,
        'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
        authorization: `AWS4-HMAC-SHA256 Credential=${KEY_ID}/${scope}, SignedHeaders=date;host;x-amz-content-sha256, Signature=${signature}`,
      },
    };
    expect(verifyRequest(req, options).amzDate).toBe('20250301T120000Z');
  });

  it('accepts an unsigned x-amz-content-sha256 header (it is the last line of the canonical request)', () => {
    const headers = signRequest({
      method: 'GET',
      rawPath: '/bucket/key.txt',
      headers: { host: HOST },
      accessKeyId: KEY_ID,
      secretAccessKey: SECRET,
      region: 'auto',
      now: NOW,
      signedHeaders: ['host', 'x-amz-date'],
    });
    expect(headers['authorization']).toContain('SignedHeaders=host;x-amz-date,');
    expect(verifyRequest({ method: 'GET', rawPath: '/bucket/key.txt', rawQuery: '', headers }, options).accessKeyId).toBe(KEY_ID);
    // ...yet its value is still covered: changing it breaks the signature.
    expectS3Error(
      () => verifyRequest({ method: 'GET', rawPath: '/bucket/key.txt', rawQuery: '', headers: { ...headers, 'x-amz-content-sha256': EMPTY_SHA256 } }, options),
      'SignatureDoesNotMatch',
    );
  });

  it('returns a private copy of the signing key', () => {
    const first = verifyRequest(aws4Signed(), options);
    first.signingKey.fill(0);
    expect(verifyRequest(aws4Signed(), options).signingKey.equals(computeSigningKey(SECRET, '20250301', 'auto'))).toBe(true);
  });
});

describe('which auth mechanism', () => {
  it('anonymous requests get 403 AccessDenied', () => {
    const error = expectS3Error(() => verifyRequest({ method: 'GET', rawPath: '/bucket/key', rawQuery: '', headers: { host: HOST } }, options), 'AccessDenied');
    expect(error.status).toBe(403);
  });

  it('an Authorization header together with presigned parameters is rejected (only one auth mechanism allowed)', () => {
    const req = withHeader(presigned(), 'authorization', String(aws4Signed().headers['authorization']));
    expectS3Error(() => verifyRequest(req, options), 'InvalidArgument', /Only one auth mechanism allowed/);
  });

  it.each([
    ['same case', 'X-Amz-Signature=' + '0'.repeat(64)],
    ['different case', 'x-amz-signature=' + '0'.repeat(64)],
    ['escaped name', '%58-Amz-Signature=' + '0'.repeat(64)],
    ['second credential', 'X-Amz-Credential=other'],
  ])('duplicate auth query parameters are rejected (%s)', (_what, extra) => {
    const req = presigned();
    expectS3Error(() => verifyRequest({ ...req, rawQuery: `${req.rawQuery}&${extra}` }, options), 'AuthorizationQueryParametersError', /more than once/);
  });

  it('SigV2 (header or query) is answered with "use AWS4-HMAC-SHA256"', () => {
    expectS3Error(
      () => verifyRequest(withHeader(aws4Signed(), 'authorization', `AWS ${KEY_ID}:c2lnbmF0dXJl`), options),
      'InvalidRequest',
      /Please use AWS4-HMAC-SHA256/,
    );
    expectS3Error(
      () =>
        verifyRequest(
          { method: 'GET', rawPath: '/b/k', rawQuery: `AWSAccessKeyId=${KEY_ID}&Expires=1700000000&Signature=abc`, headers: { host: HOST } },
          options,
        ),
      'InvalidRequest',
      /Please use AWS4-HMAC-SHA256/,
    );
    expectS3Error(() => verifyRequest(withHeader(aws4Signed(), 'authorization', 'AWS4-ECDSA-P256-SHA256 Credential=x'), options), 'InvalidRequest');
  });
});

describe('malformed Authorization headers', () => {
  const valid = String(aws4Signed().headers['authorization']);
  const credential = `${KEY_ID}/20250301/auto/s3/aws4_request`;
  const signature = /Signature=([0-9a-f]{64})/.exec(valid)![1]!;

  it.each([
    ['no components', 'AWS4-HMAC-SHA256'],
    ['missing Signature', `AWS4-HMAC-SHA256 Credential=${credential}, SignedHeaders=host;x-amz-content-sha256;x-amz-date`],
    ['missing SignedHeaders', `AWS4-HMAC-SHA256 Credential=${credential}, Signature=${signature}`],
    ['empty Credential', `AWS4-HMAC-SHA256 Credential=, SignedHeaders=host, Signature=${signature}`],
    ['unknown component', `AWS4-HMAC-SHA256 Credential=${credential}, SignedHeaders=host, Signature=${signature}, Extra=1`],
    ['repeated component', `AWS4-HMAC-SHA256 Credential=${credential}, Credential=${credential}, SignedHeaders=host, Signature=${signature}`],
    ['credential with 4 parts', `AWS4-HMAC-SHA256 Credential=${KEY_ID}/20250301/auto/s3, SignedHeaders=host, Signature=${signature}`],
    ['credential with 6 parts', `AWS4-HMAC-SHA256 Credential=a/${credential}, SignedHeaders=host, Signature=${signature}`],
    ['credential date not yyyyMMdd', `AWS4-HMAC-SHA256 Credential=${KEY_ID}/2025-03-01/auto/s3/aws4_request, SignedHeaders=host, Signature=${signature}`],
    ['upper-case signed header', `AWS4-HMAC-SHA256 Credential=${credential}, SignedHeaders=Host;x-amz-date, Signature=${signature}`],
    ['signed header listed twice', `AWS4-HMAC-SHA256 Credential=${credential}, SignedHeaders=host;host, Signature=${signature}`],
    ['empty signed header name', `AWS4-HMAC-SHA256 Credential=${credential}, SignedHeaders=host;;x-amz-date, Signature=${signature}`],
    ['lower-case algorithm', `aws4-hmac-sha256 Credential=${credential}, SignedHeaders=host, Signature=${signature}`],
  ])('%s -> AuthorizationHeaderMalformed', (_what, header) => {
    const error = expectS3Error(
      () => verifyRequest(withHeader(aws4Signed(), 'authorization', header), options),
      'AuthorizationHeaderMalformed',
      /^The authorization header is malformed; /,
    );
    expect(error.status).toBe(400);
  });

  it('accepts components in any order and without spaces after commas', () => {
    const reordered = `AWS4-HMAC-SHA256 Signature=${signature},Credential=${credential},SignedHeaders=host;x-amz-content-sha256;x-amz-date`;
    expect(verifyRequest(withHeader(aws4Signed(), 'authorization', reordered), options).seedSignature).toBe(signature);
  });

  it('names the expected region, service and terminator like S3 does', () => {
    const wrongRegion = expectS3Error(() => verifyRequest(aws4Signed({ region: 'eu-west-1' }), options), 'AuthorizationHeaderMalformed');
    expect(wrongRegion.message).toBe("The authorization header is malformed; the region 'eu-west-1' is wrong; expecting 'auto'");
    expect(wrongRegion.details['Region']).toBe('auto');
    const service = valid.replace('/s3/', '/s4/');
    expectS3Error(
      () => verifyRequest(withHeader(aws4Signed(), 'authorization', service), options),
      'AuthorizationHeaderMalformed',
      /incorrect service "s4". This endpoint belongs to "s3"/,
    );
    const terminal = valid.replace('aws4_request', 'aws4_reques');
    expectS3Error(
      () => verifyRequest(withHeader(aws4Signed(), 'authorization', terminal), options),
      'AuthorizationHeaderMalformed',
      /incorrect terminal "aws4_reques"/,
    );
  });

  it('rejects a credential date that is not the x-amz-date day', () => {
    const req = withHeader(aws4Signed(), 'x-amz-date', '20250302T000100Z');
    expectS3Error(
      () => verifyRequest(req, { ...options, now: new Date('2025-03-02T00:01:00Z') }),
      'AuthorizationHeaderMalformed',
      /Invalid credential date "20250301"/,
    );
  });
});

describe('request time', () => {
  it('rejects requests without a usable date', () => {
    expectS3Error(() => verifyRequest(withHeader(aws4Signed(), 'x-amz-date', undefined), options), 'AccessDenied', /valid Date or x-amz-date/);
    expectS3Error(() => verifyRequest(withHeader(aws4Signed(), 'x-amz-date', '2025-03-01T12:00:00Z'), options), 'AccessDenied', /valid Date or x-amz-date/);
  });

  it('allows 15 minutes of clock skew either way by default', () => {
    const req = aws4Signed();
    expect(() => verifyRequest(req, { ...options, now: new Date(NOW.getTime() + 900_000) })).not.toThrow();
    expect(() => verifyRequest(req, { ...options, now: new Date(NOW.getTime() - 900_000) })).not.toThrow();
  });

  it('answers RequestTimeTooSkewed with RequestTime, ServerTime and MaxAllowedSkewMilliseconds', () => {
    const req = aws4Signed();
    const error = expectS3Error(() => verifyRequest(req, { ...options, now: new Date(NOW.getTime() + 901_000) }), 'RequestTimeTooSkewed');
    expect(error.status).toBe(403);
    expect(error.details).toEqual({ RequestTime: '20250301T120000Z', ServerTime: '2025-03-01T12:15:01Z', MaxAllowedSkewMilliseconds: 900_000 });
    expectS3Error(() => verifyRequest(req, { ...options, now: new Date(NOW.getTime() - 61_000), maxSkewSeconds: 60 }), 'RequestTimeTooSkewed');
  });
});

describe('keys and signatures', () => {
  it('unknown access key -> InvalidAccessKeyId (after the same signature work)', () => {
    const error = expectS3Error(() => verifyRequest(aws4Signed({ keyId: 'rs_ak_live_unknown' }), options), 'InvalidAccessKeyId');
    expect(error.status).toBe(403);
    expect(error.details['AWSAccessKeyId']).toBe('rs_ak_live_unknown');
  });

  it('wrong secret -> SignatureDoesNotMatch', () => {
    expectS3Error(() => verifyRequest(aws4Signed({ secret: SECRET + 'x' }), options), 'SignatureDoesNotMatch');
  });

  it('a signature that is not 64 hex digits is a mismatch, not a crash', () => {
    for (const bad of ['abc', 'z'.repeat(64), '0'.repeat(63)]) {
      const header = String(aws4Signed().headers['authorization']).replace(/Signature=[0-9a-f]+/, `Signature=${bad}`);
      expectS3Error(() => verifyRequest(withHeader(aws4Signed(), 'authorization', header), options), 'SignatureDoesNotMatch');
    }
  });

  it('accepts an upper-case hex signature and reports it lower-case', () => {
    const req = aws4Signed();
    const header = String(req.headers['authorization']).replace(/Signature=([0-9a-f]+)/, (_m, s: string) => `Signature=${s.toUpperCase()}`);
    expect(verifyRequest(withHeader(req, 'authorization', header), options).seedSignature).toBe(
      /Signature=([0-9a-f]+)/.exec(String(req.headers['authorization']))![1],
    );
  });

  it('unknown keys and wrong secrets take comparable time', () => {
    const unknown = aws4Signed({ keyId: 'rs_ak_live_unknown' });
    const wrong = aws4Signed({ secret: 'nope' });
    const time = (req: SignedRequest) => {
      const start = process.hrtime.bigint();
      for (let i = 0; i < 200; i++) {
        try {
          verifyRequest(req, options);
        } catch {
          // expected
        }
      }
      return Number(process.hrtime.bigint() - start);
    };
    time(unknown);
    time(wrong); // warm-up
    const samples: number[] = [];
    for (let round = 0; round < 7; round++) samples.push(time(unknown) / time(wrong));
    samples.sort((a, b) => a - b);
    // Skipping the signature work for unknown keys would make them several times faster.
    expect(samples[3]).toBeGreaterThan(0.6);
  });

  it('with debug, SignatureDoesNotMatch carries StringToSign and CanonicalRequest; without, only the key id', () => {
    const tampered = withHeader(aws4Signed(), 'x-amz-content-sha256', EMPTY_SHA256);
    const debug = expectS3Error(() => verifyRequest(tampered, { ...options, debug: true }), 'SignatureDoesNotMatch');
    expect(Object.keys(debug.details)).toEqual([
      'AWSAccessKeyId',
      'StringToSign',
      'SignatureProvided',
      'StringToSignBytes',
      'CanonicalRequest',
      'CanonicalRequestBytes',
    ]);
    expect(String(debug.details['CanonicalRequest'])).toContain(`x-amz-content-sha256:${EMPTY_SHA256}`);
    const quiet = expectS3Error(() => verifyRequest(tampered, options), 'SignatureDoesNotMatch');
    expect(quiet.details).toEqual({ AWSAccessKeyId: KEY_ID });
  });
});

describe('signed headers policy', () => {
  it('rejects x-amz-* headers that are not signed (AccessDenied, HeadersNotSigned)', () => {
    const req = withHeader(aws4Signed(), 'x-amz-copy-source', '/other/secret');
    const error = expectS3Error(() => verifyRequest(req, options), 'AccessDenied', 'There were headers present in the request which were not signed');
    expect(error.details['HeadersNotSigned']).toBe('x-amz-copy-source');
  });

  it('requires host to be signed', () => {
    const headers = signRequest({
      method: 'GET',
      rawPath: '/b/k',
      headers: { host: HOST },
      accessKeyId: KEY_ID,
      secretAccessKey: SECRET,
      region: 'auto',
      now: NOW,
      signedHeaders: ['x-amz-content-sha256', 'x-amz-date'],
    });
    const error = expectS3Error(() => verifyRequest({ method: 'GET', rawPath: '/b/k', rawQuery: '', headers }, options), 'AccessDenied');
    expect(error.details['HeadersNotSigned']).toBe('host');
  });

  it('requires x-amz-content-sha256 for header auth and validates its value', () => {
    expectS3Error(() => verifyRequest(withHeader(aws4Signed(), 'x-amz-content-sha256', undefined), options), 'InvalidRequest', /x-amz-content-sha256/);
    const error = expectS3Error(
      () => verifyRequest(aws4Signed({ headers: { 'X-Amz-Content-Sha256': 'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD' } }), options),
      'InvalidArgument',
    );
    expect(error.details['ArgumentName']).toBe('x-amz-content-sha256');
  });

  it('maps every x-amz-content-sha256 value to its payload mode', () => {
    const mode = (value: string, extra: Record<string, string> = {}) =>
      verifyRequest(aws4Signed({ method: 'PUT', headers: { 'X-Amz-Content-Sha256': value, ...extra } }), options);
    const chunked = { 'Content-Encoding': 'aws-chunked', 'X-Amz-Decoded-Content-Length': '5' };
    expect(mode('UNSIGNED-PAYLOAD').payload).toEqual({ kind: 'unsigned' });
    expect(mode('A'.repeat(64)).payload).toEqual({ kind: 'signed', sha256: 'a'.repeat(64) });
    expect(mode('STREAMING-AWS4-HMAC-SHA256-PAYLOAD', chunked)).toMatchObject({
      payload: { kind: 'streaming-signed', trailer: false },
      decodedContentLength: 5,
    });
    expect(mode('STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', { ...chunked, 'X-Amz-Trailer': 'x-amz-checksum-crc32c' })).toMatchObject({
      payload: { kind: 'streaming-signed', trailer: true },
      trailerHeaders: ['x-amz-checksum-crc32c'],
    });
    expect(mode('STREAMING-UNSIGNED-PAYLOAD-TRAILER', { ...chunked, 'X-Amz-Trailer': 'X-Amz-Checksum-CRC32' })).toMatchObject({
      payload: { kind: 'streaming-unsigned-trailer' },
      trailerHeaders: ['x-amz-checksum-crc32'],
    });
  });

  it('requires a numeric x-amz-decoded-content-length for aws-chunked payloads', () => {
    expectS3Error(
      () => verifyRequest(aws4Signed({ method: 'PUT', headers: { 'X-Amz-Content-Sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER' } }), options),
      'MissingContentLength',
    );
    expectS3Error(
      () =>
        verifyRequest(
          aws4Signed({ method: 'PUT', headers: { 'X-Amz-Content-Sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', 'X-Amz-Decoded-Content-Length': '-1' } }),
          options,
        ),
      'InvalidArgument',
    );
  });

  it('rejects a header the verifier must read once but that came twice', () => {
    expectS3Error(
      () => verifyRequest(withHeader(aws4Signed(), 'x-amz-date', ['20250301T120000Z', '20250301T120000Z'] as unknown as string), options),
      'InvalidArgument',
    );
  });
});

describe('presigned URLs', () => {
  it("presignUrl reproduces AWS's published presigned example (aeeed9bb…)", () => {
    const url = presignUrl({
      method: 'GET',
      url: new URL('https://examplebucket.s3.amazonaws.com/test.txt'),
      accessKeyId: AWS_EXAMPLE.accessKeyId,
      secretAccessKey: AWS_EXAMPLE.secretAccessKey,
      region: 'us-east-1',
      expiresInSeconds: 86400,
      now: AWS_EXAMPLE.now,
    });
    expect(url).toBe(
      'https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request' +
        '&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404',
    );
  });

  it("signRequest reproduces AWS's published GET Object example (f0e8bdb8…)", () => {
    const headers = signRequest({
      method: 'GET',
      rawPath: '/test.txt',
      headers: { host: 'examplebucket.s3.amazonaws.com', range: 'bytes=0-9' },
      accessKeyId: AWS_EXAMPLE.accessKeyId,
      secretAccessKey: AWS_EXAMPLE.secretAccessKey,
      region: 'us-east-1',
      now: AWS_EXAMPLE.now,
      payloadHash: EMPTY_SHA256,
    });
    expect(headers['authorization']).toMatch(/Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41$/);
    expect(verifyRequest({ method: 'GET', rawPath: '/test.txt', rawQuery: '', headers }, awsExampleOptions).accessKeyId).toBe(AWS_EXAMPLE.accessKeyId);
  });

  it('round-trips keys with spaces, unicode, "+", "=" and existing query parameters', () => {
    const url = presignUrl({
      method: 'PUT',
      url: new URL(`http://${HOST}/bucket/dir//a b+c=d~é😀?partNumber=1&uploadId=x y`),
      accessKeyId: KEY_ID,
      secretAccessKey: SECRET,
      region: 'auto',
      expiresInSeconds: 60,
      now: NOW,
      signedHeaders: { 'Content-Type': 'text/plain' },
    });
    const parsed = new URL(url);
    const req: SignedRequest = {
      method: 'PUT',
      rawPath: parsed.pathname,
      rawQuery: parsed.search.slice(1),
      headers: { host: HOST, 'content-type': 'text/plain' },
    };
    expect(verifyRequest(req, options)).toMatchObject({ authType: 'presigned', payload: { kind: 'unsigned' } });
    expectS3Error(() => verifyRequest(withHeader(req, 'content-type', 'text/html'), options), 'SignatureDoesNotMatch');
    expectS3Error(() => verifyRequest({ ...req, rawQuery: req.rawQuery.replace('partNumber=1', 'partNumber=2') }, options), 'SignatureDoesNotMatch');
  });

  it('validates X-Amz-Expires (1..604800) and presignUrl refuses to issue outside it', () => {
    for (const expires of ['0', '604801', '-1', 'abc', '1e3']) {
      const req = presigned();
      const rawQuery = req.rawQuery.replace('X-Amz-Expires=3600', `X-Amz-Expires=${expires}`);
      expectS3Error(() => verifyRequest({ ...req, rawQuery }, options), 'AuthorizationQueryParametersError', /X-Amz-Expires/);
    }
    expect(() => presigned({ expires: 604801 })).toThrow(RangeError);
    expect(verifyRequest(presigned({ expires: 604800 }), options).presignExpiresAt?.toISOString()).toBe('2025-03-08T12:00:00.000Z');
  });

  it('expired -> 403 AccessDenied "Request has expired"', () => {
    const req = presigned({ expires: 60 });
    expect(() => verifyRequest(req, { ...options, now: new Date(NOW.getTime() + 60_000) })).not.toThrow();
    expectS3Error(() => verifyRequest(req, { ...options, now: new Date(NOW.getTime() + 61_000) }), 'AccessDenied', 'Request has expired');
  });

  it('an X-Amz-Date in the future beyond the allowed skew is not valid yet', () => {
    const req = presigned({ date: new Date(NOW.getTime() + 16 * 60_000) });
    expectS3Error(() => verifyRequest(req, options), 'AccessDenied', /not valid yet/);
    expect(() => verifyRequest(presigned({ date: new Date(NOW.getTime() + 14 * 60_000) }), options)).not.toThrow();
  });

  it('missing or malformed parameters -> AuthorizationQueryParametersError', () => {
    const req = presigned();
    for (const name of ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders']) {
      const rawQuery = req.rawQuery
        .split('&')
        .filter((p) => !p.startsWith(name + '='))
        .join('&');
      expectS3Error(() => verifyRequest({ ...req, rawQuery }, options), 'AuthorizationQueryParametersError');
    }
    expectS3Error(
      () => verifyRequest({ ...req, rawQuery: req.rawQuery.replace('AWS4-HMAC-SHA256', 'AWS4-HMAC-SHA512') }, options),
      'AuthorizationQueryParametersError',
      /X-Amz-Algorithm/,
    );
    expectS3Error(
      () => verifyRequest({ ...req, rawQuery: req.rawQuery.replace(/X-Amz-Date=\d+T\d+Z/, 'X-Amz-Date=2025-03-01') }, options),
      'AuthorizationQueryParametersError',
      /ISO8601/,
    );
    const wrongRegion = expectS3Error(() => verifyRequest(presigned({ region: 'eu-west-1' }), options), 'AuthorizationQueryParametersError');
    expect(wrongRegion.message).toBe("Error parsing the X-Amz-Credential parameter; the region 'eu-west-1' is wrong; expecting 'auto'");
  });

  it('rejects unsigned x-amz-* headers sent with a presigned URL', () => {
    expectS3Error(() => verifyRequest(withHeader(presigned(), 'x-amz-acl', 'public-read'), options), 'AccessDenied', /not signed/);
  });

  it('uses a pinned X-Amz-Content-Sha256 as the payload hash', () => {
    const url = new URL(
      presignUrl({
        method: 'PUT',
        url: new URL(`http://${HOST}/b/k?X-Amz-Content-Sha256=${EMPTY_SHA256}`),
        accessKeyId: KEY_ID,
        secretAccessKey: SECRET,
        region: 'auto',
        expiresInSeconds: 60,
        now: NOW,
      }),
    );
    // presignUrl signs UNSIGNED-PAYLOAD, so a URL that pins a hash must be signed over that hash instead.
    expectS3Error(
      () => verifyRequest({ method: 'PUT', rawPath: url.pathname, rawQuery: url.search.slice(1), headers: { host: HOST } }, options),
      'SignatureDoesNotMatch',
    );
  });
});

describe('signing key cache', () => {
  it('derives the documented signing key (AWS "derive a signing key" example)', () => {
    expect(computeSigningKey('wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', '20150830', 'us-east-1', 'iam').toString('hex')).toBe(
      'c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9',
    );
  });

  it('caches per (secret, date, region) and stays bounded', () => {
    const a = deriveSigningKey(SECRET, '20250301', 'auto');
    expect(deriveSigningKey(SECRET, '20250301', 'auto')).toBe(a);
    expect(deriveSigningKey(SECRET + '2', '20250301', 'auto').equals(a)).toBe(false);
    for (let i = 0; i < 3000; i++) deriveSigningKey(`secret-${i}`, '20250301', 'auto');
    expect(signingKeyCacheSize()).toBeLessThanOrEqual(2048);
  });
});
