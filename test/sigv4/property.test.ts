/**
 * Property tests against independent signers: requests signed by @smithy/signature-v4 (configured
 * as the AWS SDK configures it for S3: uriEscapePath false, no checksum header) and by aws4 verify
 * for arbitrary object keys and query values; any single changed byte of a signed part fails with an
 * S3Error; arbitrary garbage never crashes the verifier.
 */
import aws4 from 'aws4';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { S3Error } from '../../src/errors.js';
import { verifyRequest } from '../../src/sigv4/verify.js';
import type { SignedRequest, VerifyOptions } from '../../src/sigv4/types.js';
import { lookupFor, nodeHeaders, smithyS3Signer, splitTarget } from './helpers.js';

const KEY_ID = 'rs_ak_live_prop';
const SECRET = 'rs_sk_live_prop/secret+value';
const NOW = new Date('2025-06-15T08:30:00Z');
const HOST = 'localhost:9000';
const options: VerifyOptions<string> = { lookup: lookupFor({ [KEY_ID]: SECRET }), regions: ['auto'], now: NOW };

/** The AWS SDK's URI escaping (encodeURIComponent plus !'()*). */
function sdkEscape(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

/** Pieces object keys and query values are drawn from: every character class clients encode differently. */
const PIECES = [
  'a',
  'Z',
  '9',
  '-',
  '_',
  '.',
  '~',
  ' ',
  '  ',
  '+',
  '=',
  '&',
  '?',
  '#',
  '%',
  '%20',
  '%2F',
  '/',
  '//',
  '!',
  '$',
  "'",
  '(',
  ')',
  '*',
  ',',
  ';',
  ':',
  '@',
  '[',
  ']',
  '"',
  '<',
  '^',
  '`',
  '{',
  '|',
  '\\',
  '..',
  'é',
  'ß',
  'ሴ',
  '😀',
  '\u00a0',
  'file.txt',
  'dir/',
];
const text = (maxLength: number) => fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength }).map((p) => p.join(''));
const objectKey = text(12);
const queryParams = fc.uniqueArray(fc.tuple(text(4), fc.oneof(text(6), fc.constant(''))), { maxLength: 4, selector: ([k]) => k });
const metaValue = fc
  .string({ unit: fc.constantFrom(...'abc XYZ 09\t-_.:;,/"\'=+'.split('')), minLength: 1, maxLength: 30 })
  .map((v) => v.replace(/^[ \t]+|[ \t]+$/g, '') || 'v'); // Node trims header values
const method = fc.constantFrom('GET', 'PUT', 'HEAD', 'DELETE', 'POST');

async function smithySigned(
  m: string,
  key: string,
  params: [string, string][],
  meta: string,
  encode: (segment: string) => string = sdkEscape,
): Promise<SignedRequest> {
  const path = '/bucket/' + key.split('/').map(encode).join('/');
  const query: Record<string, string> = Object.fromEntries(params);
  const signed = await smithyS3Signer(KEY_ID, SECRET, 'auto').sign(
    {
      method: m,
      protocol: 'http:',
      hostname: 'localhost',
      port: 9000,
      path,
      query,
      headers: { host: HOST, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'x-amz-meta-note': meta },
    },
    { signingDate: NOW },
  );
  const rawQuery = params.map(([k, v]) => `${sdkEscape(k)}=${sdkEscape(v)}`).join('&');
  return { method: m, rawPath: path, rawQuery, headers: nodeHeaders(signed.headers) };
}

/** Ways clients put the same key on the wire. */
const WIRE_STYLES: Record<string, (segment: string) => string> = {
  sdk: sdkEscape,
  encodeURIComponent: (s) => encodeURIComponent(s), // leaves !'()* raw
  tildeEscaped: (s) => sdkEscape(s).replace(/~/g, '%7E'),
  lowerHex: (s) => sdkEscape(s).replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase()),
  plusForSpace: (s) => sdkEscape(s).replace(/%20/g, '+'),
};
/** aws4 reads a raw '+' in a path as a space; S3 (and keygate) read it as a plus, so that style is excluded. */
const AWS4_STYLES = Object.keys(WIRE_STYLES).filter((s) => s !== 'plusForSpace');

function aws4Signed(m: string, key: string, style: string, params: [string, string][], meta: string): SignedRequest {
  const encode = WIRE_STYLES[style]!;
  const rawQuery = params.map(([k, v]) => `${sdkEscape(k)}=${sdkEscape(v)}`).join('&');
  const request = {
    host: HOST,
    method: m,
    path: '/bucket/' + key.split('/').map(encode).join('/') + (rawQuery ? '?' + rawQuery : ''),
    service: 's3',
    region: 'auto',
    headers: { 'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD', 'X-Amz-Date': '20250615T083000Z', 'X-Amz-Meta-Note': meta } as Record<string, string>,
  };
  aws4.sign(request, { accessKeyId: KEY_ID, secretAccessKey: SECRET });
  return { method: m, ...splitTarget(request.path), headers: nodeHeaders(request.headers) };
}

