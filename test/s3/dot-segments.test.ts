/**
 * Object keys with `.`/`..` path segments: refused for per-bucket access keys (authz) and for
 * buckets on RunPod (planOperation), with a 400 InvalidArgument that says why and what to do;
 * workspace-wide keys on generic S3 keep them literal.
 */
import { describe, expect, it } from 'vitest';
import { assertObjectKeyInScope, authorize } from '../../src/authz.js';
import { loadConfig } from '../../src/config.js';
import type { AccessKey } from '../../src/keys/model.js';
import { parseAddress } from '../../src/s3/address.js';
import { assertListingWithoutDotSegments, assertNoDotSegments, dotSegmentOf, dotSegmentOfPrefix } from '../../src/s3/dot-segments.js';
import { S3Error } from '../../src/errors.js';
import { planOperation, type PlanDeps } from '../../src/s3/plan.js';
import { classify, describeOperation, type S3Operation } from '../../src/s3/classify.js';
import { UpstreamResolver, type BucketRecordLike } from '../../src/upstream/resolver.js';

const DOT_KEYS = ['.', '..', '../other-bucket/x', './x', 'a/./b', 'a/../b', 'a/..', 'a/.', 'a//../b', '../../../etc/passwd', 'a/b/..'];
const LITERAL_KEYS = ['...', '.a', 'a.', '..a', 'a..', '.../x', 'a/.../b', 'a/.b/c', 'a/b./c', 'a//b', '/a', 'a/', 'x/%2E%2E/y', 'a\\..\\b', '. /x', ' ../x'];

function key(kind: 'workspace' | 'bucket'): AccessKey {
  return {
    accessKeyId: 'rs_ak_test_0000000000000000000000000000000000000000',
    name: 't',
    kind,
    bucket: kind === 'bucket' ? 'mine' : null,
    permissions: ['read', 'write', 'delete'],
    expiresAt: null,
    createdAt: new Date(0),
    lastUsedAt: null,
    disabledAt: null,
    rateLimit: null,
    allowedIps: null,
    prefix: null,
  };
}

function operation(method: string, target: string, headers: Record<string, string> = {}): S3Operation {
  return classify(method, parseAddress(target, undefined, null), headers);
}

/** Encodes each segment the way a client puts a key in a path (dots stay dots). */
function path(bucket: string, objectKey: string): string {
  return `/${bucket}/${objectKey.split('/').map(encodeURIComponent).join('/')}`;
}

function s3ErrorOf(fn: () => unknown): S3Error {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(S3Error);
    return error as S3Error;
  }
  throw new Error('expected an S3Error');
}

