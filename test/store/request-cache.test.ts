/**
 * The request path reuses key rows (with their unsealed secrets) and bucket rows while the database
 * is unchanged. These tests change the database every way a deployment can — this store, a second
 * connection (another server or CLI in the same process), a raw SQLite connection, a CLI process —
 * and check that the request path sees the change on the very next request (after
 * store.beginRequest()), and that lookups made for management (findWithSecret, buckets.get) see it
 * at once.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SealError } from '../../src/crypto/seal.js';
import { databasePath } from '../../src/store/db.js';
import { openStore, type Store } from '../../src/store/open.js';
import { ChangeDetector, FreshnessCache } from '../../src/store/change-detector.js';
import { TEST_MASTER_KEY_HEX, configFor, makeTempDirs, runCliProcess } from '../helpers/keygate-cli.js';

const dirs = makeTempDirs();
const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  dirs.cleanup();
});

function sharedDataDir() {
  const dataDir = dirs.make();
  const env = { KEYGATE_DATA_DIR: dataDir, KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX };
  const open = async (): Promise<Store> => {
    const store = await openStore(configFor(dataDir, { KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX }));
    closers.push(() => store.close());
    return store;
  };
  const raw = () => {
    const sqlite = new Database(databasePath(dataDir));
    sqlite.pragma('busy_timeout = 5000');
    closers.push(() => sqlite.close());
    return sqlite;
  };
  return { dataDir, env, open, raw };
}

/** What the listener does as an S3 request starts: from then on, request-path lookups see every earlier commit. */
async function nextRequest(store: Store): Promise<void> {
  await store.beginRequest();
}

