/** SigV4 POST policies: decoding, signature checks and condition evaluation (src/sigv4/post-policy.ts). */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { S3Error } from '../../src/errors.js';
import { checkPostPolicy, contentLengthProblem, decodePostPolicy, verifyPostSignature, type PostPolicy } from '../../src/sigv4/post-policy.js';

const NOW = new Date('2030-05-01T12:00:00Z');
const encode = (document: unknown) => Buffer.from(typeof document === 'string' ? document : JSON.stringify(document)).toString('base64');

function codeOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof S3Error) return `${error.code} ${error.message}`;
    throw error;
  }
  return 'no error';
}

function policy(conditions: unknown[], expiration = '2030-05-01T12:10:00.000Z'): PostPolicy {
  return decodePostPolicy(encode({ expiration, conditions }));
}

const fields = (entries: Record<string, string>) => new Map(Object.entries(entries));

describe('decodePostPolicy', () => {
  it('reads exact, eq, starts-with and content-length-range conditions, names lower-cased', () => {
    const decoded = policy([{ Bucket: 'b' }, ['eq', '$Key', 'k'], ['Starts-With', '$Content-Type', 'image/'], ['content-length-range', '10', 20]]);
    expect(decoded.expiration.toISOString()).toBe('2030-05-01T12:10:00.000Z');
    expect(decoded.conditions.map((c) => [c.kind, 'field' in c ? c.field : null])).toEqual([
      ['eq', 'bucket'],
      ['eq', 'key'],
      ['starts-with', 'content-type'],
      ['content-length-range', null],
    ]);
    expect(decoded.conditions[3]).toMatchObject({ min: 10, max: 20 });
  });

  it.each([
    ['not base64', '***', /Base64/],
    ['not JSON', encode('{"expiration":'), /Invalid JSON/],
    ['no expiration', encode({ conditions: [] }), /missing expiration/],
    ['a bad expiration', encode({ expiration: 'tomorrow', conditions: [] }), /'expiration'/],
    ['no conditions', encode({ expiration: '2030-01-01T00:00:00Z' }), /missing conditions/],
    ['an unknown operator', encode({ expiration: '2030-01-01T00:00:00Z', conditions: [['ends-with', '$key', 'x']] }), /operator/],
    ['a field without $', encode({ expiration: '2030-01-01T00:00:00Z', conditions: [['eq', 'key', 'x']] }), /\$field/],
    ['an inverted range', encode({ expiration: '2030-01-01T00:00:00Z', conditions: [['content-length-range', 5, 1]] }), /content-length-range/],
    ['a non-string value', encode({ expiration: '2030-01-01T00:00:00Z', conditions: [{ key: 5 }] }), /must be a string/],
  ])('refuses %s with InvalidPolicyDocument', (_, encoded, message) => {
    const outcome = codeOf(() => decodePostPolicy(encoded));
    expect(outcome).toMatch(/^InvalidPolicyDocument Invalid Policy: /);
    expect(outcome).toMatch(message);
  });
});

describe('checkPostPolicy', () => {
  const base = [{ bucket: 'b' }, ['starts-with', '$key', 'uploads/'], { 'x-amz-date': 'd' }];
  const form = { bucket: 'b', key: 'uploads/${filename}', 'x-amz-date': 'd', policy: 'p', 'x-amz-signature': 's', 'x-ignore-me': 'x' };

  it('accepts a form whose every field is covered, compares values before ${filename} substitution', () => {
    expect(checkPostPolicy(policy([...base, ['content-length-range', 1, 100]]), fields(form), NOW)).toEqual({ min: 1, max: 100 });
    expect(checkPostPolicy(policy(base), fields(form), NOW)).toBeNull();
  });

  it('intersects several content-length-ranges', () => {
    expect(checkPostPolicy(policy([...base, ['content-length-range', 1, 100], ['content-length-range', 10, 1000]]), fields(form), NOW)).toEqual({
      min: 10,
      max: 100,
    });
  });

  it('refuses an expired policy', () => {
    expect(codeOf(() => checkPostPolicy(policy(base, '2030-05-01T11:59:59Z'), fields(form), NOW))).toMatch(
      /^AccessDenied Invalid according to Policy: Policy expired/,
    );
  });

  it('refuses failed conditions, quoting them', () => {
    expect(codeOf(() => checkPostPolicy(policy(base), fields({ ...form, key: 'other/x' }), NOW))).toBe(
      'AccessDenied Invalid according to Policy: Policy Condition failed: ["starts-with","$key","uploads/"]',
    );
    expect(codeOf(() => checkPostPolicy(policy(base), fields({ ...form, bucket: 'c' }), NOW))).toMatch(/Condition failed: \{"bucket":"b"\}/);
    // eq is exact and case-sensitive in the value.
    expect(codeOf(() => checkPostPolicy(policy([...base, ['eq', '$acl', 'private']]), fields({ ...form, acl: 'Private' }), NOW))).toMatch(/Condition failed/);
  });

  it('treats a missing field as empty: only an empty eq or prefix accepts it', () => {
    expect(checkPostPolicy(policy([...base, ['starts-with', '$Content-Type', '']]), fields(form), NOW)).toBeNull();
    expect(codeOf(() => checkPostPolicy(policy([...base, { 'content-type': 'text/plain' }]), fields(form), NOW))).toMatch(/Condition failed/);
  });

  it('refuses fields no condition names, except policy, signature, file and x-ignore-*', () => {
    expect(codeOf(() => checkPostPolicy(policy(base), fields({ ...form, 'x-amz-meta-a': '1', 'content-type': 'x' }), NOW))).toBe(
      'AccessDenied Invalid according to Policy: Extra input fields: x-amz-meta-a, content-type. Every form field needs a condition in the policy (or an x-ignore- prefix).',
    );
  });

  it('maps sizes outside the range to EntityTooSmall / EntityTooLarge', () => {
    expect(contentLengthProblem({ min: 1, max: 10 }, 5)).toBeNull();
    expect(contentLengthProblem({ min: 1, max: 10 }, 0)?.code).toBe('EntityTooSmall');
    expect(contentLengthProblem({ min: 1, max: 10 }, 11)?.details).toEqual({ ProposedSize: 11, MaxSizeAllowed: 10 });
  });
});

