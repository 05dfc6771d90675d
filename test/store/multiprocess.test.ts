/**
 * The CLI and a running server share one data dir. Changes made by one process must be visible to
 * the other on its very next lookup, without reopening anything.
 */
import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/db.js';
import { TEST_MASTER_KEY_HEX, configFor, makeTempDirs, runCliProcess } from '../helpers/keygate-cli.js';

const dirs = makeTempDirs();
const stores: Store[] = [];
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  dirs.cleanup();
});

function sharedDataDir() {
  const dataDir = dirs.make();
  const env = { KEYGATE_DATA_DIR: dataDir, KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX };
  const store = openStore(configFor(dataDir, { KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX }));
  stores.push(store);
  return { dataDir, env, store };
}

describe('two processes on one data dir', () => {
  it('a key deleted by the CLI is gone for this store on the very next lookup', async () => {
    const { env, store } = sharedDataDir();
    const key = store.keys.create({ name: 'to-revoke', preset: 'read-write' });
    const bystander = store.keys.create({ name: 'bystander', preset: 'read-only' });
    // Warm up: the key is found (and any statement caching has happened) before the revocation.
    expect(store.keys.findWithSecret(key.accessKeyId)?.secretAccessKey).toBe(key.secretAccessKey);
    store.keys.touchLastUsed(key.accessKeyId);

    const result = await runCliProcess(['keys', 'delete', key.accessKeyId], env);
    expect(result.code, result.stderr).toBe(0);

    expect(store.keys.findWithSecret(key.accessKeyId)).toBeNull();
    expect(store.keys.get(key.accessKeyId)).toBeNull();
    expect(store.keys.findWithSecret(bystander.accessKeyId)?.secretAccessKey).toBe(bystander.secretAccessKey);
  });

  it('a key created by the CLI is usable by this store immediately, secret included', async () => {
    const { env, store } = sharedDataDir();
    expect(store.keys.list()).toEqual([]);
    const result = await runCliProcess(['keys', 'create', '--name', 'from-cli', '--bucket', 'my-data', '--preset', 'read-only', '--json'], env);
    expect(result.code, result.stderr).toBe(0);
    const created = JSON.parse(result.stdout);
    const found = store.keys.findWithSecret(created.accessKeyId);
    expect(found).toMatchObject({ name: 'from-cli', bucket: 'my-data', permissions: ['read'], secretAccessKey: created.secretAccessKey });
  });

  it('the CLI sees keys this store created and buckets it registered, while it stays open', async () => {
    const { env, store } = sharedDataDir();
    const key = store.keys.create({ name: 'from-server', preset: 'read-only' });
    store.buckets.add({ name: 'abc123xyz9', datacenter: 'EU-RO-1' });
    const keys = await runCliProcess(['keys', 'list', '--json'], env);
    expect(JSON.parse(keys.stdout).map((k: { accessKeyId: string }) => k.accessKeyId)).toEqual([key.accessKeyId]);
    const buckets = await runCliProcess(['buckets', 'list', '--json'], env);
    expect(JSON.parse(buckets.stdout).map((b: { name: string }) => b.name)).toEqual(['abc123xyz9']);
    const removed = await runCliProcess(['buckets', 'remove', 'abc123xyz9'], env);
    expect(removed.code).toBe(0);
    expect(store.buckets.get('abc123xyz9')).toBeNull();
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

    const store = openStore(configFor(dataDir));
    stores.push(store);
    for (const result of results) {
      const created = JSON.parse(result.stdout);
      expect(store.keys.findWithSecret(created.accessKeyId)?.secretAccessKey).toBe(created.secretAccessKey);
    }
  });
});
