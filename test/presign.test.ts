/**
 * Presigned URLs and POST forms are issued only for what was asked: one object (or one bucket and
 * key prefix) of a real bucket name, never a target that parses as something else.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { issuePresignedPost, issuePresignedUrl, PresignError } from '../src/presign.js';
import { parseAddress } from '../src/s3/address.js';
import { classify } from '../src/s3/classify.js';
import { openStore, type Store } from '../src/store/open.js';
import { TEST_MASTER_KEY_HEX, configFor, makeTempDirs } from './helpers/keygate-cli.js';

const dirs = makeTempDirs();
const stores: Store[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  dirs.cleanup();
});

async function setUp() {
  const config = configFor(dirs.make(), { KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX, KEYGATE_PUBLIC_URL: 'https://s3.example.com' });
  const store = await openStore(config);
  stores.push(store);
  const key = await store.keys.create({ name: 'mine', bucket: 'mine-bucket', preset: 'read-write' });
  return { config, store, key };
}

describe('presigned URL targets', () => {
  it.each([
    ['s3://mine-bucket?x/own.txt', /bucket name/],
    ['s3://mine-bucket?list-type=2/own.txt', /bucket name/],
    ['s3://mine-bucket#frag/own.txt', /bucket name/],
    ['s3://Mine_Bucket/own.txt', /bucket name/],
    ['s3://mine-bucket/', /object address/],
    ['s3://mine-bucket', /object address/],
    ['https://mine-bucket/own.txt', /object address/],
    [`s3://mine-bucket/${'k'.repeat(1025)}`, /longer than 1024 bytes/],
  ])('refuses %s', async (target, message) => {
    const { config, store, key } = await setUp();
    await expect(issuePresignedUrl(store.keys, config, { accessKeyId: key.accessKeyId, target })).rejects.toThrow(PresignError);
    await expect(issuePresignedUrl(store.keys, config, { accessKeyId: key.accessKeyId, target })).rejects.toThrow(message);
  });

  it('issues a URL that performs exactly the operation asked for, on that object', async () => {
    const { config, store, key } = await setUp();
    for (const [method, operation] of [
      ['GET', 'GetObject'],
      ['PUT', 'PutObject'],
      ['HEAD', 'HeadObject'],
    ] as const) {
      // A key that contains "?" and "#" stays one key: they are percent-encoded in the path.
      const { url } = await issuePresignedUrl(store.keys, config, {
        accessKeyId: key.accessKeyId,
        target: 's3://mine-bucket/dir/own.txt?list-type=2#x',
        method,
      });
      const parsed = new URL(url);
      const query = parsed.search
        .slice(1)
        .split('&')
        .filter((pair) => !pair.startsWith('X-Amz-'))
        .join('&');
      const classified = classify(method, parseAddress(`${parsed.pathname}${query ? `?${query}` : ''}`, undefined, null), {});
      expect(classified.name).toBe(operation);
      expect(classified.bucket).toBe('mine-bucket');
      expect(classified.key).toBe('dir/own.txt?list-type=2#x');
    }
  });

  it('refuses POST forms for targets that are not a bucket and key prefix', async () => {
    const { config, store, key } = await setUp();
    for (const target of ['s3://mine-bucket?x/', 's3://UPPER/', 'mine-bucket/']) {
      await expect(issuePresignedPost(store.keys, config, { accessKeyId: key.accessKeyId, target }), target).rejects.toThrow(PresignError);
    }
    const form = await issuePresignedPost(store.keys, config, { accessKeyId: key.accessKeyId, target: 's3://mine-bucket/uploads/' });
    expect(form.url).toBe('https://s3.example.com/mine-bucket');
    expect(form.fields.key).toBe('uploads/${filename}');
  });
});
