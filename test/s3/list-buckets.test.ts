import { describe, expect, it } from 'vitest';
import { S3Error } from '../../src/errors.js';
import { bucketListPage } from '../../src/s3/list-buckets.js';

const buckets = ['logs', 'alpha', 'models-b', 'models-a', 'zeta'].map((name) => ({ name, createdAt: null }));
const page = (query: Array<[string, string]>) => bucketListPage(buckets, query, 'auto');
const names = (query: Array<[string, string]>) => page(query).buckets.map((bucket) => bucket.name);

describe('ListBuckets pages', () => {
  it('lists every bucket in name order in one page when the client does not paginate', () => {
    expect(page([])).toEqual({
      buckets: ['alpha', 'logs', 'models-a', 'models-b', 'zeta'].map((name) => ({ name, createdAt: null })),
      continuationToken: null,
      prefix: null,
    });
  });

  it('pages with max-buckets and continuation-token until no token comes back', () => {
    const seen: string[] = [];
    let token: string | null = null;
    let pages = 0;
    do {
      const result = page([['max-buckets', '2'], ...(token === null ? [] : ([['continuation-token', token]] as Array<[string, string]>))]);
      seen.push(...result.buckets.map((bucket) => bucket.name));
      token = result.continuationToken;
      pages++;
    } while (token !== null);
    expect(seen).toEqual(['alpha', 'logs', 'models-a', 'models-b', 'zeta']);
    expect(pages).toBe(3);
  });

  it('filters by prefix (echoed) and by bucket-region (every bucket is in the gateway region)', () => {
    expect(names([['prefix', 'models-']])).toEqual(['models-a', 'models-b']);
    expect(page([['prefix', 'models-']]).prefix).toBe('models-');
    expect(names([['bucket-region', 'auto']])).toHaveLength(5);
    expect(names([['bucket-region', 'eu-ro-1']])).toEqual([]);
    expect(
      names([
        ['prefix', 'models-'],
        ['max-buckets', '1'],
      ]),
    ).toEqual(['models-a']);
  });

  it.each([['0'], ['10001'], ['-1'], ['two'], ['1e3']])('refuses max-buckets=%s with InvalidArgument', (value) => {
    expect(() => page([['max-buckets', value]])).toThrow(S3Error);
    try {
      page([['max-buckets', value]]);
    } catch (error) {
      expect((error as S3Error).code).toBe('InvalidArgument');
    }
  });

  it('refuses a continuation token the gateway cannot have made', () => {
    // Not base64url, too long, not canonical base64url ("AB" decodes to what "AA" encodes), not UTF-8.
    for (const token of ['!!!', 'A'.repeat(401), 'AB', Buffer.from([0xff, 0xfe]).toString('base64url')]) {
      expect(() => page([['continuation-token', token]]), token).toThrow(/continuation-token/);
    }
  });

  it('pages past any bucket name an upstream lists (b+c, spaces, non-ASCII)', () => {
    const odd = ['a', 'b+c', 'd e', 'ü-bucket', 'z'].map((name) => ({ name, createdAt: null }));
    const seen: string[] = [];
    let token: string | null = null;
    do {
      const result = bucketListPage(
        odd,
        [['max-buckets', '1'], ...(token === null ? [] : ([['continuation-token', token]] as Array<[string, string]>))],
        'auto',
      );
      seen.push(...result.buckets.map((bucket) => bucket.name));
      token = result.continuationToken;
    } while (token !== null);
    expect(seen).toEqual(['a', 'b+c', 'd e', 'z', 'ü-bucket']);
  });
});
