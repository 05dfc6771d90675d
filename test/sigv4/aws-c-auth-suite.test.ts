/**
 * Cases of the awslabs/aws-c-auth SigV4 test suite (tests/aws-signing-test-suite/v4/<case>/
 * header-signed-request.txt) that apply to S3, i.e. the "unnormalized" path variants: S3 signs the
 * path as-is, without resolving '.', '..' or '//'. Signatures are the suite's published values.
 * Suite context: AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, us-east-1, service "service",
 * 20150830T123600Z. S3 additionally requires x-amz-content-sha256; it is added unsigned (S3 allows
 * that header unsigned) with the suite's payload hash, so the published signatures still apply.
 */
import { describe, expect, it } from 'vitest';
import { createPayloadVerifier } from '../../src/sigv4/payload.js';
import { verifyRequest } from '../../src/sigv4/verify.js';
import type { VerifyOptions } from '../../src/sigv4/types.js';
import { EMPTY_SHA256, expectS3Error, lookupFor, runVerifier, splitTarget } from './helpers.js';

const options: VerifyOptions<string> = {
  lookup: lookupFor({ AKIDEXAMPLE: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' }),
  regions: ['us-east-1'],
  service: 'service',
  now: new Date('2015-08-30T12:36:00Z'),
};

interface SuiteCase {
  name: string;
  method?: string;
  target: string;
  headers?: Record<string, string | string[]>;
  signedHeaders?: string;
  signature: string;
}

const CASES: SuiteCase[] = [
  { name: 'get-vanilla', target: '/', signature: '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31' },
  {
    name: 'get-vanilla-query-order-key-case',
    target: '/?Param2=value2&Param1=value1',
    signature: 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500',
  },
  { name: 'get-vanilla-empty-query-key', target: '/?Param1=value1', signature: 'a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb' },
  {
    name: 'get-vanilla-query-order-encoded',
    target: '/?Param-3=Value3&Param=Value2&%E1%88%B4=Value1',
    signature: '371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac',
  },
  {
    name: 'get-vanilla-query-unreserved',
    target: '/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
    signature: '9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197',
  },
  { name: 'get-vanilla-utf8-query', target: '/?%E1%88%B4=bar', signature: '2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04' },
  {
    name: 'get-unreserved',
    target: '/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
    signature: '07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f',
  },
  { name: 'get-utf8 (percent-encoded on the wire)', target: '/%E1%88%B4', signature: '8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85' },
  // Node hands raw UTF-8 request-line bytes over as latin1 chars; they are the same bytes.
  {
    name: 'get-utf8 (raw UTF-8 bytes on the wire)',
    target: '/\u00e1\u0088\u00b4',
    signature: '8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85',
  },
  { name: 'get-space-unnormalized', target: '/example%20space/', signature: '652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741' },
  { name: 'get-slash-unnormalized', target: '//', signature: 'c88bcd3d312d75078c0cd961d6deae3f4c754924b01669efcfcb439fd5e5b76e' },
  { name: 'get-slashes-unnormalized', target: '//example//', signature: '87cca117541a147f6df867677d98a7d80dff226d2bfca9e4ffa899665623c7e5' },
  { name: 'get-slash-dot-slash-unnormalized', target: '/./', signature: '68714168e6557f8f2de0ef956fc24dc2593a4bd2961f8df51898d8a134695145' },
  {
    name: 'get-relative-relative-unnormalized',
    target: '/example1/example2/../..',
    signature: 'dc33e0856fd4baca4d7aa2146c38958283844764f38c74252a333df5e613003b',
  },
  {
    name: 'get-header-value-trim',
    target: '/',
    headers: { 'my-header1': 'value1', 'my-header2': '"a   b   c"' },
    signedHeaders: 'host;my-header1;my-header2;x-amz-date',
    signature: 'acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736',
  },
  {
    // Repeated headers must be given as arrays (req.headersDistinct / headersFromRawHeaders).
    name: 'get-header-key-duplicate',
    target: '/',
    headers: { 'my-header1': ['value2', 'value2', 'value1'] },
    signedHeaders: 'host;my-header1;x-amz-date',
    signature: 'c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea',
  },
  {
    name: 'get-header-value-order',
    target: '/',
    headers: { 'my-header1': ['value4', 'value1', 'value3', 'value2'] },
    signedHeaders: 'host;my-header1;x-amz-date',
    signature: '08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01',
  },
  {
    name: 'get-vanilla-with-session-token',
    target: '/',
    headers: { 'x-amz-security-token': '6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267' },
    signedHeaders: 'host;x-amz-date;x-amz-security-token',
    signature: '07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8',
  },
  {
    name: 'post-x-www-form-urlencoded',
    method: 'POST',
    target: '/',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'content-length': '13',
      'x-amz-content-sha256': '9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e',
    },
    signedHeaders: 'content-length;content-type;host;x-amz-content-sha256;x-amz-date',
    signature: 'd3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b',
  },
];

function requestFor(c: SuiteCase, signature = c.signature) {
  return {
    method: c.method ?? 'GET',
    ...splitTarget(c.target),
    headers: {
      host: 'example.amazonaws.com',
      'x-amz-date': '20150830T123600Z',
      'x-amz-content-sha256': EMPTY_SHA256,
      ...c.headers,
      authorization: `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=${c.signedHeaders ?? 'host;x-amz-date'}, Signature=${signature}`,
    },
  };
}

describe('aws-c-auth v4 suite (S3-applicable cases)', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s verifies', (_name, c) => {
    expect(verifyRequest(requestFor(c), options).seedSignature).toBe(c.signature);
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s fails with a flipped signature digit', (_name, c) => {
    const flipped = (c.signature[0] === '0' ? '1' : '0') + c.signature.slice(1);
    expectS3Error(() => verifyRequest(requestFor(c, flipped), options), 'SignatureDoesNotMatch');
  });

  it('does not normalize paths the way non-S3 services do (get-slash-normalized signs "/")', () => {
    // The normalized suite variants of '//' and '/./' sign the path '/', i.e. get-vanilla's signature.
    for (const target of ['//', '/./', '/example1/example2/../..']) {
      const c: SuiteCase = { name: 'normalized', target, signature: '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31' };
      expectS3Error(() => verifyRequest(requestFor(c), options), 'SignatureDoesNotMatch');
    }
  });

  it('Node-style ", " joining of a repeated header does not match the suite signature', () => {
    const c = CASES.find((x) => x.name === 'get-header-key-duplicate')!;
    const joined = { ...c, headers: { 'my-header1': 'value2, value2, value1' } };
    expectS3Error(() => verifyRequest(requestFor(joined), options), 'SignatureDoesNotMatch');
  });

  it('post-x-www-form-urlencoded: the body matches its signed x-amz-content-sha256', async () => {
    const c = CASES.find((x) => x.name === 'post-x-www-form-urlencoded')!;
    const request = requestFor(c);
    const verified = verifyRequest(request, options);
    const ok = await runVerifier(createPayloadVerifier(verified, request.headers), [Buffer.from('Param1=value1')]);
    expect(ok.error).toBeUndefined();
    expect(ok.output.toString()).toBe('Param1=value1');
    const bad = await runVerifier(createPayloadVerifier(verified, request.headers), [Buffer.from('Param1=value2')]);
    expect(bad.error?.code).toBe('XAmzContentSHA256Mismatch');
    expect(bad.output.length).toBeLessThan(13);
  });
});