describe('verifyPostSignature', () => {
  const secret = 'rs_sk_test_secret';
  const keys: Record<string, string> = { rs_ak_test_1: secret };
  const lookup = (id: string) => (keys[id] === undefined ? undefined : { secretAccessKey: keys[id], key: { id } });
  const options = { lookup, regions: ['auto', 'us-east-1'] };
  const encodedPolicy = encode({ expiration: '2030-05-01T12:10:00Z', conditions: [{ bucket: 'b' }] });

  function sign(policyText: string, secretKey = secret, date = '20300501', region = 'us-east-1'): string {
    const hmac = (k: Buffer | string, data: string) => createHmac('sha256', k).update(data).digest();
    const signingKey = hmac(hmac(hmac(hmac(`AWS4${secretKey}`, date), region), 's3'), 'aws4_request');
    return createHmac('sha256', signingKey).update(policyText).digest('hex');
  }

  const authFields = (overrides: Partial<Record<'algorithm' | 'credential' | 'date' | 'signature' | 'policy', string | undefined>> = {}) => ({
    algorithm: 'AWS4-HMAC-SHA256',
    credential: 'rs_ak_test_1/20300501/us-east-1/s3/aws4_request',
    date: '20300501T120000Z',
    signature: sign(encodedPolicy),
    policy: encodedPolicy,
    ...overrides,
  });

  it('verifies the HMAC of the base64 policy with the SigV4 signing key, and returns the key and policy', () => {
    const verified = verifyPostSignature(authFields(), options);
    expect(verified.accessKeyId).toBe('rs_ak_test_1');
    expect(verified.key).toEqual({ id: 'rs_ak_test_1' });
    expect(verified.policy.conditions).toHaveLength(1);
    // Upper-case hex is the same signature.
    expect(verifyPostSignature(authFields({ signature: sign(encodedPolicy).toUpperCase() }), options).accessKeyId).toBe('rs_ak_test_1');
  });

  it('refuses wrong signatures, unknown keys and wrong scopes', () => {
    expect(codeOf(() => verifyPostSignature(authFields({ signature: sign(encodedPolicy, 'other') }), options))).toMatch(/^SignatureDoesNotMatch/);
    expect(codeOf(() => verifyPostSignature(authFields({ signature: 'zz' }), options))).toMatch(/^SignatureDoesNotMatch/);
    expect(codeOf(() => verifyPostSignature(authFields({ credential: 'rs_ak_nope/20300501/us-east-1/s3/aws4_request' }), options))).toMatch(
      /^InvalidAccessKeyId/,
    );
    expect(codeOf(() => verifyPostSignature(authFields({ credential: 'rs_ak_test_1/20300501/eu-west-1/s3/aws4_request' }), options))).toMatch(
      /region 'eu-west-1' is wrong/,
    );
    expect(codeOf(() => verifyPostSignature(authFields({ credential: 'rs_ak_test_1/20300502/us-east-1/s3/aws4_request' }), options))).toMatch(
      /credential date/,
    );
    expect(codeOf(() => verifyPostSignature(authFields({ credential: 'rs_ak_test_1/20300501/us-east-1/s3' }), options))).toMatch(/mal-formed/);
  });

  it('refuses missing or unsupported authentication fields with S3 errors', () => {
    expect(codeOf(() => verifyPostSignature(authFields({ policy: undefined, signature: undefined }), options))).toMatch(/^AccessDenied .*Anonymous/);
    expect(codeOf(() => verifyPostSignature(authFields({ policy: undefined }), options))).toMatch(/^InvalidArgument .*'policy'/);
    expect(codeOf(() => verifyPostSignature(authFields({ algorithm: 'AWS4-HMAC-SHA1' }), options))).toMatch(/^InvalidArgument x-amz-algorithm/);
    expect(codeOf(() => verifyPostSignature(authFields({ credential: undefined }), options))).toMatch(/'x-amz-credential'/);
    expect(codeOf(() => verifyPostSignature(authFields({ date: '2030-05-01' }), options))).toMatch(/^InvalidArgument x-amz-date/);
    expect(codeOf(() => verifyPostSignature(authFields({ signature: undefined }), options))).toMatch(/'x-amz-signature'/);
  });

  it('checks the signature before decoding the policy, so unsigned garbage is SignatureDoesNotMatch', () => {
    expect(codeOf(() => verifyPostSignature(authFields({ policy: encode('not json') }), options))).toMatch(/^SignatureDoesNotMatch/);
    const garbage = encode('not json');
    expect(codeOf(() => verifyPostSignature(authFields({ policy: garbage, signature: sign(garbage) }), options))).toMatch(/^InvalidPolicyDocument/);
  });
});