describe('key lookups for verification', () => {
  it('a key deleted through another connection fails on the next request after many cached lookups', async () => {
    const { open } = sharedDataDir();
    const server = await open();
    const admin = await open();
    const key = await server.keys.create({ name: 'k', preset: 'read-write' });
    for (let i = 0; i < 100; i++) {
      await nextRequest(server);
      expect(server.keys.findForVerification(key.accessKeyId)?.secretAccessKey).toBe(key.secretAccessKey);
    }
    expect(await admin.keys.delete(key.accessKeyId)).toBe(true);
    // The request already under way keeps the view it started with; the next one sees the deletion.
    expect(server.keys.findForVerification(key.accessKeyId)?.secretAccessKey).toBe(key.secretAccessKey);
    await nextRequest(server);
    expect(server.keys.findForVerification(key.accessKeyId)).toBeNull();
    expect(await server.keys.findWithSecret(key.accessKeyId)).toBeNull();
  });

  it('a key deleted through another connection is gone at once for a lookup made now', async () => {
    const { open } = sharedDataDir();
    const server = await open();
    const admin = await open();
    const key = await server.keys.create({ name: 'k', preset: 'read-write' });
    for (let i = 0; i < 10; i++) {
      await nextRequest(server);
      expect(server.keys.findForVerification(key.accessKeyId)).not.toBeNull();
      expect((await server.keys.findWithSecret(key.accessKeyId))?.secretAccessKey).toBe(key.secretAccessKey);
    }
    expect(await admin.keys.delete(key.accessKeyId)).toBe(true);
    // No beginRequest(): a management lookup reads the database as it is.
    expect(await server.keys.findWithSecret(key.accessKeyId)).toBeNull();
    expect(await server.keys.get(key.accessKeyId)).toBeNull();
  });

  it('a key deleted through the same store fails on the next lookup, even within a request', async () => {
    const { open } = sharedDataDir();
    const store = await open();
    const key = await store.keys.create({ name: 'k', preset: 'read-write' });
    await nextRequest(store);
    expect(store.keys.findForVerification(key.accessKeyId)).not.toBeNull();
    expect(await store.keys.findWithSecret(key.accessKeyId)).not.toBeNull();
    await store.keys.delete(key.accessKeyId);
    expect(store.keys.findForVerification(key.accessKeyId)).toBeNull();
    expect(await store.keys.findWithSecret(key.accessKeyId)).toBeNull();
  });

  it('a row changed behind the store (tampered secret, narrowed permissions) is read again, not served from memory', async () => {
    const { open, raw } = sharedDataDir();
    const store = await open();
    const key = await store.keys.create({ name: 'k', preset: 'read-write' });
    const other = await store.keys.create({ name: 'other', preset: 'read-only' });
    await nextRequest(store);
    expect(store.keys.findForVerification(key.accessKeyId)?.key.permissions).toEqual(['read', 'write']);
    expect((await store.keys.findWithSecret(key.accessKeyId))?.permissions).toEqual(['read', 'write']);
    const sqlite = raw();
    sqlite.prepare("UPDATE access_keys SET permissions = 'read' WHERE access_key_id = ?").run(key.accessKeyId);
    expect(store.keys.findForVerification(key.accessKeyId)?.key.permissions).toEqual(['read', 'write']); // the request under way
    await nextRequest(store);
    expect(store.keys.findForVerification(key.accessKeyId)?.key.permissions).toEqual(['read']);
    expect((await store.keys.findWithSecret(key.accessKeyId))?.permissions).toEqual(['read']);
    // Another row's sealed secret copied over this one must fail to open, as without any cache.
    sqlite
      .prepare('UPDATE access_keys SET sealed_secret = (SELECT sealed_secret FROM access_keys WHERE access_key_id = ?) WHERE access_key_id = ?')
      .run(other.accessKeyId, key.accessKeyId);
    await expect(store.keys.findWithSecret(key.accessKeyId)).rejects.toThrow(SealError);
    await nextRequest(store);
    expect(() => store.keys.findForVerification(key.accessKeyId)).toThrow(SealError);
  });

  it('a key deleted by a CLI process fails on the next request although it was looked up just before', async () => {
    const { env, open } = sharedDataDir();
    const store = await open();
    const key = await store.keys.create({ name: 'to-revoke', preset: 'read-write' });
    for (let i = 0; i < 10; i++) {
      await nextRequest(store);
      expect(store.keys.findForVerification(key.accessKeyId)).not.toBeNull();
    }
    const result = await runCliProcess(['keys', 'delete', key.accessKeyId], env);
    expect(result.code, result.stderr).toBe(0);
    expect(store.keys.findForVerification(key.accessKeyId)).not.toBeNull(); // the request under way
    await nextRequest(store);
    expect(store.keys.findForVerification(key.accessKeyId)).toBeNull();
    expect(await store.keys.findWithSecret(key.accessKeyId)).toBeNull();
  });

  it('recording use keeps lastUsedAt current in what lookups return', async () => {
    const { open } = sharedDataDir();
    const store = await open();
    const key = await store.keys.create({ name: 'k', preset: 'read-only' });
    await nextRequest(store);
    expect(store.keys.findForVerification(key.accessKeyId)?.key.lastUsedAt).toBeNull();
    expect((await store.keys.findWithSecret(key.accessKeyId))?.lastUsedAt).toBeNull();
    const at = new Date('2030-01-02T03:04:05.000Z');
    store.keys.touchLastUsed(key.accessKeyId, at);
    expect(store.keys.findForVerification(key.accessKeyId)?.key.lastUsedAt).toEqual(at);
    expect((await store.keys.findWithSecret(key.accessKeyId))?.lastUsedAt).toEqual(at);
    expect((await store.keys.get(key.accessKeyId))?.lastUsedAt).toEqual(at);
  });

  it('returns a fresh object each time, so a caller changing it cannot affect the next request', async () => {
    const { open } = sharedDataDir();
    const store = await open();
    const key = await store.keys.create({ name: 'k', preset: 'read-only' });
    const first = (await store.keys.findWithSecret(key.accessKeyId))!;
    first.permissions.push('admin');
    (first as { bucket: string | null }).bucket = 'elsewhere';
    expect(await store.keys.findWithSecret(key.accessKeyId)).toMatchObject({ permissions: ['read'], bucket: null });
    // The request path's lookup shares one object between requests: it cannot be changed at all.
    await nextRequest(store);
    const shared = store.keys.findForVerification(key.accessKeyId)!;
    expect(() => shared.key.permissions.push('admin')).toThrow(TypeError);
    expect(() => ((shared.key as { bucket: string | null }).bucket = 'elsewhere')).toThrow(TypeError);
    expect(store.keys.findForVerification(key.accessKeyId)!.key).toMatchObject({ permissions: ['read'], bucket: null });
  });
});

