import { describe, expect, it } from 'vitest';
import { BucketValidationError, bucketNameProblem, validateAddBucketInput } from '../../src/buckets/validate.js';
import { KeyValidationError, MAX_EXPIRY_SECONDS, parseExpiresIn, validateKeyInput, type CreateKeyInput } from '../../src/keys/validate.js';

const NOW = new Date('2030-01-01T00:00:00.000Z');

function rejection(input: CreateKeyInput): KeyValidationError {
  try {
    validateKeyInput(input, NOW);
  } catch (error) {
    expect(error).toBeInstanceOf(KeyValidationError);
    return error as KeyValidationError;
  }
  throw new Error(`expected ${JSON.stringify(input)} to be rejected`);
}

describe('parseExpiresIn', () => {
  it.each([
    ['30d', 30 * 86_400],
    ['12h', 12 * 3600],
    ['15m', 900],
    ['90m', 5400],
    ['3600s', 3600],
    ['3600', 3600],
    [' 7D ', 7 * 86_400],
    [1, 1],
    [86_400, 86_400],
    ['3652d', 3652 * 86_400],
  ] as const)('%j -> %d seconds', (input, seconds) => {
    expect(parseExpiresIn(input)).toBe(seconds);
  });

  it.each([
    ['0'],
    ['0d'],
    [0],
    [-5],
    [1.5],
    [Number.NaN],
    [Infinity],
    ['-1d'],
    ['1.5h'],
    ['1w'],
    ['d'],
    [''],
    ['30 days'],
    ['3653d'],
    [MAX_EXPIRY_SECONDS + 1],
  ])('rejects %j', (input) => {
    expect(() => parseExpiresIn(input)).toThrow(KeyValidationError);
  });

  it('explains the accepted forms', () => {
    expect(() => parseExpiresIn('soon')).toThrow(/30d, 12h, 15m or 3600s/);
    expect(() => parseExpiresIn('4000d')).toThrow(/10 years/);
  });
});

