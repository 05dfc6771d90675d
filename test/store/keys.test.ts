import { copyFileSync, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { SealError, unsealSecret } from '../../src/crypto/seal.js';
import { PERMISSIONS, type Permission } from '../../src/keys/model.js';
import { databasePath } from '../../src/store/db.js';
import { openStore, type Store } from '../../src/store/open.js';
import { KeyValidationError, LAST_USED_WRITE_INTERVAL_MS } from '../../src/store/store.js';
import { TEST_MASTER_KEY_HEX, configFor, makeTempDirs } from '../helpers/keygate-cli.js';

const dirs = makeTempDirs();
const stores: Store[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  dirs.cleanup();
});

async function freshStore(env: Record<string, string> = { KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX }) {
  const dataDir = dirs.make();
  const config = configFor(dataDir, env);
  const store = await openStore(config);
  stores.push(store);
  return { store, config, dataDir };
}

/** Every non-empty subset of the four permissions (15 of them). */
function allPermissionSubsets(): Permission[][] {
  const subsets: Permission[][] = [];
  for (let mask = 1; mask < 1 << PERMISSIONS.length; mask++) {
    subsets.push(PERMISSIONS.filter((_, bit) => mask & (1 << bit)));
  }
  return subsets;
}

describe('creating keys', () => {
  it('covers all 15 workspace permission subsets', async () => {
    const subsets = allPermissionSubsets();
    expect(subsets).toHaveLength(15);
    const { store } = await freshStore();
    for (const permissions of subsets) {
      // Reversed input order: the store normalizes to PERMISSIONS order.
      const created = await store.keys.create({ name: `ws-${permissions.join('-')}`, permissions: [...permissions].reverse() });
      expect(created.kind).toBe('workspace');
      expect(created.bucket).toBeNull();
      expect(created.permissions).toEqual(permissions);
      expect(created.accessKeyId).toMatch(/^rs_ak_live_[0-9a-f]{40}$/);
      expect(created.secretAccessKey).toMatch(/^rs_sk_live_[0-9a-f]{64}$/);
      const stored = await store.keys.findWithSecret(created.accessKeyId);
      expect(stored).toEqual(created);
    }
    expect(await store.keys.list()).toHaveLength(15);
  });

  it.each([
    ['read-only', ['read']],
    ['read-write', ['read', 'write']],
  ])('issues preset %s workspace-wide and per bucket', async (preset, permissions) => {
    const { store } = await freshStore();
    const workspace = await store.keys.create({ name: 'ws', preset });
    expect(workspace).toMatchObject({ kind: 'workspace', bucket: null, permissions });
    const bucketKey = await store.keys.create({ name: 'bk', bucket: 'abc123xyz9', preset });
    expect(bucketKey).toMatchObject({ kind: 'bucket', bucket: 'abc123xyz9', permissions });
    expect(await store.keys.get(bucketKey.accessKeyId)).toMatchObject({ kind: 'bucket', bucket: 'abc123xyz9', permissions });
  });

  it('accepts per-bucket permission lists that equal a preset', async () => {
    const { store } = await freshStore();
    expect((await store.keys.create({ name: 'r', bucket: 'my-data', permissions: ['read'] })).permissions).toEqual(['read']);
    expect((await store.keys.create({ name: 'rw', bucket: 'my-data', permissions: ['write', 'read'] })).permissions).toEqual(['read', 'write']);
  });

  it('uses the configured key tag', async () => {
    const { store } = await freshStore({ KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX, KEYGATE_KEY_TAG: 'test' });
    const key = await store.keys.create({ name: 'x', preset: 'read-only' });
    expect(key.accessKeyId).toMatch(/^rs_ak_test_/);
    expect(key.secretAccessKey).toMatch(/^rs_sk_test_/);
  });

  it('stores expiry and creation time', async () => {
    const { store } = await freshStore();
    const now = new Date('2031-05-01T10:00:00.000Z');
    const key = await store.keys.create({ name: 'temp', preset: 'read-only', expiresIn: '12h' }, now);
    expect(key.createdAt).toEqual(now);
    expect(key.expiresAt).toEqual(new Date('2031-05-01T22:00:00.000Z'));
    expect(await store.keys.get(key.accessKeyId)).toMatchObject({ createdAt: now, expiresAt: key.expiresAt, lastUsedAt: null });
    const forever = await store.keys.create({ name: 'forever', preset: 'read-only', expiresIn: null });
    expect((await store.keys.get(forever.accessKeyId))?.expiresAt).toBeNull();
  });

  it.each([
    [{ name: 'x', bucket: 'my-data', permissions: ['read', 'admin'] }, /admin/],
    [{ name: 'x', bucket: 'my-data', permissions: ['admin'] }, /admin/],
    [{ name: 'x', bucket: 'my-data', permissions: ['read', 'write', 'delete'] }, /cannot delete/],
    [{ name: 'x', bucket: 'my-data', permissions: ['delete'] }, /cannot delete/],
    [{ name: 'x', bucket: 'my-data', permissions: ['write'] }, /read-only or read-write/],
    [{ name: 'x', permissions: ['read', 'execute'] }, /Unknown permission "execute"/],
    [{ name: 'x', preset: 'admin' }, /Unknown preset/],
    [{ name: 'x', bucket: 'Bad_Bucket', preset: 'read-only' }, /Bucket name/],
    [{ name: 'x', bucket: '1.2.3.4', preset: 'read-only' }, /IP address/],
    [{ name: 'x', preset: 'read-only', expiresIn: 'tomorrow' }, /lifetime/],
    [{ name: 'x', preset: 'read-only', expiresIn: '11000d' }, /10 years/],
    [{ name: '', preset: 'read-only' }, /name is required/],
    [{ name: 'x' }, /permissions/],
  ])('rejects %j and stores nothing', async (input, message) => {
    const { store } = await freshStore();
    await expect(store.keys.create(input)).rejects.toThrow(KeyValidationError);
    await expect(store.keys.create(input)).rejects.toThrow(message);
    expect(await store.keys.list()).toEqual([]);
  });
});

