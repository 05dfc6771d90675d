import { describe, expect, it } from 'vitest';
import { assertObjectKeyInScope, authorize, authorizeBucketAction, canSeeBucket } from '../../src/authz.js';
import { PERMISSIONS, PRESETS, type AccessKey, type Permission } from '../../src/keys/model.js';
import { classify } from '../../src/s3/classify.js';
import { OPERATIONS, type OperationName } from '../../src/s3/operations.js';
import { parseAddress } from '../../src/s3/address.js';

function key(kind: 'workspace' | 'bucket', permissions: Permission[], extra: Partial<AccessKey> = {}): AccessKey {
  return {
    accessKeyId: 'rs_ak_test_0000000000000000000000000000000000000000',
    name: 't',
    kind,
    bucket: kind === 'bucket' ? 'mine' : null,
    permissions,
    expiresAt: null,
    createdAt: new Date(0),
    lastUsedAt: null,
    disabledAt: null,
    rateLimit: null,
    allowedIps: null,
    prefix: null,
    ...extra,
  };
}

/** One representative request per operation, against bucket `b` (or the service). */
function requestFor(name: OperationName, bucket: string) {
  const requests: Record<OperationName, [string, string, Record<string, string>?]> = {
    ListBuckets: ['GET', '/'],
    HeadBucket: ['HEAD', `/${bucket}`],
    GetBucketLocation: ['GET', `/${bucket}?location`],
    ListObjects: ['GET', `/${bucket}`],
    ListObjectsV2: ['GET', `/${bucket}?list-type=2`],
    ListObjectVersions: ['GET', `/${bucket}?versions`],
    ListMultipartUploads: ['GET', `/${bucket}?uploads`],
    CreateBucket: ['PUT', `/${bucket}`],
    DeleteBucket: ['DELETE', `/${bucket}`],
    GetBucketConfiguration: ['GET', `/${bucket}?policy`],
    PutBucketConfiguration: ['PUT', `/${bucket}?cors`],
    DeleteBucketConfiguration: ['DELETE', `/${bucket}?lifecycle`],
    DeleteObjects: ['POST', `/${bucket}?delete`],
    PostObject: ['POST', `/${bucket}`, { 'content-type': 'multipart/form-data; boundary=z' }],
    GetObject: ['GET', `/${bucket}/k`],
    HeadObject: ['HEAD', `/${bucket}/k`],
    GetObjectAttributes: ['GET', `/${bucket}/k?attributes`],
    GetObjectTagging: ['GET', `/${bucket}/k?tagging`],
    GetObjectAcl: ['GET', `/${bucket}/k?acl`],
    GetObjectRetention: ['GET', `/${bucket}/k?retention`],
    GetObjectLegalHold: ['GET', `/${bucket}/k?legal-hold`],
    PutObjectRetention: ['PUT', `/${bucket}/k?retention`],
    PutObjectLegalHold: ['PUT', `/${bucket}/k?legal-hold`],
    GetObjectLockConfiguration: ['GET', `/${bucket}?object-lock`],
    PutObjectLockConfiguration: ['PUT', `/${bucket}?object-lock`],
    ListParts: ['GET', `/${bucket}/k?uploadId=u`],
    PutObject: ['PUT', `/${bucket}/k`],
    CopyObject: ['PUT', `/${bucket}/k`, { 'x-amz-copy-source': `/${bucket}/src` }],
    PutObjectTagging: ['PUT', `/${bucket}/k?tagging`],
    PutObjectAcl: ['PUT', `/${bucket}/k?acl`],
    CreateMultipartUpload: ['POST', `/${bucket}/k?uploads`],
    UploadPart: ['PUT', `/${bucket}/k?partNumber=1&uploadId=u`],
    UploadPartCopy: ['PUT', `/${bucket}/k?partNumber=1&uploadId=u`, { 'x-amz-copy-source': `/${bucket}/src` }],
    CompleteMultipartUpload: ['POST', `/${bucket}/k?uploadId=u`],
    AbortMultipartUpload: ['DELETE', `/${bucket}/k?uploadId=u`],
    DeleteObjectTagging: ['DELETE', `/${bucket}/k?tagging`],
    DeleteObject: ['DELETE', `/${bucket}/k`],
  };
  const [method, target, headers = {}] = requests[name];
  return classify(method, parseAddress(target, undefined, null), headers);
}

function allowed(k: AccessKey, name: OperationName, bucket: string): boolean {
  try {
    authorize(k, requestFor(name, bucket));
    return true;
  } catch (error) {
    expect(error).toMatchObject({ code: 'AccessDenied', status: 403 });
    return false;
  }
}

const subsets = (): Permission[][] => Array.from({ length: 15 }, (_, i) => PERMISSIONS.filter((_, bit) => (i + 1) & (1 << bit)));

