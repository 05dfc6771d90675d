import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/open.js';
import { BucketValidationError, type CorsRule } from '../../src/store/store.js';
import { TEST_MASTER_KEY_HEX, configFor, makeTempDirs } from '../helpers/keygate-cli.js';

const dirs = makeTempDirs();
const stores: Store[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  dirs.cleanup();
});

async function freshStore() {
  const config = configFor(dirs.make(), { KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX });
  const store = await openStore(config);
  stores.push(store);
  return { store, config };
}

async function caught(run: () => Promise<unknown>): Promise<BucketValidationError> {
  try {
    await run();
  } catch (error) {
    expect(error).toBeInstanceOf(BucketValidationError);
    return error as BucketValidationError;
  }
  throw new Error('expected a BucketValidationError');
}

describe('bucket registry', () => {
  it('adds RunPod, endpoint and default-upstream buckets', async () => {
    const { store } = await freshStore();
    const now = new Date('2030-02-03T04:05:06.000Z');
    expect(await store.buckets.add({ name: 'abc123xyz9', datacenter: 'eu-ro-1' }, now)).toEqual({
      name: 'abc123xyz9',
      datacenter: 'EU-RO-1',
      endpoint: null,
      region: null,
      upstreamBucket: 'abc123xyz9',
      cors: null,
      createdAt: now,
    });
    await store.buckets.add({ name: 'minio-data', endpoint: 'http://127.0.0.1:9000/', region: 'us-east-1', upstreamBucket: 'real-name' }, now);
    await store.buckets.add({ name: 'default-one' }, now);

    expect(await store.buckets.get('abc123xyz9')).toEqual((await store.buckets.list()).find((b) => b.name === 'abc123xyz9'));
    expect(await store.buckets.get('minio-data')).toMatchObject({
      endpoint: 'http://127.0.0.1:9000',
      region: 'us-east-1',
      upstreamBucket: 'real-name',
      datacenter: null,
    });
    expect(await store.buckets.get('default-one')).toMatchObject({ datacenter: null, endpoint: null, region: null, upstreamBucket: 'default-one' });
    expect((await store.buckets.list()).map((b) => b.name)).toEqual(['abc123xyz9', 'default-one', 'minio-data']);
    expect(await store.buckets.get('missing')).toBeNull();
  });

  it('reports a duplicate as a conflict and keeps the original', async () => {
    const { store } = await freshStore();
    await store.buckets.add({ name: 'my-data', datacenter: 'EU-RO-1' });
    const error = await caught(() => store.buckets.add({ name: 'my-data', datacenter: 'US-KS-2' }));
    expect(error.problem).toBe('conflict');
    expect(error.message).toMatch(/already registered; remove it first/);
    expect((await store.buckets.get('my-data'))?.datacenter).toBe('EU-RO-1');
  });

  it.each([
    [{ name: 'UPPER' }, /lowercase/],
    [{ name: 'x' }, /3 to 63/],
    [{ name: '127.0.0.1' }, /IP address/],
    [{ name: 'ok-name', datacenter: 'EU-RO-1', endpoint: 'http://x', region: 'r' }, /not both/],
    [{ name: 'ok-name', endpoint: 'http://x' }, /region/],
    [{ name: 'ok-name', endpoint: 'file:///etc/passwd', region: 'us-east-1' }, /http/],
  ])('rejects %j as invalid without storing it', async (input, message) => {
    const { store } = await freshStore();
    const error = await caught(() => store.buckets.add(input));
    expect(error.problem).toBe('invalid');
    expect(error.message).toMatch(message);
    expect(await store.buckets.list()).toEqual([]);
  });

  it('removes exactly once and leaves scoped keys in place', async () => {
    const { store } = await freshStore();
    await store.buckets.add({ name: 'my-data', datacenter: 'EU-RO-1' });
    const key = await store.keys.create({ name: 'k', bucket: 'my-data', preset: 'read-only' });
    expect(await store.buckets.remove('my-data')).toBe(true);
    expect(await store.buckets.remove('my-data')).toBe(false);
    expect(await store.buckets.get('my-data')).toBeNull();
    expect(await store.keys.get(key.accessKeyId)).not.toBeNull();
  });

  it('stores, replaces and clears CORS rules, and survives reopening', async () => {
    const { store, config } = await freshStore();
    await store.buckets.add({ name: 'web-assets' });
    const rules: CorsRule[] = [{ allowedOrigins: ['https://app.example.com'], allowedMethods: ['GET', 'PUT'], allowedHeaders: ['*'], maxAgeSeconds: 600 }];
    expect((await store.buckets.setCors('web-assets', rules))?.cors).toEqual(rules);
    await store.close();
    const reopened = await openStore(config);
    stores.push(reopened);
    expect((await reopened.buckets.get('web-assets'))?.cors).toEqual(rules);
    expect((await reopened.buckets.setCors('web-assets', null))?.cors).toBeNull();
    expect((await reopened.buckets.get('web-assets'))?.cors).toBeNull();
    expect(await reopened.buckets.setCors('not-registered', rules)).toBeNull();
  });

  it('rejects malformed CORS rules', async () => {
    const { store } = await freshStore();
    await store.buckets.add({ name: 'web-assets' });
    for (const bad of [
      [{ allowedOrigins: [], allowedMethods: ['GET'] }],
      [{ allowedOrigins: ['*'] }],
      [{ allowedOrigins: ['*'], allowedMethods: ['GET'], maxAgeSeconds: -1 }],
      [{ allowedOrigins: ['*'], allowedMethods: [1] }],
      {},
    ]) {
      await expect(store.buckets.setCors('web-assets', bad as unknown as CorsRule[])).rejects.toThrow(BucketValidationError);
    }
    expect((await store.buckets.get('web-assets'))?.cors).toBeNull();
  });
});