describe('reading, listing, deleting', () => {
  it('lists oldest first, filters by bucket, and never exposes secrets', async () => {
    const { store } = await freshStore();
    const a = await store.keys.create({ name: 'a', preset: 'read-only' }, new Date('2030-01-01T00:00:00Z'));
    const b = await store.keys.create({ name: 'b', bucket: 'my-data', preset: 'read-write' }, new Date('2030-01-02T00:00:00Z'));
    const c = await store.keys.create({ name: 'c', bucket: 'other', preset: 'read-only' }, new Date('2029-12-31T00:00:00Z'));
    expect((await store.keys.list()).map((k) => k.accessKeyId)).toEqual([c.accessKeyId, a.accessKeyId, b.accessKeyId]);
    expect((await store.keys.list({ bucket: 'my-data' })).map((k) => k.name)).toEqual(['b']);
    expect(await store.keys.list({ bucket: 'nope' })).toEqual([]);
    for (const key of [...(await store.keys.list()), await store.keys.get(a.accessKeyId)]) {
      expect(key).not.toHaveProperty('secretAccessKey');
      expect(JSON.stringify(key)).not.toContain('rs_sk_');
    }
  });

  it('returns null for unknown ids and deletes exactly once', async () => {
    const { store } = await freshStore();
    const key = await store.keys.create({ name: 'gone', preset: 'read-only' });
    const kept = await store.keys.create({ name: 'kept', preset: 'read-only' });
    expect(await store.keys.get('rs_ak_live_' + '0'.repeat(40))).toBeNull();
    expect(await store.keys.findWithSecret('nope')).toBeNull();
    expect(await store.keys.delete(key.accessKeyId)).toBe(true);
    expect(await store.keys.delete(key.accessKeyId)).toBe(false);
    expect(await store.keys.get(key.accessKeyId)).toBeNull();
    expect(await store.keys.findWithSecret(key.accessKeyId)).toBeNull();
    expect((await store.keys.findWithSecret(kept.accessKeyId))?.secretAccessKey).toBe(kept.secretAccessKey);
  });

  it('keeps keys and secrets across reopening with the same master key', async () => {
    const { store, config } = await freshStore();
    const key = await store.keys.create({ name: 'durable', preset: 'read-write' });
    await store.close();
    const reopened = await openStore(config);
    stores.push(reopened);
    expect((await reopened.keys.findWithSecret(key.accessKeyId))?.secretAccessKey).toBe(key.secretAccessKey);
  });
});