describe('authorization matrix', () => {
  const names = Object.keys(OPERATIONS) as OperationName[];

  it.each(subsets().map((flags) => [flags.join(',')]))('workspace key with %s', (flags) => {
    const k = key('workspace', flags.split(',') as Permission[]);
    for (const name of names) {
      const copies = name === 'CopyObject' || name === 'UploadPartCopy';
      const expected = k.permissions.includes(OPERATIONS[name].permission) && (!copies || k.permissions.includes('read'));
      expect(allowed(k, name, 'any-bucket'), `${name}`).toBe(expected);
    }
  });

  it.each(Object.entries(PRESETS))('per-bucket %s key: own bucket by flag, every other bucket denied', (_preset, flags) => {
    const k = key('bucket', [...flags]);
    for (const name of names) {
      const spec = OPERATIONS[name];
      const copies = name === 'CopyObject' || name === 'UploadPartCopy';
      const needs: Permission[] = copies ? [spec.permission, 'read'] : [spec.permission];
      const own = needs.every((flag) => (flags as readonly Permission[]).includes(flag));
      expect(allowed(k, name, 'mine'), `${name} on own bucket`).toBe(own);
      if (spec.level !== 'service') expect(allowed(k, name, 'other'), `${name} on other bucket`).toBe(false);
    }
  });

  it('read-write per-bucket keys can never delete or administer', () => {
    const k = key('bucket', [...PRESETS['read-write']]);
    for (const name of ['DeleteObject', 'DeleteObjects', 'CreateBucket', 'DeleteBucket', 'PutBucketConfiguration'] as const) {
      expect(allowed(k, name, 'mine')).toBe(false);
    }
  });

  it('copy needs read on the source bucket as well as write on the destination', () => {
    const k = key('bucket', ['read', 'write']);
    const copyFromOther = classify('PUT', parseAddress('/mine/k', undefined, null), { 'x-amz-copy-source': '/other/secret' });
    expect(() => authorize(k, copyFromOther)).toThrowError(expect.objectContaining({ code: 'AccessDenied' }) as Error);
    const partCopy = classify('PUT', parseAddress('/mine/k?partNumber=1&uploadId=u', undefined, null), { 'x-amz-copy-source': 'other/x' });
    expect(() => authorize(k, partCopy)).toThrowError(expect.objectContaining({ code: 'AccessDenied' }) as Error);
    const writeOnly = key('workspace', ['write']);
    const copy = classify('PUT', parseAddress('/aaa/k', undefined, null), { 'x-amz-copy-source': '/bbb/src' });
    expect(() => authorize(writeOnly, copy)).toThrowError(expect.objectContaining({ code: 'AccessDenied' }) as Error);
    expect(() => authorize(key('workspace', ['read', 'write']), copy)).not.toThrow();
  });

  it('denies expired keys for every operation', () => {
    const k = key('workspace', [...PERMISSIONS], { expiresAt: new Date(Date.now() - 1000) });
    for (const name of names) expect(allowed(k, name, 'bbb')).toBe(false);
    const fresh = key('workspace', ['read'], { expiresAt: new Date(Date.now() + 60_000) });
    expect(allowed(fresh, 'GetObject', 'bbb')).toBe(true);
  });

  it('denies disabled keys for every operation, saying they are disabled, and the same key enabled again works', () => {
    for (const kind of ['workspace', 'bucket'] as const) {
      const k = key(kind, kind === 'workspace' ? [...PERMISSIONS] : ['read', 'write'], { disabledAt: new Date(0) });
      for (const name of names) {
        expect(allowed(k, name, 'mine'), name).toBe(false);
        try {
          authorize(k, requestFor(name, 'mine'));
        } catch (error) {
          expect((error as Error).message).toContain('is disabled');
        }
      }
      expect(() => authorizeBucketAction(k, 'mine', 'read')).toThrow(/is disabled/);
      expect(allowed({ ...k, disabledAt: null }, 'GetObject', 'mine')).toBe(true);
    }
  });

  it('uses one indistinguishable message for buckets outside a per-bucket key', () => {
    const k = key('bucket', ['read']);
    const messages = ['exists', 'does-not-exist'].map((bucket) => {
      try {
        authorize(k, requestFor('GetObject', bucket));
      } catch (error) {
        return (error as Error).message;
      }
      return 'allowed';
    });
    expect(messages[0]).toBe('Access Denied');
    expect(messages[1]).toBe(messages[0]);
  });

  it('authorizes each extra bucket action and filters bucket listings by scope', () => {
    const k = key('bucket', ['read', 'write']);
    expect(() => authorizeBucketAction(k, 'mine', 'delete')).toThrow();
    expect(() => authorizeBucketAction(k, 'mine', 'write')).not.toThrow();
    expect(canSeeBucket(k, 'mine')).toBe(true);
    expect(canSeeBucket(k, 'other')).toBe(false);
    expect(canSeeBucket(key('workspace', ['write']), 'x')).toBe(false);
    expect(canSeeBucket(key('workspace', ['read']), 'x')).toBe(true);
  });
});