describe('validateKeyInput', () => {
  it('normalizes permissions (order, case, duplicates) and computes expiry', () => {
    const spec = validateKeyInput({ name: '  ci  ', permissions: ['Admin', 'read', 'read', 'delete'], expiresIn: '1h' }, NOW);
    expect(spec).toEqual({
      name: 'ci',
      kind: 'workspace',
      bucket: null,
      permissions: ['read', 'delete', 'admin'],
      expiresAt: new Date(NOW.getTime() + 3600_000),
      rateLimit: null,
      allowedIps: null,
      prefix: null,
    });
  });

  it('accepts a plain object key prefix, and refuses dot segments, control characters and overlong ones', () => {
    const prefix = (value: unknown) => validateKeyInput({ name: 'p', permissions: ['read'], prefix: value as string }, NOW).prefix;
    expect(prefix('team-a/')).toBe('team-a/');
    expect(prefix('reports')).toBe('reports');
    expect(prefix('')).toBeNull();
    expect(prefix(null)).toBeNull();
    for (const bad of ['../x/', 'team-a/../b/', './', 'a/./b', 'a/..', '..', 'tab\there', 'nl\n', 'x'.repeat(1025), 42, ['a']]) {
      expect(() => prefix(bad), JSON.stringify(bad)).toThrow(KeyValidationError);
    }
  });

  it("reads a key's own rate limit: 20/s, 0.5/s or a number, with an optional burst (default one second's worth)", () => {
    const limit = (rateLimit: unknown, rateBurst?: unknown) =>
      validateKeyInput({ name: 'r', permissions: ['read'], rateLimit: rateLimit as string, rateBurst: rateBurst as string }, NOW).rateLimit;
    expect(limit('20/s')).toEqual({ requestsPerSecond: 20, burst: 20 });
    expect(limit(' 20/S ')).toEqual({ requestsPerSecond: 20, burst: 20 });
    expect(limit('0.5/s')).toEqual({ requestsPerSecond: 0.5, burst: 1 });
    expect(limit(3, 10)).toEqual({ requestsPerSecond: 3, burst: 10 });
    expect(limit('7', '12')).toEqual({ requestsPerSecond: 7, burst: 12 });
    expect(limit(null)).toBeNull();
    expect(limit('')).toBeNull();
    for (const bad of ['0/s', '0', '-1/s', 'fast', '20/m', '20 /s', '1e3', 'Infinity', 100_001, 0, -5, Number.NaN, {}, [], true]) {
      expect(() => limit(bad), JSON.stringify(bad)).toThrow(KeyValidationError);
    }
    for (const badBurst of [0, '0', -1, 1.5, '1.5', 'x', 1_000_001, {}]) expect(() => limit('5/s', badBurst), JSON.stringify(badBurst)).toThrow(/not a burst/);
    expect(() => limit(null, 10)).toThrow(/only applies with a rate limit/);
  });

  it('accepts a permission list equal to a preset for per-bucket keys', () => {
    expect(validateKeyInput({ name: 'a', bucket: 'my-data', permissions: ['read'] }, NOW).permissions).toEqual(['read']);
    expect(validateKeyInput({ name: 'a', bucket: 'my-data', permissions: ['write', 'read'] }, NOW).permissions).toEqual(['read', 'write']);
  });

  it('requires permissions or a preset, and not both', () => {
    expect(rejection({ name: 'a' }).message).toMatch(/permissions .* or a preset/);
    expect(rejection({ name: 'a', bucket: 'my-data' }).field).toBe('permissions');
    expect(rejection({ name: 'a', permissions: ['read'], preset: 'read-only' }).message).toMatch(/not both/);
  });

  it.each([
    [{ name: 'a', permissions: [] }, 'permissions', /must not be empty/],
    [{ name: 'a', permissions: ['read', 'list'] }, 'permissions', /Unknown permission "list"/],
    [{ name: 'a', permissions: ['*'] }, 'permissions', /use any of: read, write, delete, admin/],
    [{ name: 'a', permissions: 'read' as unknown as string[] }, 'permissions', /list/],
    [{ name: 'a', preset: 'full' }, 'preset', /read-only, read-write/],
    [{ name: 'a', preset: 7 as unknown as string }, 'preset', /Unknown preset/],
    [{ name: 'a', bucket: 'my-data', permissions: ['read', 'admin'] }, 'permissions', /cannot have admin/],
    [{ name: 'a', bucket: 'my-data', permissions: ['admin'] }, 'permissions', /cannot have admin/],
    [{ name: 'a', bucket: 'my-data', permissions: ['read', 'write', 'delete'] }, 'permissions', /cannot delete/],
    [{ name: 'a', bucket: 'my-data', permissions: ['write'] }, 'permissions', /read-only or read-write/],
    [{ name: 'a', bucket: 'My-Data', preset: 'read-only' }, 'bucket', /lowercase/],
    [{ name: 'a', bucket: 'ab', preset: 'read-only' }, 'bucket', /3 to 63/],
    [{ name: 'a', bucket: '', preset: 'read-only' }, 'bucket', /3 to 63/],
    [{ name: 'a', bucket: '192.168.1.1', preset: 'read-only' }, 'bucket', /IP address/],
    [{ name: 'a', bucket: 5 as unknown as string, preset: 'read-only' }, 'bucket', /string/],
    [{ name: '', preset: 'read-only' }, 'name', /required/],
    [{ name: '   ', preset: 'read-only' }, 'name', /required/],
    [{ name: undefined as unknown as string, preset: 'read-only' }, 'name', /required/],
    [{ name: 'x'.repeat(129), preset: 'read-only' }, 'name', /128/],
    [{ name: 'tab\there', preset: 'read-only' }, 'name', /control characters/],
    [{ name: 'zero\u200bwidth', preset: 'read-only' }, 'name', /control characters/],
    [{ name: 'a', preset: 'read-only', expiresIn: '0d' }, 'expiresIn', /positive/],
    [{ name: 'a', preset: 'read-only', expiresIn: 'forever' }, 'expiresIn', /30d/],
    [{ name: 'a', preset: 'read-only', expiresIn: true as unknown as string }, 'expiresIn', /string like "30d"/],
  ])('rejects %j', (input, field, message) => {
    const error = rejection(input);
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
  });

  it('accepts names up to 128 characters including non-ASCII', () => {
    expect(validateKeyInput({ name: 'é'.repeat(128), preset: 'read-only' }, NOW).name).toBe('é'.repeat(128));
    expect(validateKeyInput({ name: 'équipe données 🚀', preset: 'read-only' }, NOW).name).toBe('équipe données 🚀');
  });
});