describe('touchLastUsed', () => {
  it('records use and throttles writes to one per interval per key', async () => {
    const { store } = await freshStore();
    const key = await store.keys.create({ name: 'busy', preset: 'read-only' });
    const t0 = new Date('2030-06-01T12:00:00.000Z');
    store.keys.touchLastUsed(key.accessKeyId, t0);
    expect((await store.keys.get(key.accessKeyId))?.lastUsedAt).toEqual(t0);

    store.keys.touchLastUsed(key.accessKeyId, new Date(t0.getTime() + LAST_USED_WRITE_INTERVAL_MS - 1));
    expect((await store.keys.get(key.accessKeyId))?.lastUsedAt).toEqual(t0);

    const later = new Date(t0.getTime() + LAST_USED_WRITE_INTERVAL_MS);
    store.keys.touchLastUsed(key.accessKeyId, later);
    expect((await store.keys.get(key.accessKeyId))?.lastUsedAt).toEqual(later);
  });

  it('throttles per key, not globally, and ignores unknown keys', async () => {
    const { store } = await freshStore();
    const a = await store.keys.create({ name: 'a', preset: 'read-only' });
    const b = await store.keys.create({ name: 'b', preset: 'read-only' });
    const t = new Date('2030-06-01T12:00:00.000Z');
    store.keys.touchLastUsed(a.accessKeyId, t);
    store.keys.touchLastUsed(b.accessKeyId, t);
    expect((await store.keys.get(b.accessKeyId))?.lastUsedAt).toEqual(t);
    expect(() => store.keys.touchLastUsed('rs_ak_live_' + 'f'.repeat(40), t)).not.toThrow();
  });
});

describe('secrets at rest', () => {
  /** Every byte SQLite wrote for this data dir: main file, WAL and shared memory. */
  function databaseBytes(dataDir: string): Buffer {
    const files = readdirSync(dataDir).filter((f) => f.startsWith('keygate.db'));
    expect(files).toContain('keygate.db');
    return Buffer.concat(files.map((f) => readFileSync(path.join(dataDir, f))));
  }

  function expectNoSecretIn(bytes: Buffer, secret: string): void {
    const hex = secret.split('_').pop()!;
    expect(hex).toMatch(/^[0-9a-f]{64}$/);
    expect(bytes.includes(Buffer.from(secret))).toBe(false);
    expect(bytes.includes(Buffer.from(hex))).toBe(false);
    expect(bytes.includes(Buffer.from(hex.toUpperCase()))).toBe(false);
    // Nor any 16-character window of it, nor its raw bytes.
    for (let i = 0; i + 16 <= hex.length; i += 8) expect(bytes.includes(Buffer.from(hex.slice(i, i + 16)))).toBe(false);
    expect(bytes.includes(Buffer.from(hex, 'hex'))).toBe(false);
    expect(bytes.includes(Buffer.from(secret).toString('base64'))).toBe(false);
  }

  it('never writes a secret to the database file or its WAL', async () => {
    const { store, dataDir } = await freshStore({});
    const secrets = await Promise.all(
      Array.from({ length: 5 }, async (_, i) => (await store.keys.create({ name: `k${i}`, preset: 'read-write' })).secretAccessKey),
    );
    // While open the rows live in the WAL; check it, then again after the checkpoint on close.
    expect(existsSync(path.join(dataDir, 'keygate.db-wal'))).toBe(true);
    const whileOpen = databaseBytes(dataDir);
    expect(whileOpen.includes(Buffer.from('rs_ak_live_'))).toBe(true); // the rows really are there
    for (const secret of secrets) expectNoSecretIn(whileOpen, secret);
    const masterKeyHex = readFileSync(path.join(dataDir, 'master.key'), 'utf8').trim();
    expect(whileOpen.includes(Buffer.from(masterKeyHex))).toBe(false);

    await store.close();
    const afterClose = databaseBytes(dataDir);
    for (const secret of secrets) expectNoSecretIn(afterClose, secret);
  });

  it('a copied database without the master key cannot unseal anything', async () => {
    const { store, dataDir } = await freshStore({});
    const key = await store.keys.create({ name: 'stolen', preset: 'read-write' });
    await store.close();

    const thiefDir = dirs.make();
    copyFileSync(databasePath(dataDir), databasePath(thiefDir));
    // No master.key in the thief's dir: keygate refuses to invent one over existing secrets.
    await expect(openStore(configFor(thiefDir))).rejects.toThrow(ConfigError);
    await expect(openStore(configFor(thiefDir))).rejects.toThrow(/master\.key is missing/);
    expect(existsSync(path.join(thiefDir, 'master.key'))).toBe(false);
    // A guessed master key is detected as wrong up front.
    await expect(openStore(configFor(thiefDir, { KEYGATE_MASTER_KEY: 'ee'.repeat(32) }))).rejects.toThrow(/KEYGATE_MASTER_KEY: does not match/);

    // And the raw row really does not open with any other key.
    const raw = new Database(databasePath(thiefDir), { readonly: true });
    const row = raw.prepare('SELECT sealed_secret FROM access_keys WHERE access_key_id = ?').get(key.accessKeyId) as { sealed_secret: string };
    raw.close();
    expect(row.sealed_secret.startsWith('v1:')).toBe(true);
    expect(() => unsealSecret(Buffer.alloc(32, 0xee), key.accessKeyId, row.sealed_secret)).toThrow(SealError);
    const realKey = Buffer.from(readFileSync(path.join(dataDir, 'master.key'), 'utf8').trim(), 'hex');
    expect(unsealSecret(realKey, key.accessKeyId, row.sealed_secret)).toBe(key.secretAccessKey);
  });
});