describe('keys limited to a prefix', () => {
  const prefixed = (kind: 'workspace' | 'bucket' = 'workspace') =>
    key(kind, kind === 'workspace' ? [...PERMISSIONS] : ['read', 'write'], { prefix: 'team-a/' });
  const op = (method: string, target: string, headers: Record<string, string> = {}) => {
    const [path, query] = target.split('?');
    return classify(method, parseAddress(query === undefined ? path! : `${path}?${query}`, undefined, null), headers);
  };
  const denied = (k: AccessKey, operation: ReturnType<typeof op>) => {
    try {
      authorize(k, operation);
      return 'allowed';
    } catch (error) {
      return (error as { code: string }).code;
    }
  };

  it('touches object keys under its prefix only, by every object operation', () => {
    for (const kind of ['workspace', 'bucket'] as const) {
      const k = prefixed(kind);
      for (const [method, target, headers] of [
        ['GET', '/mine/team-a/report.csv'],
        ['HEAD', '/mine/team-a/x'],
        ['PUT', '/mine/team-a/new.txt'],
        ['POST', '/mine/team-a/big?uploads'],
        ['PUT', '/mine/team-a/big?partNumber=1&uploadId=u'],
        ['POST', '/mine/team-a/big?uploadId=u'],
        ['GET', '/mine/team-a/big?uploadId=u'],
        ['PUT', '/mine/team-a/copy', { 'x-amz-copy-source': '/mine/team-a/src' }],
      ] as Array<[string, string, Record<string, string>?]>) {
        expect(denied(k, op(method, target, headers)), `${kind} ${method} ${target}`).toBe('allowed');
      }
      for (const [method, target, headers, code] of [
        ['GET', '/mine/team-b/report.csv', undefined, 'AccessDenied'],
        ['GET', '/mine/team-a-evil/x', undefined, 'AccessDenied'],
        ['GET', '/mine/team-a', undefined, 'AccessDenied'],
        ['PUT', '/mine/other.txt', undefined, 'AccessDenied'],
        ['GET', '/mine/team-a/../team-b/x', undefined, 'InvalidArgument'],
        ['GET', '/mine/team-a/%2E%2E/team-b/x', undefined, 'InvalidArgument'],
        ['GET', '/mine/team-a%2F..%2Fteam-b%2Fx', undefined, 'InvalidArgument'],
        ['PUT', '/mine/team-a/./x', undefined, 'InvalidArgument'],
        ['PUT', '/mine/team-a/copy', { 'x-amz-copy-source': '/mine/team-b/secret' }, 'AccessDenied'],
        ['PUT', '/mine/team-a/copy', { 'x-amz-copy-source': '/mine/team-a/../team-b/secret' }, 'InvalidArgument'],
        ['PUT', '/mine/team-a/big?partNumber=1&uploadId=u', { 'x-amz-copy-source': '/mine/team-b/secret' }, 'AccessDenied'],
        ['POST', '/mine/team-b/big?uploads', undefined, 'AccessDenied'],
      ] as Array<[string, string, Record<string, string> | undefined, string]>) {
        expect(denied(k, op(method, target, headers)), `${kind} ${method} ${target}`).toBe(code);
      }
    }
  });

  it('lists only with a prefix inside its own, by every listing', () => {
    const k = prefixed();
    for (const listing of ['/mine', '/mine?list-type=2', '/mine?versions', '/mine?uploads']) {
      const sep = listing.includes('?') ? '&' : '?';
      expect(denied(k, op('GET', listing)), listing).toBe('AccessDenied');
      expect(denied(k, op('GET', `${listing}${sep}prefix=team-b/`)), listing).toBe('AccessDenied');
      expect(denied(k, op('GET', `${listing}${sep}prefix=team-`)), listing).toBe('AccessDenied');
      expect(denied(k, op('GET', `${listing}${sep}prefix=`)), listing).toBe('AccessDenied');
      expect(denied(k, op('GET', `${listing}${sep}prefix=team-a/`)), listing).toBe('allowed');
      expect(denied(k, op('GET', `${listing}${sep}prefix=team-a/2026/&delimiter=/`)), listing).toBe('allowed');
      expect(denied(k, op('GET', `${listing}${sep}prefix=team-a/../team-b/`)), listing).toBe('InvalidArgument');
    }
  });

  it('is refused every bucket-level operation but HeadBucket, GetBucketLocation and DeleteObjects (whose entries are checked one by one)', () => {
    const k = prefixed();
    expect(denied(k, op('HEAD', '/mine'))).toBe('allowed');
    expect(denied(k, op('GET', '/mine?location'))).toBe('allowed');
    expect(denied(k, op('POST', '/mine?delete'))).toBe('allowed');
    expect(denied(k, op('GET', '/'))).toBe('allowed');
    for (const [method, target] of [
      ['PUT', '/mine'],
      ['DELETE', '/mine'],
      ['GET', '/mine?policy'],
      ['PUT', '/mine?cors'],
      ['DELETE', '/mine?lifecycle'],
      ['GET', '/mine?object-lock'],
      ['PUT', '/mine?object-lock'],
    ]) {
      expect(denied(k, op(method!, target!)), `${method} ${target}`).toBe('AccessDenied');
    }
    expect(() => assertObjectKeyInScope(k, 'team-b/x', 'Key')).toThrowError(expect.objectContaining({ code: 'AccessDenied' }) as Error);
    expect(() => assertObjectKeyInScope(k, 'team-a/x', 'Key')).not.toThrow();
  });
});
