/**
 * The CLI and a running server share one data dir. Changes made by one process must be visible to
 * the other without reopening anything: at once to management lookups, and to the request path
 * from the next request on (store.beginRequest()).
 */
import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/open.js';
import { TEST_MASTER_KEY_HEX, configFor, makeTempDirs, runCliProcess } from '../helpers/keygate-cli.js';

const dirs = makeTempDirs();
const stores: Store[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  dirs.cleanup();
});

async function sharedDataDir() {
  const dataDir = dirs.make();
  const env = { KEYGATE_DATA_DIR: dataDir, KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX };
  const store = await openStore(configFor(dataDir, { KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX }));
  stores.push(store);
  return { dataDir, env, store };
}

/** What the listener does as an S3 request starts: from then on, request-path lookups see every earlier commit. */
async function nextRequest(store: Store): Promise<void> {
  await store.beginRequest();
}

describe('two processes on one data dir', () => {
  it('a key deleted by the CLI is gone for this store on the very next lookup', async () => {
    const { env, store } = await sharedDataDir();
    const key = await store.keys.create({ name: 'to-revoke', preset: 'read-write' });
    const bystander = await store.keys.create({ name: 'bystander', preset: 'read-only' });
    // Warm up: the key is found (and any statement caching has happened) before the revocation.
    await nextRequest(store);
    expect(store.keys.findForVerification(key.accessKeyId)?.secretAccessKey).toBe(key.secretAccessKey);
    expect((await store.keys.findWithSecret(key.accessKeyId))?.secretAccessKey).toBe(key.secretAccessKey);
    store.keys.touchLastUsed(key.accessKeyId);

    const result = await runCliProcess(['keys', 'delete', key.accessKeyId], env);
    expect(result.code, result.stderr).toBe(0);

    // The request path keeps the view of the request under way until the next one begins...
    expect(store.keys.findForVerification(key.accessKeyId)?.secretAccessKey).toBe(key.secretAccessKey);
    await nextRequest(store);
    expect(store.keys.findForVerification(key.accessKeyId)).toBeNull();
    expect(store.keys.findForVerification(bystander.accessKeyId)?.secretAccessKey).toBe(bystander.secretAccessKey);
    // ...and management lookups read the database as it is.
    expect(await store.keys.findWithSecret(key.accessKeyId)).toBeNull();
    expect(await store.keys.get(key.accessKeyId)).toBeNull();
    expect((await store.keys.findWithSecret(bystander.accessKeyId))?.secretAccessKey).toBe(bystander.secretAccessKey);
  });

  it('a key deleted by the CLI is gone at once for a lookup made now, without a new request', async () => {
    const { env, store } = await sharedDataDir();
    const key = await store.keys.create({ name: 'to-revoke', preset: 'read-write' });
    await nextRequest(store);
    expect(store.keys.findForVerification(key.accessKeyId)?.secretAccessKey).toBe(key.secretAccessKey);
    expect((await store.keys.findWithSecret(key.accessKeyId))?.secretAccessKey).toBe(key.secretAccessKey);

    const result = await runCliProcess(['keys', 'delete', key.accessKeyId], env);
    expect(result.code, result.stderr).toBe(0);

    expect(await store.keys.findWithSecret(key.accessKeyId)).toBeNull();
    expect(await store.keys.get(key.accessKeyId)).toBeNull();
  });

  it('a key created by the CLI is usable by this store immediately, secret included', async () => {
    const { env, store } = await sharedDataDir();
    expect(await store.keys.list()).toEqual([]);
    const result = await runCliProcess(['keys', 'create', '--name', 'from-cli', '--bucket', 'my-data', '--preset', 'read-only', '--json'], env);
    expect(result.code, result.stderr).toBe(0);
    const created = JSON.parse(result.stdout);
    const found = await store.keys.findWithSecret(created.accessKeyId);
    expect(found).toMatchObject({ name: 'from-cli', bucket: 'my-data', permissions: ['read'], secretAccessKey: created.secretAccessKey });
    await nextRequest(store);
    expect(store.keys.findForVerification(created.accessKeyId)).toMatchObject({
      key: { name: 'from-cli', bucket: 'my-data', permissions: ['read'] },
      secretAccessKey: created.secretAccessKey,
    });
  });

  it('the CLI sees keys this store created and buckets it registered, while it stays open', async () => {
    const { env, store } = await sharedDataDir();
    const key = await store.keys.create({ name: 'from-server', preset: 'read-only' });
    await store.buckets.add({ name: 'abc123xyz9', datacenter: 'EU-RO-1' });
    const keys = await runCliProcess(['keys', 'list', '--json'], env);
    expect(JSON.parse(keys.stdout).map((k: { accessKeyId: string }) => k.accessKeyId)).toEqual([key.accessKeyId]);
    const buckets = await runCliProcess(['buckets', 'list', '--json'], env);
    expect(JSON.parse(buckets.stdout).map((b: { name: string }) => b.name)).toEqual(['abc123xyz9']);
    await nextRequest(store);
    expect(store.buckets.findForRouting('abc123xyz9')).not.toBeNull();
    const removed = await runCliProcess(['buckets', 'remove', 'abc123xyz9'], env);
    expect(removed.code).toBe(0);
    expect(store.buckets.findForRouting('abc123xyz9')).not.toBeNull(); // the request under way
    expect(await store.buckets.get('abc123xyz9')).toBeNull();
    await nextRequest(store);
    expect(store.buckets.findForRouting('abc123xyz9')).toBeNull();
  });

  it('concurrent first runs on a fresh data dir agree on one database and one master key', async () => {
    const dataDir = dirs.make();
    // No KEYGATE_MASTER_KEY: every process races to generate master.key and to migrate.
    const env = { KEYGATE_DATA_DIR: dataDir };
    const results = await Promise.all(
      Array.from({ length: 4 }, (_, i) => runCliProcess(['keys', 'create', '--name', `racer-${i}`, '--preset', 'read-only', '--json'], env)),
    );
    for (const result of results) expect(result.code, result.stderr).toBe(0);
    const generatedNotes = results.filter((r) => r.stderr.includes('generated a new master key')).length;
    expect(generatedNotes).toBe(1);
    expect(readdirSync(dataDir).filter((f) => f.startsWith('master.key'))).toEqual(['master.key']);

    const store = await openStore(configFor(dataDir));
    stores.push(store);
    for (const result of results) {
      const created = JSON.parse(result.stdout);
      expect((await store.keys.findWithSecret(created.accessKeyId))?.secretAccessKey).toBe(created.secretAccessKey);
    }
  });
});