describe('bucket lookups for routing', () => {
  it('a bucket removed or re-pointed through another connection is seen on the next request', async () => {
    const { open } = sharedDataDir();
    const server = await open();
    const admin = await open();
    await server.buckets.add({ name: 'photos', endpoint: 'http://127.0.0.1:9', region: 'us-east-1' });
    await nextRequest(server);
    expect(server.buckets.findForRouting('photos')?.endpoint).toBe('http://127.0.0.1:9');
    expect((await server.buckets.get('photos'))?.endpoint).toBe('http://127.0.0.1:9');
    await admin.buckets.remove('photos');
    expect(server.buckets.findForRouting('photos')?.endpoint).toBe('http://127.0.0.1:9'); // the request under way
    await nextRequest(server);
    expect(server.buckets.findForRouting('photos')).toBeNull();
    await admin.buckets.add({ name: 'photos', endpoint: 'http://127.0.0.1:10', region: 'us-east-1' });
    // A lookup made now sees the new registration at once.
    expect((await server.buckets.get('photos'))?.endpoint).toBe('http://127.0.0.1:10');
    await nextRequest(server);
    expect(server.buckets.findForRouting('photos')?.endpoint).toBe('http://127.0.0.1:10');
  });

  it('a bucket removed through another connection is gone at once for a lookup made now', async () => {
    const { open } = sharedDataDir();
    const server = await open();
    const admin = await open();
    await server.buckets.add({ name: 'photos', endpoint: 'http://127.0.0.1:9', region: 'us-east-1' });
    await nextRequest(server);
    expect(server.buckets.findForRouting('photos')?.endpoint).toBe('http://127.0.0.1:9');
    expect((await server.buckets.get('photos'))?.endpoint).toBe('http://127.0.0.1:9');
    await admin.buckets.remove('photos');
    expect(await server.buckets.get('photos')).toBeNull();
  });

  it('CORS rules set through the same store are returned by the next lookup, even within a request', async () => {
    const { open } = sharedDataDir();
    const store = await open();
    await store.buckets.add({ name: 'photos' });
    await nextRequest(store);
    expect(store.buckets.findForRouting('photos')?.cors).toBeNull();
    expect((await store.buckets.get('photos'))?.cors).toBeNull();
    const rules = [{ allowedOrigins: ['https://app.example'], allowedMethods: ['PUT'] }];
    expect(await store.buckets.setCors('photos', rules)).not.toBeNull();
    expect(store.buckets.findForRouting('photos')?.cors).toMatchObject(rules);
    expect((await store.buckets.get('photos'))?.cors).toMatchObject(rules);
  });

  it('a bucket removed by a CLI process is gone on the next request', async () => {
    const { env, open } = sharedDataDir();
    const store = await open();
    await store.buckets.add({ name: 'abc123xyz9', datacenter: 'EU-RO-1' });
    for (let i = 0; i < 10; i++) {
      await nextRequest(store);
      expect(store.buckets.findForRouting('abc123xyz9')).not.toBeNull();
    }
    const removed = await runCliProcess(['buckets', 'remove', 'abc123xyz9'], env);
    expect(removed.code, removed.stderr).toBe(0);
    expect(store.buckets.findForRouting('abc123xyz9')).not.toBeNull(); // the request under way
    await nextRequest(store);
    expect(store.buckets.findForRouting('abc123xyz9')).toBeNull();
    expect(await store.buckets.get('abc123xyz9')).toBeNull();
  });
});