describe('bucket names', () => {
  it.each(['abc', 'my-data', 'my.data.v2', 'abc123xyz9', 'a'.repeat(63), '0bucket', 'x-1.y-2'])('accepts %s', (name) => {
    expect(bucketNameProblem(name)).toBeNull();
  });

  it.each([
    'ab',
    'a'.repeat(64),
    'My-Bucket',
    'under_score',
    '-start',
    'end-',
    '.dot',
    'dot.',
    'two..dots',
    'dash-.dot',
    'dot.-dash',
    '10.0.0.1',
    'xn--punycode',
    'bucket-s3alias',
    'has space',
    'slash/name',
    'ünïcode',
  ])('rejects %s', (name) => {
    expect(bucketNameProblem(name)).not.toBeNull();
  });
});

describe('validateAddBucketInput', () => {
  it('normalizes datacenter case, endpoint trailing slash and defaults the upstream bucket', () => {
    expect(validateAddBucketInput({ name: 'abc123xyz9', datacenter: 'eu-ro-1' })).toEqual({
      name: 'abc123xyz9',
      datacenter: 'EU-RO-1',
      endpoint: null,
      region: null,
      upstreamBucket: 'abc123xyz9',
    });
    expect(validateAddBucketInput({ name: 'my-data', endpoint: 'http://127.0.0.1:9000/', region: 'us-east-1', upstreamBucket: 'Legacy_Bucket' })).toEqual({
      name: 'my-data',
      datacenter: null,
      endpoint: 'http://127.0.0.1:9000',
      region: 'us-east-1',
      upstreamBucket: 'Legacy_Bucket',
    });
    expect(validateAddBucketInput({ name: 'plain' })).toMatchObject({ datacenter: null, endpoint: null, region: null, upstreamBucket: 'plain' });
  });

  it.each([
    [{ name: 'Bad_Name' }, /lowercase/],
    [{ name: '' }, /required/],
    [{ name: 'ok-name', datacenter: 'EU-RO-1', endpoint: 'http://x', region: 'r' }, /not both/],
    [{ name: 'ok-name', datacenter: 'EU-RO-1', region: 'us-east-1' }, /not both/],
    [{ name: 'ok-name', endpoint: 'http://x' }, /region/],
    [{ name: 'ok-name', region: 'us-east-1' }, /endpoint/],
    [{ name: 'ok-name', endpoint: 'not a url', region: 'us-east-1' }, /not a URL/],
    [{ name: 'ok-name', endpoint: 'ftp://x', region: 'us-east-1' }, /http/],
    [{ name: 'ok-name', endpoint: 'http://user:pw@x', region: 'us-east-1' }, /credentials/],
    [{ name: 'ok-name', endpoint: 'http://x?a=1', region: 'us-east-1' }, /query/],
    [{ name: 'ok-name', endpoint: 'http://x', region: 'us east' }, /region/],
    [{ name: 'ok-name', datacenter: 'Romania' }, /datacenter id/],
    [{ name: 'ok-name', datacenter: '' }, /must not be empty/],
    [{ name: 'ok-name', upstreamBucket: 'a/b' }, /Upstream bucket/],
    [{ name: 'ok-name', datacenter: 5 as unknown as string }, /string/],
  ])('rejects %j', (input, message) => {
    expect(() => validateAddBucketInput(input)).toThrow(BucketValidationError);
    expect(() => validateAddBucketInput(input)).toThrow(message);
  });
});