/** Indexes of alphanumeric chars outside percent-escapes: changing one always changes the meaning. */
function tamperablePositions(value: string): number[] {
  const positions: number[] = [];
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '%') {
      i += 2;
      continue;
    }
    if (/[A-Za-z0-9]/.test(value[i]!)) positions.push(i);
  }
  return positions;
}

function tamperAt(value: string, position: number): string {
  const c = value[position]!;
  const replacement = /[0-9]/.test(c)
    ? String((Number(c) + 1) % 10)
    : c === 'q' || c === 'Q'
      ? String.fromCharCode(c.charCodeAt(0) + 1)
      : c === 'z'
        ? 'y'
        : c === 'Z'
          ? 'Y'
          : String.fromCharCode(c.charCodeAt(0) + 1);
  return value.slice(0, position) + replacement + value.slice(position + 1);
}

function verifyError(req: SignedRequest): unknown {
  try {
    verifyRequest(req, options);
    return undefined;
  } catch (error) {
    return error;
  }
}

describe('requests signed by @smithy/signature-v4 (AWS SDK for JavaScript v3 S3 settings)', () => {
  it('verify for arbitrary keys, query parameters and header values', async () => {
    await fc.assert(
      fc.asyncProperty(method, objectKey, queryParams, metaValue, async (m, key, params, meta) => {
        const req = await smithySigned(m, key, params, meta);
        const verified = verifyRequest(req, options);
        expect(verified.accessKeyId).toBe(KEY_ID);
      }),
      { numRuns: 300 },
    );
  });

  it('verify when the signer signs a non-canonical wire path verbatim (as botocore does for S3)', async () => {
    await fc.assert(
      fc.asyncProperty(method, objectKey, fc.constantFrom(...Object.keys(WIRE_STYLES)), queryParams, metaValue, async (m, key, style, params, meta) => {
        const req = await smithySigned(m, key, params, meta, WIRE_STYLES[style]);
        expect(verifyRequest(req, options).accessKeyId).toBe(KEY_ID);
      }),
      { numRuns: 300 },
    );
  });

  it('fail with SignatureDoesNotMatch after any single changed byte of a signed part', async () => {
    const part = fc.constantFrom('method', 'path', 'query', 'header', 'host', 'signature');
    await fc.assert(
      fc.asyncProperty(method, objectKey, queryParams, metaValue, part, fc.nat(), async (m, key, params, meta, where, pick) => {
        const req = await smithySigned(m, key, params, meta);
        let tampered: SignedRequest;
        if (where === 'method') {
          tampered = { ...req, method: m === 'GET' ? 'PUT' : 'GET' };
        } else if (where === 'path' || where === 'query') {
          const value = where === 'path' ? req.rawPath : req.rawQuery;
          const positions = tamperablePositions(value);
          fc.pre(positions.length > 0);
          tampered = { ...req, [where === 'path' ? 'rawPath' : 'rawQuery']: tamperAt(value, positions[pick % positions.length]!) };
        } else {
          const name = where === 'header' ? 'x-amz-meta-note' : where === 'host' ? 'host' : 'authorization';
          const value = String(req.headers[name]);
          const positions =
            where === 'signature'
              ? [...value.matchAll(/[0-9a-f]/g)].map((mm) => mm.index).filter((i) => i > value.indexOf('Signature=') + 9)
              : tamperablePositions(value);
          fc.pre(positions.length > 0);
          const position = positions[pick % positions.length]!;
          const replaced =
            where === 'signature' ? value.slice(0, position) + (value[position] === '0' ? '1' : '0') + value.slice(position + 1) : tamperAt(value, position);
          tampered = { ...req, headers: { ...req.headers, [name]: replaced } };
        }
        const error = verifyError(tampered);
        expect(error, `tampered ${where} verified`).toBeInstanceOf(S3Error);
        expect((error as S3Error).code).toBe('SignatureDoesNotMatch');
      }),
      { numRuns: 300 },
    );
  });

  it('presigned URLs (SignatureV4.presign with the S3 presigner setup) verify until they expire', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('GET', 'PUT'), objectKey, queryParams, fc.integer({ min: 1, max: 604800 }), async (m, key, params, expiresIn) => {
        const path = '/bucket/' + key.split('/').map(sdkEscape).join('/');
        // What @aws-sdk/s3-request-presigner does: sign UNSIGNED-PAYLOAD via the (hoisted) header.
        const presigned = await smithyS3Signer(KEY_ID, SECRET, 'auto').presign(
          {
            method: m,
            protocol: 'http:',
            hostname: 'localhost',
            port: 9000,
            path,
            query: Object.fromEntries(params),
            headers: { host: HOST, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
          },
          { signingDate: NOW, expiresIn },
        );
        const rawQuery = Object.entries(presigned.query as Record<string, string>)
          .map(([k, v]) => `${sdkEscape(k)}=${sdkEscape(v)}`)
          .join('&');
        const req: SignedRequest = { method: m, rawPath: path, rawQuery, headers: { host: HOST } };
        expect(verifyRequest(req, options).presignExpiresAt?.getTime()).toBe(NOW.getTime() + expiresIn * 1000);
        const late = new Date(NOW.getTime() + expiresIn * 1000 + 1000);
        expect(() => verifyRequest(req, { ...options, now: late })).toThrow(/Request has expired/);
      }),
      { numRuns: 150 },
    );
  });
});