describe('FreshnessCache', () => {
  function cacheOn(maxEntries: number) {
    const sqlite = new Database(':memory:');
    closers.push(() => sqlite.close());
    sqlite.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)');
    const changes = ChangeDetector.of(sqlite);
    return { sqlite, changes, cache: new FreshnessCache<string>(changes, maxEntries) };
  }

  it('loads once while nothing changes, again after a noted local write, and never caches misses', () => {
    const { changes, cache } = cacheOn(10);
    let loads = 0;
    const load = () => {
      loads++;
      return 'value';
    };
    expect(cache.get('a', load)).toBe('value');
    expect(cache.get('a', load)).toBe('value');
    expect(loads).toBe(1);
    changes.noteLocalWrite();
    expect(cache.get('a', load)).toBe('value');
    expect(loads).toBe(2);
    let misses = 0;
    expect(cache.get('missing', () => (misses++, null))).toBeNull();
    expect(cache.get('missing', () => (misses++, null))).toBeNull();
    expect(misses).toBe(2);
  });

  it("with freshness 'request', shares one data_version read among the requests of a turn and sees every commit made before each started", async () => {
    const file = `${dirs.make()}/freshness.db`;
    const sqlite = new Database(file);
    const other = new Database(file);
    closers.push(
      () => sqlite.close(),
      () => other.close(),
    );
    sqlite.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)');
    const changes = ChangeDetector.of(sqlite);
    const cache = new FreshnessCache<string>(changes, 10);
    const commitByOtherConnection = () => other.prepare("INSERT OR REPLACE INTO t VALUES ('k', ?)").run(String(Math.random()));
    let loads = 0;
    const load = () => {
      loads++;
      return 'value';
    };
    await changes.beginRequest();
    cache.get('a', load, 'request');
    expect(loads).toBe(1);
    // A commit by this connection's writer is seen at once, whatever the freshness (noted local write).
    changes.noteLocalWrite();
    cache.get('a', load, 'request');
    expect(loads).toBe(2);
    // Another connection commits: the same request keeps the read made for it...
    commitByOtherConnection();
    cache.get('a', load, 'request');
    expect(loads).toBe(2);
    // ...and the next request's read sees the commit.
    await changes.beginRequest();
    cache.get('a', load, 'request');
    expect(loads).toBe(3);
    cache.get('a', load, 'request');
    expect(loads).toBe(3);

    // Requests starting in the same turn share one read, made after the last of them started: a
    // commit between two of their starts is seen by both.
    const first = changes.beginRequest();
    commitByOtherConnection();
    const second = changes.beginRequest();
    expect(second).toBe(first);
    await Promise.all([first, second]);
    cache.get('a', load, 'request');
    expect(loads).toBe(4);
    // A request starting after that read gets a read of its own.
    const third = changes.beginRequest();
    expect(third).not.toBe(first);
    commitByOtherConnection();
    await third;
    cache.get('a', load, 'request');
    expect(loads).toBe(5);

    // 'now' reads every time.
    commitByOtherConnection();
    cache.get('a', load);
    expect(loads).toBe(6);
  });

  it('rejects every request waiting on a data_version read that fails', async () => {
    const file = `${dirs.make()}/closed.db`;
    const sqlite = new Database(file);
    const changes = ChangeDetector.of(sqlite);
    const waiting = [changes.beginRequest(), changes.beginRequest()];
    sqlite.close();
    for (const request of waiting) await expect(request).rejects.toThrow(/database connection is not open/);
  });

  it('stays within its bound, dropping the oldest entry first', () => {
    const { cache } = cacheOn(3);
    for (const key of ['a', 'b', 'c', 'd']) cache.get(key, () => key.toUpperCase());
    expect(cache.size).toBe(3);
    expect(cache.peek('a')).toBeUndefined();
    expect(cache.peek('d')).toBe('D');
  });
});