describe('tampering', () => {
  function rawDatabase(dataDir: string) {
    const raw = new Database(databasePath(dataDir));
    raw.pragma('busy_timeout = 5000');
    return raw;
  }

  it('rejects a sealed secret with a modified byte', async () => {
    const { store, dataDir } = await freshStore();
    const key = await store.keys.create({ name: 'x', preset: 'read-only' });
    const raw = rawDatabase(dataDir);
    const { sealed_secret: sealed } = raw.prepare('SELECT sealed_secret FROM access_keys').get() as { sealed_secret: string };
    const [v, iv, ct, tag] = sealed.split(':') as [string, string, string, string];
    const bytes = Buffer.from(ct, 'base64');
    bytes[0]! ^= 0x80;
    raw.prepare('UPDATE access_keys SET sealed_secret = ?').run([v, iv, bytes.toString('base64'), tag].join(':'));
    raw.close();
    await expect(store.keys.findWithSecret(key.accessKeyId)).rejects.toThrow(SealError);
  });

  it('rejects sealed secrets swapped between rows', async () => {
    const { store, dataDir } = await freshStore();
    const weak = await store.keys.create({ name: 'weak', bucket: 'public-data', preset: 'read-only' });
    const strong = await store.keys.create({ name: 'strong', permissions: ['read', 'write', 'delete', 'admin'] });
    const raw = rawDatabase(dataDir);
    const sealedOf = (id: string) =>
      (raw.prepare('SELECT sealed_secret FROM access_keys WHERE access_key_id = ?').get(id) as { sealed_secret: string }).sealed_secret;
    const [weakSealed, strongSealed] = [sealedOf(weak.accessKeyId), sealedOf(strong.accessKeyId)];
    const update = raw.prepare('UPDATE access_keys SET sealed_secret = ? WHERE access_key_id = ?');
    // Someone who knows the weak key's secret plants its blob on the admin row.
    update.run(weakSealed, strong.accessKeyId);
    update.run(strongSealed, weak.accessKeyId);
    raw.close();
    await expect(store.keys.findWithSecret(strong.accessKeyId)).rejects.toThrow(SealError);
    await expect(store.keys.findWithSecret(weak.accessKeyId)).rejects.toThrow(SealError);
  });

  it('the schema refuses per-bucket rows that could delete or administer', async () => {
    const { store, dataDir } = await freshStore();
    const key = await store.keys.create({ name: 'b', bucket: 'my-data', preset: 'read-only' });
    const raw = rawDatabase(dataDir);
    expect(() => raw.prepare("UPDATE access_keys SET permissions = 'read,write,delete' WHERE access_key_id = ?").run(key.accessKeyId)).toThrow(
      /CHECK constraint failed/,
    );
    expect(() => raw.prepare('UPDATE access_keys SET bucket = NULL WHERE access_key_id = ?').run(key.accessKeyId)).toThrow(/CHECK constraint failed/);
    raw.close();
    expect((await store.keys.get(key.accessKeyId))?.permissions).toEqual(['read']);
  });
});

describe('database setup', () => {
  it('uses WAL, a busy timeout, private files and applies migrations once', async () => {
    const { store, dataDir, config } = await freshStore();
    await store.keys.create({ name: 'x', preset: 'read-only' });
    const raw = new Database(databasePath(dataDir));
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    const tables = (raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((t) => t.name);
    expect(tables).toEqual(expect.arrayContaining(['__drizzle_migrations', 'access_keys', 'buckets', 'meta']));
    const migrationsApplied = () => (raw.prepare('SELECT COUNT(*) AS n FROM __drizzle_migrations').get() as { n: number }).n;
    const before = migrationsApplied();
    expect(before).toBeGreaterThan(0);
    raw.close();
    for (let i = 0; i < 2; i++) await (await openStore(config)).close();
    const again = new Database(databasePath(dataDir));
    expect((again.prepare('SELECT COUNT(*) AS n FROM __drizzle_migrations').get() as { n: number }).n).toBe(before);
    again.close();
  });

  it('creates the data dir and database with private permissions', async () => {
    const dataDir = path.join(dirs.make(), 'fresh');
    const store = await openStore(configFor(dataDir, { KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX }));
    stores.push(store);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(statSync(databasePath(dataDir)).mode & 0o777).toBe(0o600);
  });
});