describe('requests signed by aws4', () => {
  it('verify whatever wire encoding the client chose for the key', () => {
    fc.assert(
      fc.property(method, objectKey, fc.constantFrom(...AWS4_STYLES), queryParams, metaValue, (m, key, style, params, meta) => {
        // aws4 signs only the first value of a repeated query key; keys here are unique after decoding.
        const req = aws4Signed(m, key, style, params, meta);
        expect(verifyRequest(req, options).accessKeyId).toBe(KEY_ID);
      }),
      { numRuns: 300 },
    );
  });

  it('a raw "+" that aws4 signed as a space is rejected, as S3 does', () => {
    const req = aws4Signed('GET', 'a b', 'plusForSpace', [], 'v');
    expect(req.rawPath).toBe('/bucket/a+b');
    expect((verifyError(req) as S3Error).code).toBe('SignatureDoesNotMatch');
  });

  it('fail after a changed path byte', () => {
    fc.assert(
      fc.property(objectKey, fc.constantFrom(...AWS4_STYLES), fc.nat(), (key, style, pick) => {
        const req = aws4Signed('GET', key, style, [], 'v');
        const positions = tamperablePositions(req.rawPath);
        const tampered = { ...req, rawPath: tamperAt(req.rawPath, positions[pick % positions.length]!) };
        const error = verifyError(tampered);
        expect(error).toBeInstanceOf(S3Error);
        expect((error as S3Error).code).toBe('SignatureDoesNotMatch');
      }),
      { numRuns: 200 },
    );
  });
});

describe('robustness', () => {
  it('arbitrary requests only ever fail with an S3Error', () => {
    const component = fc.oneof(
      fc.string(),
      fc.constantFrom(
        'AWS4-HMAC-SHA256',
        'Credential=',
        'SignedHeaders=',
        'Signature=',
        `${KEY_ID}/20250615/auto/s3/aws4_request`,
        'host;x-amz-date',
        ',',
        ' ',
        '/',
        ';',
        '=',
        '%',
        '%zz',
        '0'.repeat(64),
      ),
    );
    const authorization = fc.array(component, { maxLength: 10 }).map((parts) => parts.join(''));
    const queryPart = fc.oneof(
      fc.string(),
      fc.constantFrom(
        'X-Amz-Algorithm=AWS4-HMAC-SHA256',
        `X-Amz-Credential=${KEY_ID}%2F20250615%2Fauto%2Fs3%2Faws4_request`,
        'X-Amz-Date=20250615T083000Z',
        'X-Amz-Expires=60',
        'X-Amz-SignedHeaders=host',
        'X-Amz-Signature=00',
        '&',
        '=',
      ),
    );
    const headerValue = fc.oneof(
      fc.string(),
      fc.constantFrom('20250615T083000Z', 'UNSIGNED-PAYLOAD', 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', '12', 'x-amz-checksum-crc32'),
    );
    fc.assert(
      fc.property(
        fc.string(),
        fc.string(),
        fc.array(queryPart, { maxLength: 8 }).map((p) => p.join('&')),
        fc.option(authorization, { nil: undefined }),
        fc.dictionary(
          fc.constantFrom('x-amz-date', 'date', 'x-amz-content-sha256', 'x-amz-decoded-content-length', 'x-amz-trailer', 'x-amz-meta-a', 'host'),
          headerValue,
        ),
        (m, rawPath, rawQuery, auth, headers) => {
          const error = verifyError({ method: m, rawPath, rawQuery, headers: { ...headers, authorization: auth } });
          expect(error).toBeInstanceOf(S3Error);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