async function s3ErrorOfAsync(promise: Promise<unknown>): Promise<S3Error> {
  const error = await promise.then(
    () => new Error('expected a failure'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(S3Error);
  return error as S3Error;
}

describe('dotSegmentOf', () => {
  it.each(DOT_KEYS)('finds the dot segment in %j', (objectKey) => {
    expect(dotSegmentOf(objectKey)).not.toBeNull();
  });

  it.each(LITERAL_KEYS)('finds none in %j (dots inside a name, empty segments, backslashes, still-encoded dots)', (objectKey) => {
    expect(dotSegmentOf(objectKey)).toBeNull();
  });

  it('names the segment it found', () => {
    expect(dotSegmentOf('a/./b/../c')).toBe('.');
    expect(dotSegmentOf('a/../b/./c')).toBe('..');
  });
});

describe('assertNoDotSegments', () => {
  it('answers 400 InvalidArgument naming the key, the segment, the reason and the fix', () => {
    const error = s3ErrorOf(() => assertNoDotSegments('photos/../secrets/x', 'runpod-upstream'));
    expect(error.code).toBe('InvalidArgument');
    expect(error.status).toBe(400);
    expect(error.message).toContain('"photos/../secrets/x"');
    expect(error.message).toContain('".." path segment');
    expect(error.message).toContain('RunPod');
    expect(error.message).toContain('without "." or ".." segments');
    expect(error.details).toEqual({ ArgumentName: 'key', ArgumentValue: 'photos/../secrets/x' });
  });

  it('explains the per-bucket reason and keeps the argument name it was given', () => {
    const error = s3ErrorOf(() => assertNoDotSegments('a/./b', 'bucket-scoped-key', 'x-amz-copy-source'));
    expect(error.message).toContain('scoped to one bucket');
    expect(error.details.ArgumentName).toBe('x-amz-copy-source');
  });

  it('accepts no key (bucket-level requests) and keys without dot segments', () => {
    expect(() => assertNoDotSegments(null, 'runpod-upstream')).not.toThrow();
    expect(() => assertNoDotSegments('a/.../b', 'bucket-scoped-key')).not.toThrow();
  });
});

describe('listing prefixes and markers', () => {
  it.each(['../', '..', '../other-bucket/', './', 'a/../', 'a/./b', 'a/..', '/../x'])('finds a dot segment in the prefix %j', (prefix) => {
    expect(dotSegmentOfPrefix(prefix)).not.toBeNull();
  });

  it.each(['', 'a/', '.', 'logs/.', 'logs/.env', '..hidden', 'a/..b', 'a/b./', '...', 'a//'])(
    'lets the prefix %j list (a last "." starts dotfile names)',
    (prefix) => {
      expect(dotSegmentOfPrefix(prefix)).toBeNull();
    },
  );

  it('checks the prefix under both rules and names the parameter', () => {
    for (const rule of ['runpod-upstream', 'bucket-scoped-key'] as const) {
      const error = s3ErrorOf(() =>
        assertListingWithoutDotSegments(
          [
            ['list-type', '2'],
            ['prefix', 'a/../../'],
          ],
          rule,
        ),
      );
      expect(error.code).toBe('InvalidArgument');
      expect(error.details).toEqual({ ArgumentName: 'prefix', ArgumentValue: 'a/../../' });
      expect(error.message).toContain('without "." or ".." segments');
    }
  });

  it('checks where a RunPod listing starts: marker, start-after, key-marker, continuation-token', () => {
    for (const [name, value] of [
      ['marker', 'a/../b'],
      ['start-after', './x'],
      ['key-marker', '..'],
      ['continuation-token', '../../x'],
    ] as const) {
      const error = s3ErrorOf(() =>
        assertListingWithoutDotSegments(
          [
            ['list-type', '2'],
            [name, value],
          ],
          'runpod-upstream',
        ),
      );
      expect(error.details).toEqual({ ArgumentName: name, ArgumentValue: value });
      expect(error.message).toContain('RunPod');
    }
    // Base64 tokens have no dot segments, slashes or not.
    expect(() => assertListingWithoutDotSegments([['continuation-token', 'AbC+/dEf/gh==']], 'runpod-upstream')).not.toThrow();
  });

  it('lets per-bucket keys page past stored keys with dot segments on other upstreams (markers are compared as strings)', () => {
    expect(() =>
      assertListingWithoutDotSegments(
        [
          ['marker', 'a/./b'],
          ['key-marker', 'x/../y'],
          ['start-after', '..'],
        ],
        'bucket-scoped-key',
      ),
    ).not.toThrow();
  });

  it('checks every value of a repeated parameter', () => {
    expect(
      s3ErrorOf(() =>
        assertListingWithoutDotSegments(
          [
            ['prefix', 'a/'],
            ['prefix', '../'],
          ],
          'bucket-scoped-key',
        ),
      ).details.ArgumentValue,
    ).toBe('../');
  });

  it('leaves other parameters alone (delimiter, upload-id-marker, version-id-marker are not key names)', () => {
    expect(() =>
      assertListingWithoutDotSegments(
        [
          ['delimiter', '..'],
          ['upload-id-marker', '..'],
          ['version-id-marker', '../x'],
        ],
        'runpod-upstream',
      ),
    ).not.toThrow();
  });
});

describe('authorize: per-bucket keys cannot name dot segments, on any upstream', () => {
  it.each(DOT_KEYS.filter((k) => k !== '.' && k !== '..'))('refuses %j for object operations of a per-bucket key', (objectKey) => {
    for (const [method, suffix] of [
      ['GET', ''],
      ['PUT', ''],
      ['DELETE', ''],
      ['POST', '?uploads'],
      ['PUT', '?partNumber=1&uploadId=u'],
    ] as const) {
      const error = s3ErrorOf(() => authorize(key('bucket'), operation(method, path('mine', objectKey) + suffix)));
      expect(error.code, `${method} ${suffix}`).toBe('InvalidArgument');
    }
  });

  it('refuses a copy source with a dot segment (x-amz-copy-source, percent-encoded or not)', () => {
    for (const source of ['/mine/a/../b', 'mine/%2E%2E/other-bucket/x', '/mine/./x?versionId=1']) {
      const error = s3ErrorOf(() => authorize(key('bucket'), operation('PUT', '/mine/dest', { 'x-amz-copy-source': source })));
      expect(error.code).toBe('InvalidArgument');
      expect(error.details.ArgumentName).toBe('x-amz-copy-source');
    }
  });

  it('decodes the path before splitting: %2E%2E is a dot segment', () => {
    expect(s3ErrorOf(() => authorize(key('bucket'), operation('GET', '/mine/%2E%2E/other-bucket/x'))).code).toBe('InvalidArgument');
    expect(s3ErrorOf(() => authorize(key('bucket'), operation('GET', '/mine/a/%2e/b'))).code).toBe('InvalidArgument');
  });

  it('still answers AccessDenied first when the per-bucket key touches another bucket', () => {
    expect(s3ErrorOf(() => authorize(key('bucket'), operation('GET', '/theirs/../mine/x'))).code).toBe('AccessDenied');
  });

  it('lets workspace keys through (the upstream decides) and per-bucket keys use keys with dots inside names', () => {
    expect(() => authorize(key('workspace'), operation('GET', '/mine/a/../b'))).not.toThrow();
    expect(() => authorize(key('workspace'), operation('PUT', '/mine/dest', { 'x-amz-copy-source': '/mine/../x' }))).not.toThrow();
    for (const objectKey of LITERAL_KEYS.filter((k) => !k.startsWith('/') && !k.endsWith('/'))) {
      expect(() => authorize(key('bucket'), operation('GET', path('mine', objectKey))), objectKey).not.toThrow();
    }
  });

  it('refuses listings whose prefix steps outside the bucket (decoded, any list operation), and lists dotfiles', () => {
    for (const target of [
      '/mine?list-type=2&prefix=..%2Ftheirs%2F',
      '/mine?prefix=..',
      '/mine?list-type=2&prefix=%2e%2e%2F',
      '/mine?uploads&prefix=.%2Fa%2F',
      '/mine?versions&prefix=a%2F..%2F..%2F',
    ]) {
      expect(s3ErrorOf(() => authorize(key('bucket'), operation('GET', target))).code, target).toBe('InvalidArgument');
    }
    expect(() => authorize(key('bucket'), operation('GET', '/mine?list-type=2&prefix=logs%2F.'))).not.toThrow();
    expect(() => authorize(key('bucket'), operation('GET', '/mine?marker=a%2F.%2Fb'))).not.toThrow();
    expect(() => authorize(key('workspace'), operation('GET', '/mine?list-type=2&prefix=..%2Ftheirs%2F'))).not.toThrow();
    // ListBuckets' prefix filters bucket names, not keys.
    expect(() => authorize(key('bucket'), operation('GET', '/?prefix=..'))).not.toThrow();
  });

  it('assertObjectKeyInScope applies the same rule to single keys (DeleteObjects entries)', () => {
    expect(s3ErrorOf(() => assertObjectKeyInScope(key('bucket'), '../x', 'Key')).details.ArgumentName).toBe('Key');
    expect(() => assertObjectKeyInScope(key('workspace'), '../x', 'Key')).not.toThrow();
    expect(() => assertObjectKeyInScope(key('bucket'), 'a/b', 'Key')).not.toThrow();
  });
});

describe('planOperation: RunPod buckets refuse dot segments for every key', () => {
  const records: BucketRecordLike[] = [
    { name: 'volume', datacenter: 'EU-RO-1', endpoint: null, region: null, upstreamBucket: 'vol123', createdAt: new Date(0) },
    { name: 'generic', datacenter: null, endpoint: 'http://127.0.0.1:9', region: 'us-east-1', upstreamBucket: 'generic', createdAt: new Date(0) },
  ];
  const deps: PlanDeps = {
    resolver: new UpstreamResolver({
      config: loadConfig({ KEYGATE_DATA_DIR: '/tmp/keygate-dot-segments-test', RUNPOD_S3_ACCESS_KEY: 'user_runpod', RUNPOD_S3_SECRET_KEY: 'rps_secret' }),
      registry: { findForRouting: (name) => records.find((r) => r.name === name) ?? null, listForRouting: () => records },
      discovery: null,
      forwarder: { forward: () => Promise.reject(new Error('planning never forwards')) },
    }),
  };

  it.each(['../other-volume/x', 'a/./b', 'a/../../etc/passwd', '..'])('refuses %j on a RunPod bucket', async (objectKey) => {
    for (const [method, suffix] of [
      ['GET', ''],
      ['HEAD', ''],
      ['PUT', ''],
      ['DELETE', ''],
      ['POST', '?uploadId=u'],
      ['GET', '?uploadId=u'],
    ] as const) {
      const error = await s3ErrorOfAsync(planOperation(deps, operation(method, path('volume', objectKey) + suffix), method === 'PUT' ? 1 : null));
      expect(error.code, `${method} ${suffix}`).toBe('InvalidArgument');
      expect(error.message).toContain('RunPod');
    }
  });

  it('refuses the key of a form upload (POST Object, after ${filename} substitution) the same way', async () => {
    const form = describeOperation('PostObject', { bucket: 'volume', key: 'uploads/../escape.txt', query: [] }, {});
    expect((await s3ErrorOfAsync(planOperation(deps, form, null))).code).toBe('InvalidArgument');
  });

  it('refuses listing prefixes and markers with dot segments on a RunPod bucket, not on generic S3', async () => {
    for (const target of [
      '/volume?list-type=2&prefix=..%2F',
      '/volume?list-type=2&prefix=a%2F..%2F..%2F',
      '/volume?list-type=2&start-after=..%2Fx',
      '/volume?uploads&key-marker=..',
      '/volume?marker=%2E%2E%2Fx',
      '/volume?list-type=2&continuation-token=..%2Fx',
    ]) {
      const error = await s3ErrorOfAsync(planOperation(deps, operation('GET', target), null));
      expect(error.code, target).toBe('InvalidArgument');
      expect(error.message).toContain('RunPod');
    }
    await expect(planOperation(deps, operation('GET', '/generic?list-type=2&prefix=..%2F'), null)).resolves.toMatchObject({ target: { kind: 's3' } });
    await expect(planOperation(deps, operation('GET', '/volume?list-type=2&prefix=.'), null)).resolves.toMatchObject({ target: { kind: 'runpod' } });
  });

  it('keeps keys literal on generic S3 buckets and accepts ordinary keys on RunPod', async () => {
    await expect(planOperation(deps, operation('GET', '/generic/a/../b'), null)).resolves.toMatchObject({ target: { kind: 's3' } });
    await expect(planOperation(deps, operation('GET', '/volume/a/.../b'), null)).resolves.toMatchObject({ target: { kind: 'runpod' } });
    await expect(planOperation(deps, operation('GET', '/volume?list-type=2'), null)).resolves.toMatchObject({ target: { kind: 'runpod' } });
  });
});
