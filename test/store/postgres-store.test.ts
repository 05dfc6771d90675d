/**
 * The PostgreSQL key store (src/store/postgres/) against a real, throwaway PostgreSQL server
 * (test/helpers/postgres.ts): the same contract as the SQLite store (src/store/store.ts), proven by
 * running the same assertions against both; freshness across instances (two openStore calls on one
 * database are two gateway instances) and against raw SQL, with no sleeps; LISTEN/NOTIFY as a hint
 * only; last_used_at writes that are no change; a server that stops and comes back; start-up
 * failures; and coalesced counter reads.
 *
 * One server for the file; every test that changes data gets its own database (createDatabase).
 * Tests in a file run one after another, so the restart test may stop the shared server.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { SealError } from '../../src/crypto/seal.js';
import { S3Error } from '../../src/errors.js';
import type { AccessKey } from '../../src/keys/model.js';
import { migrationsFolder } from '../../src/store/db.js';
import { openStore } from '../../src/store/open.js';
import {
  BucketValidationError,
  isStoreUnavailable,
  LAST_USED_WRITE_INTERVAL_MS,
  StoreUnavailableError,
  type CorsRule,
  type Store,
} from '../../src/store/store.js';
import { TEST_MASTER_KEY_HEX, configFor, freePort, makeTempDirs } from '../helpers/keygate-cli.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';

const OTHER_MASTER_KEY_HEX = '4b'.repeat(32);

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.remove();
});

const dirs = makeTempDirs();
const opened: Store[] = [];
afterEach(async () => {
  // The restart test stops the server; whatever follows needs it back.
  await server.start();
  await Promise.all(opened.splice(0).map((store) => store.close().catch(() => undefined)));
  dirs.cleanup();
});

let databases = 0;
/** A database of its own on the shared server, for one test. */
function freshDatabase(): Promise<string> {
  databases += 1;
  return server.createDatabase(`store_${databases}`);
}

async function openPostgres(url: string, env: Record<string, string> = { KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX }, dataDir = dirs.make()): Promise<Store> {
  const store = await openStore(configFor(dataDir, { KEYGATE_DATABASE_URL: url, ...env }));
  opened.push(store);
  return store;
}

async function openSqlite(): Promise<Store> {
  const store = await openStore(configFor(dirs.make(), { KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX }));
  opened.push(store);
  return store;
}

/** Runs `use` on a connection of its own, as psql or another tool would. */
async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function rawSql<R extends pg.QueryResultRow = pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<R[]> {
  return withClient(url, async (client) => (await client.query<R>(text, values)).rows);
}

/** The change signal row (keygate_generation) as it is now. */
async function changeSignal(url: string): Promise<Record<string, unknown>> {
  const [row] = await rawSql(url, 'SELECT * FROM keygate_generation WHERE id = 1');
  return row!;
}

/** The statement by which the change trigger moves the signal (taken from the installed trigger function, without its NOTIFY). */
async function signalStatement(url: string): Promise<string> {
  const [fn] = await rawSql<{ src: string }>(url, "SELECT prosrc AS src FROM pg_proc WHERE proname = 'keygate_signal_change'");
  const update = /UPDATE\s+"?keygate_generation"?[^;]*;/i.exec(fn!.src);
  if (update === null) throw new Error(`no UPDATE of keygate_generation in keygate_signal_change():\n${fn!.src}`);
  return update[0];
}

/** How many statements in the server log since `offset` (log_statement = 'all') match `pattern`. */
function loggedStatements(offset: number, pattern: RegExp): number {
  return readFileSync(server.logFile, 'utf8')
    .slice(offset)
    .split('\n')
    .filter((line) => /LOG:\s+(statement|execute [^:]*):/.test(line) && pattern.test(line)).length;
}

async function logStatementsOf(url: string): Promise<void> {
  await rawSql(url, `ALTER DATABASE ${pg.escapeIdentifier(new URL(url).pathname.slice(1))} SET log_statement = 'all'`);
}

/** Polls `check` until it returns true (no fixed sleeps: returns as soon as it holds). */
async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The LISTEN connections of keygate instances on this database that are established and idle (listening). */
async function listenerPids(url: string): Promise<number[]> {
  const rows = await rawSql<{ pid: number }>(
    url,
    `SELECT pid FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = 'keygate' AND state = 'idle' AND query LIKE 'LISTEN%'
      ORDER BY pid`,
  );
  return rows.map((row) => row.pid);
}

/** Sessions of keygate instances on this database waiting for a lock, whose query matches `pattern`. */
async function lockWaiters(url: string, pattern: string): Promise<number> {
  const rows = await rawSql<{ n: string }>(
    url,
    `SELECT count(*) AS n FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = 'keygate' AND wait_event_type = 'Lock' AND query ILIKE $1`,
    [pattern],
  );
  return Number(rows[0]!.n);
}

async function expectServiceUnavailable(promise: Promise<void> | null): Promise<S3Error> {
  expect(promise).not.toBeNull();
  const error = await promise!.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(S3Error);
  expect((error as S3Error).code).toBe('ServiceUnavailable');
  expect((error as S3Error).status).toBe(503);
  return error as S3Error;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection, but the promise resolved');
    },
    (error: unknown) => error,
  );
}

/** Resolves to 'timeout' if `promise` has not settled within `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A TCP proxy to the server that can be frozen: every connection, open or new, then stays open but
 * carries nothing either way (a network black hole, not a refused or reset connection).
 */
async function startFreezableProxy(targetPort: number): Promise<{ port: number; freeze(): void; close(): void }> {
  const sockets = new Set<net.Socket>();
  const pairs: [net.Socket, net.Socket][] = [];
  let frozen = false;
  const proxy = net.createServer((client) => {
    sockets.add(client);
    client.on('error', () => undefined);
    if (frozen) {
      client.pause();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('error', () => undefined);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    pairs.push([client, upstream]);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    port: (proxy.address() as AddressInfo).port,
    freeze() {
      frozen = true;
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    close() {
      proxy.close();
      for (const socket of sockets) socket.destroy();
    },
  };
}

const CORS_RULES: CorsRule[] = [
  {
    id: 'browser-uploads',
    allowedOrigins: ['https://app.example.com', 'http://localhost:3000'],
    allowedMethods: ['GET', 'PUT', 'POST'],
    allowedHeaders: ['*'],
    exposeHeaders: ['ETag', 'x-amz-request-id'],
    maxAgeSeconds: 3000,
  },
  { allowedOrigins: ['*'], allowedMethods: ['HEAD'] },
];

// ---------------------------------------------------------------------------------------------
// 1. The contract, the same for both backends
// ---------------------------------------------------------------------------------------------

const backends: [name: 'sqlite' | 'postgres', open: () => Promise<Store>][] = [
  ['sqlite', () => openSqlite()],
  ['postgres', async () => openPostgres(await freshDatabase())],
];

describe.each(backends)('the key store contract (%s)', (kind, open) => {
  it('reports its kind, location and listener', async () => {
    const store = await open();
    expect(store.kind).toBe(kind);
    expect(store.location).not.toBe('');
    if (kind === 'sqlite') expect(store.listening()).toBeNull();
    else await eventually('the change listener to be up', () => store.listening() === true);
  });

  it('round-trips every field of a key exactly: dates to the millisecond, rate limit, networks, prefix, names', async () => {
    const store = await open();
    const now = new Date('2031-02-03T04:05:06.789Z');
    const created = await store.keys.create(
      {
        name: '  ünïcödé ✓ uploader  ',
        permissions: ['delete', 'read', 'admin', 'read'],
        expiresIn: '30d',
        rateLimit: '2.5/s',
        rateBurst: 7,
        allowedIps: '10.0.0.0/8, 2001:db8::/32',
        prefix: 'team-a/',
      },
      now,
    );
    expect(created).toMatchObject({
      name: 'ünïcödé ✓ uploader',
      kind: 'workspace',
      bucket: null,
      permissions: ['read', 'delete', 'admin'],
      rateLimit: { requestsPerSecond: 2.5, burst: 7 },
      prefix: 'team-a/',
      lastUsedAt: null,
      disabledAt: null,
    });
    expect(created.createdAt.getTime()).toBe(now.getTime());
    expect(created.expiresAt!.getTime()).toBe(now.getTime() + 30 * 86_400_000);

    const { secretAccessKey, ...withoutSecret } = created;
    const stored = await store.keys.get(created.accessKeyId);
    expect(stored).toEqual(withoutSecret);
    expect(stored!.createdAt).toBeInstanceOf(Date);
    expect(stored!.createdAt.getTime()).toBe(now.getTime());
    expect(stored!.expiresAt!.getTime()).toBe(created.expiresAt!.getTime());
    expect(await store.keys.findWithSecret(created.accessKeyId)).toEqual(created);
    expect(await store.keys.list()).toEqual([withoutSecret]);

    // The request path holds the same key, frozen, with the same secret.
    await store.beginRequest();
    const verification = store.keys.findForVerification(created.accessKeyId);
    expect(verification).not.toBeNull();
    expect(verification!.secretAccessKey).toBe(secretAccessKey);
    expect(verification!.key).toEqual(withoutSecret);
    expect(Object.isFrozen(verification!.key)).toBe(true);
    expect(Object.isFrozen(verification!.key.permissions)).toBe(true);
    expect(store.keys.findForVerification('rs_ak_live_' + '0'.repeat(40))).toBeNull();
  });

  it('keeps millisecond edge values (.000, .999) and far-future expiries exact', async () => {
    const store = await open();
    for (const iso of ['2000-01-01T00:00:00.000Z', '2024-02-29T23:59:59.999Z', '1999-12-31T23:59:59.001Z']) {
      const now = new Date(iso);
      const key = await store.keys.create({ name: iso, preset: 'read-only', expiresIn: 10 * 365 * 86_400 }, now);
      const stored = await store.keys.get(key.accessKeyId);
      expect(stored!.createdAt.toISOString()).toBe(iso);
      expect(stored!.expiresAt!.getTime()).toBe(now.getTime() + 10 * 365 * 86_400_000);
    }
  });

  it('lists oldest first (ties by access key id), filters by bucket, and counts', async () => {
    const store = await open();
    const t = new Date('2030-01-01T00:00:00.000Z');
    const later = new Date(t.getTime() + 1);
    const a = await store.keys.create({ name: 'b1-late', bucket: 'data-1', preset: 'read-write' }, later);
    const b = await store.keys.create({ name: 'ws', preset: 'read-only' }, t);
    const c = await store.keys.create({ name: 'b1-early', bucket: 'data-1', preset: 'read-only' }, t);
    const d = await store.keys.create({ name: 'b2', bucket: 'data-2', preset: 'read-only' }, later);
    const byAge = (x: AccessKey, y: AccessKey) => x.createdAt.getTime() - y.createdAt.getTime() || (x.accessKeyId < y.accessKeyId ? -1 : 1);
    const ids = (keys: AccessKey[]) => keys.map((key) => key.accessKeyId);

    expect(ids(await store.keys.list())).toEqual(ids([a, b, c, d].sort(byAge)));
    expect(ids(await store.keys.list({ bucket: 'data-1' }))).toEqual(ids([a, c].sort(byAge)));
    expect(ids(await store.keys.list({ bucket: 'data-2' }))).toEqual([d.accessKeyId]);
    expect(await store.keys.list({ bucket: 'nothing-here' })).toEqual([]);
    expect(await store.keys.count()).toBe(4);
    for (const key of await store.keys.list()) expect(key).not.toHaveProperty('secretAccessKey');
  });

  it('disables (keeping the first disabledAt), enables, and answers null for unknown keys', async () => {
    const store = await open();
    const key = await store.keys.create({ name: 'k', preset: 'read-only' }, new Date('2030-01-01T00:00:00.000Z'));
    const first = new Date('2030-01-02T03:04:05.678Z');
    const second = new Date('2030-01-03T00:00:00.001Z');

    expect((await store.keys.setDisabled(key.accessKeyId, true, first))!.disabledAt!.getTime()).toBe(first.getTime());
    expect((await store.keys.setDisabled(key.accessKeyId, true, second))!.disabledAt!.getTime()).toBe(first.getTime());
    expect((await store.keys.get(key.accessKeyId))!.disabledAt!.getTime()).toBe(first.getTime());
    await store.beginRequest();
    expect(store.keys.findForVerification(key.accessKeyId)!.key.disabledAt!.getTime()).toBe(first.getTime());

    const enabled = await store.keys.setDisabled(key.accessKeyId, false, second);
    expect(enabled!.disabledAt).toBeNull();
    const { secretAccessKey: _secret, ...rest } = key;
    expect(enabled).toEqual(rest);
    expect(await store.keys.setDisabled(key.accessKeyId, false)).toEqual(rest);
    await store.beginRequest();
    expect(store.keys.findForVerification(key.accessKeyId)!.key.disabledAt).toBeNull();

    expect(await store.keys.setDisabled('rs_ak_live_' + 'f'.repeat(40), true)).toBeNull();
  });

  it('deletes once, after which no read finds the key', async () => {
    const store = await open();
    const key = await store.keys.create({ name: 'k', preset: 'read-write' });
    const kept = await store.keys.create({ name: 'kept', preset: 'read-write' });
    await store.beginRequest();
    expect(store.keys.findForVerification(key.accessKeyId)).not.toBeNull();

    expect(await store.keys.delete(key.accessKeyId)).toBe(true);
    expect(await store.keys.delete(key.accessKeyId)).toBe(false);
    expect(await store.keys.get(key.accessKeyId)).toBeNull();
    expect(await store.keys.findWithSecret(key.accessKeyId)).toBeNull();
    expect(await store.keys.count()).toBe(1);
    await store.beginRequest();
    expect(store.keys.findForVerification(key.accessKeyId)).toBeNull();
    expect(store.keys.findForVerification(kept.accessKeyId)!.secretAccessKey).toBe(kept.secretAccessKey);
  });

  it('records lastUsedAt, at most once per LAST_USED_WRITE_INTERVAL_MS per key', async () => {
    const store = await open();
    const key = await store.keys.create({ name: 'k', preset: 'read-only' });
    const t = new Date('2030-06-01T00:00:00.123Z');
    const lastUsed = async () => (await store.keys.get(key.accessKeyId))!.lastUsedAt?.getTime() ?? null;

    store.keys.touchLastUsed(key.accessKeyId, t);
    await eventually('the first use to be recorded', async () => (await lastUsed()) === t.getTime());
    store.keys.touchLastUsed(key.accessKeyId, new Date(t.getTime() + LAST_USED_WRITE_INTERVAL_MS - 1));
    store.keys.touchLastUsed(key.accessKeyId, new Date(t.getTime() + LAST_USED_WRITE_INTERVAL_MS));
    await eventually('the use a full interval later to be recorded', async () => (await lastUsed()) === t.getTime() + LAST_USED_WRITE_INTERVAL_MS);
    // Unknown keys are no error (a statistic never fails a request).
    expect(() => store.keys.touchLastUsed('rs_ak_live_' + '1'.repeat(40))).not.toThrow();
  });

  it('registers buckets, refuses a second registration as a conflict, lists by name, gets and removes', async () => {
    const store = await open();
    const t = new Date('2030-05-06T07:08:09.010Z');
    const runpod = await store.buckets.add({ name: 'data-1', datacenter: 'eu-ro-1' }, t);
    expect(runpod).toEqual({ name: 'data-1', datacenter: 'EU-RO-1', endpoint: null, region: null, upstreamBucket: 'data-1', cors: null, createdAt: t });
    const custom = await store.buckets.add(
      { name: 'a.custom', endpoint: 'https://s3.example.com/', region: 'us-east-1', upstreamBucket: 'Legacy_Bucket' },
      new Date(t.getTime() + 1),
    );
    expect(custom).toMatchObject({ endpoint: 'https://s3.example.com', region: 'us-east-1', upstreamBucket: 'Legacy_Bucket', datacenter: null });
    const plain = await store.buckets.add({ name: 'zeta-0' }, new Date(t.getTime() + 2));

    const conflict = await rejection(store.buckets.add({ name: 'data-1', datacenter: 'US-KS-2' }));
    expect(conflict).toBeInstanceOf(BucketValidationError);
    expect((conflict as BucketValidationError).problem).toBe('conflict');
    expect((conflict as Error).message).toMatch(/already registered/);
    const invalid = await rejection(store.buckets.add({ name: 'Not_Valid' }));
    expect(invalid).toBeInstanceOf(BucketValidationError);
    expect((invalid as BucketValidationError).problem).toBe('invalid');

    expect(await store.buckets.list()).toEqual([custom, runpod, plain]);
    expect(await store.buckets.get('data-1')).toEqual(runpod);
    expect((await store.buckets.get('data-1'))!.createdAt.getTime()).toBe(t.getTime());
    expect(await store.buckets.get('missing')).toBeNull();
    await store.beginRequest();
    expect(store.buckets.findForRouting('data-1')).toEqual(runpod);
    expect(store.buckets.listForRouting()).toEqual([custom, runpod, plain]);

    expect(await store.buckets.remove('data-1')).toBe(true);
    expect(await store.buckets.remove('data-1')).toBe(false);
    expect(await store.buckets.get('data-1')).toBeNull();
    await store.beginRequest();
    expect(store.buckets.findForRouting('data-1')).toBeNull();
    expect(store.buckets.listForRouting().map((bucket) => bucket.name)).toEqual(['a.custom', 'zeta-0']);
  });

  it('replaces, clears and validates CORS rules, which round-trip field for field', async () => {
    const store = await open();
    const added = await store.buckets.add({ name: 'web-assets' }, new Date('2030-01-01T00:00:00.000Z'));
    const updated = await store.buckets.setCors('web-assets', CORS_RULES);
    expect(updated).toEqual({ ...added, cors: CORS_RULES });
    expect((await store.buckets.get('web-assets'))!.cors).toEqual(CORS_RULES);
    await store.beginRequest();
    const routed = store.buckets.findForRouting('web-assets')!;
    expect(routed.cors).toEqual(CORS_RULES);
    expect(Object.isFrozen(routed)).toBe(true);
    expect(Object.isFrozen(routed.cors)).toBe(true);

    const invalid = await rejection(store.buckets.setCors('web-assets', [{ allowedOrigins: [], allowedMethods: ['GET'] }]));
    expect(invalid).toBeInstanceOf(BucketValidationError);
    expect((await store.buckets.get('web-assets'))!.cors).toEqual(CORS_RULES);

    expect(await store.buckets.setCors('web-assets', null)).toEqual(added);
    expect(await store.buckets.setCors('not-registered', CORS_RULES)).toBeNull();
    await store.beginRequest();
    expect(store.buckets.findForRouting('web-assets')!.cors).toBeNull();
  });
});

/** Runs one script of operations and returns everything it observed, with ids and secrets replaced by labels. */
async function transcript(store: Store): Promise<string> {
  const seen: Record<string, unknown> = {};
  const t = new Date('2031-02-03T04:05:06.789Z');
  const at = (ms: number) => new Date(t.getTime() + ms);
  const k1 = await store.keys.create(
    { name: 'ünïcödé', permissions: ['write', 'admin', 'read'], expiresIn: '12h', rateLimit: 0.5, allowedIps: ['192.168.1.0/24'], prefix: 'p/' },
    t,
  );
  const k2 = await store.keys.create({ name: 'bucket rw', bucket: 'data-1', preset: 'read-write', rateLimit: '100000/s', rateBurst: '1000000' }, at(1));
  const k3 = await store.keys.create({ name: 'bucket ro', bucket: 'data-2', permissions: ['read'], prefix: 'ünï/códé/' }, at(2));
  seen.created = [k1, k2, k3];
  seen.list = await store.keys.list();
  seen.listData1 = await store.keys.list({ bucket: 'data-1' });
  seen.count = await store.keys.count();
  seen.disable1 = await store.keys.setDisabled(k1.accessKeyId, true, at(10));
  seen.disable2 = await store.keys.setDisabled(k1.accessKeyId, true, at(20));
  seen.enable = await store.keys.setDisabled(k2.accessKeyId, false, at(30));
  seen.withSecret = await store.keys.findWithSecret(k3.accessKeyId);
  seen.deleted = [await store.keys.delete(k3.accessKeyId), await store.keys.delete(k3.accessKeyId)];
  seen.afterDelete = [await store.keys.get(k3.accessKeyId), await store.keys.count()];
  seen.bucketAdds = [
    await store.buckets.add({ name: 'data-1', datacenter: 'eu-ro-1' }, at(40)),
    await store.buckets.add({ name: 'data-2', endpoint: 'http://127.0.0.1:9/base/', region: 'auto' }, at(41)),
    await store.buckets.add({ name: '0-first' }, at(42)),
  ];
  seen.conflict = await store.buckets.add({ name: 'data-1' }).catch((error: BucketValidationError) => [error.name, error.problem, error.message]);
  seen.cors = await store.buckets.setCors('data-2', CORS_RULES);
  seen.corsMissing = await store.buckets.setCors('nope', CORS_RULES);
  seen.buckets = await store.buckets.list();
  seen.removed = [await store.buckets.remove('0-first'), await store.buckets.remove('0-first')];
  await store.beginRequest();
  seen.verification = [k1, k2, k3].map((key) => store.keys.findForVerification(key.accessKeyId));
  seen.routing = [store.buckets.listForRouting(), store.buckets.findForRouting('data-2'), store.buckets.findForRouting('0-first')];

  let text = JSON.stringify(seen, null, 1);
  for (const [label, key] of Object.entries({ k1, k2, k3 })) {
    text = text.replaceAll(key.accessKeyId, `<${label}>`).replaceAll(key.secretAccessKey, `<${label} secret>`);
  }
  return text;
}

describe('parity between the SQLite and PostgreSQL stores', () => {
  it('the same operations observe identical results, field for field', async () => {
    const sqlite = await transcript(await openSqlite());
    const postgres = await transcript(await openPostgres(await freshDatabase()));
    expect(sqlite).toContain('<k1 secret>');
    expect(sqlite).not.toMatch(/rs_(ak|sk)_live_/);
    expect(postgres).toBe(sqlite);
  });
});

// ---------------------------------------------------------------------------------------------
// 2. Freshness across instances and against raw SQL
// ---------------------------------------------------------------------------------------------

describe('cross-instance freshness (PostgreSQL)', () => {
  it('sees every change another instance made on the very next beginRequest, with no waiting', async () => {
    const url = await freshDatabase();
    const a = await openPostgres(url);
    const b = await openPostgres(url);
    const k1 = await a.keys.create({ name: 'k1', preset: 'read-write' });
    const k2 = await a.keys.create({ name: 'k2', bucket: 'data-1', preset: 'read-only' });
    await a.buckets.add({ name: 'data-1', datacenter: 'EU-RO-1' });
    await b.beginRequest();
    expect(b.keys.findForVerification(k1.accessKeyId)!.secretAccessKey).toBe(k1.secretAccessKey);
    expect(b.buckets.findForRouting('data-1')).not.toBeNull();

    await a.keys.delete(k1.accessKeyId);
    await b.beginRequest();
    expect(b.keys.findForVerification(k1.accessKeyId)).toBeNull();

    const disabledAt = new Date('2030-01-01T00:00:00.321Z');
    await a.keys.setDisabled(k2.accessKeyId, true, disabledAt);
    await b.beginRequest();
    expect(b.keys.findForVerification(k2.accessKeyId)!.key.disabledAt!.getTime()).toBe(disabledAt.getTime());
    await a.keys.setDisabled(k2.accessKeyId, false);
    await b.beginRequest();
    expect(b.keys.findForVerification(k2.accessKeyId)!.key.disabledAt).toBeNull();

    await a.buckets.setCors('data-1', CORS_RULES);
    await b.beginRequest();
    expect(b.buckets.findForRouting('data-1')!.cors).toEqual(CORS_RULES);
    await a.buckets.remove('data-1');
    await b.beginRequest();
    expect(b.buckets.findForRouting('data-1')).toBeNull();
    expect(b.buckets.listForRouting()).toEqual([]);

    // Many round trips: a change is never missed, whatever the notifications are doing meanwhile.
    for (let round = 0; round < 40; round++) {
      const key = await a.keys.create({ name: `round ${round}`, preset: 'read-only' });
      await b.beginRequest();
      expect(b.keys.findForVerification(key.accessKeyId)?.secretAccessKey).toBe(key.secretAccessKey);
      await a.keys.delete(key.accessKeyId);
      await b.beginRequest();
      expect(b.keys.findForVerification(key.accessKeyId)).toBeNull();
    }
  });

  it('sees changes made with raw SQL (DELETE, UPDATE, INSERT, TRUNCATE) on the next beginRequest', async () => {
    const url = await freshDatabase();
    const b = await openPostgres(url);
    const k1 = await b.keys.create({ name: 'k1', preset: 'read-write' });
    const k2 = await b.keys.create({ name: 'k2', preset: 'read-write' });
    const k3 = await b.keys.create({ name: 'k3', preset: 'read-write' });
    await b.buckets.add({ name: 'data-1' });
    await b.beginRequest();
    expect(b.keys.findForVerification(k1.accessKeyId)).not.toBeNull();

    await rawSql(url, 'DELETE FROM access_keys WHERE access_key_id = $1', [k1.accessKeyId]);
    await b.beginRequest();
    expect(b.keys.findForVerification(k1.accessKeyId)).toBeNull();

    await rawSql(url, "UPDATE access_keys SET disabled_at = '2030-01-01T00:00:00.456Z' WHERE access_key_id = $1", [k2.accessKeyId]);
    await b.beginRequest();
    expect(b.keys.findForVerification(k2.accessKeyId)!.key.disabledAt!.toISOString()).toBe('2030-01-01T00:00:00.456Z');

    await rawSql(url, "UPDATE access_keys SET permissions = 'read', prefix = 'only/', allowed_ips = '127.0.0.1/32' WHERE access_key_id = $1", [k3.accessKeyId]);
    await b.beginRequest();
    expect(b.keys.findForVerification(k3.accessKeyId)!.key).toMatchObject({ permissions: ['read'], prefix: 'only/', allowedIps: ['127.0.0.1/32'] });

    // A sealed secret edited by hand is refused, not served from the secret unsealed before.
    await rawSql(url, "UPDATE access_keys SET sealed_secret = 'v1:AAAA:AAAA:AAAA' WHERE access_key_id = $1", [k3.accessKeyId]);
    await b.beginRequest();
    expect(() => b.keys.findForVerification(k3.accessKeyId)).toThrow(SealError);

    await rawSql(url, "INSERT INTO buckets (name, upstream_bucket, created_at) VALUES ('by-hand', 'up', '2030-01-01T00:00:00.007Z')");
    await b.beginRequest();
    expect(b.buckets.findForRouting('by-hand')).toMatchObject({ upstreamBucket: 'up', datacenter: null });
    expect(b.buckets.findForRouting('by-hand')!.createdAt.toISOString()).toBe('2030-01-01T00:00:00.007Z');

    await rawSql(url, 'TRUNCATE access_keys');
    await b.beginRequest();
    expect(b.keys.findForVerification(k2.accessKeyId)).toBeNull();
    expect(await b.keys.count()).toBe(0);

    await rawSql(url, 'TRUNCATE buckets');
    await b.beginRequest();
    expect(b.buckets.findForRouting('data-1')).toBeNull();
    expect(b.buckets.listForRouting()).toEqual([]);
  });

  it('refuses requests (fails closed) while the change signal row is gone, and recovers when it is back', async () => {
    const url = await freshDatabase();
    const b = await openPostgres(url);
    const key = await b.keys.create({ name: 'k', preset: 'read-write' });
    await b.beginRequest();
    const [row] = await rawSql<{ version: string }>(url, 'DELETE FROM keygate_generation RETURNING version');
    await expectServiceUnavailable(b.beginRequest());
    await rawSql(url, 'INSERT INTO keygate_generation (id, version) VALUES (1, $1::bigint + 1)', [row!.version]);
    await rawSql(url, 'DELETE FROM access_keys WHERE access_key_id = $1', [key.accessKeyId]);
    await b.beginRequest();
    expect(b.keys.findForVerification(key.accessKeyId)).toBeNull();
  });

  it('a change committed while a read is in flight counts for a request that began after the commit', async () => {
    const url = await freshDatabase();
    const a = await openPostgres(url);
    const b = await openPostgres(url);
    const victim = await a.keys.create({ name: 'victim', preset: 'read-write' });
    await b.beginRequest();
    expect(b.keys.findForVerification(victim.accessKeyId)).not.toBeNull();

    const blocker = new pg.Client({ connectionString: url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE buckets IN ACCESS EXCLUSIVE MODE');
      // Another key arrives: B reloads (on the notification, or for the request below); the reload's
      // snapshot is taken, then it waits on `buckets`.
      await a.keys.create({ name: 'newcomer', preset: 'read-only' });
      const first = b.beginRequest();
      await eventually("B's reload to wait on the buckets lock", async () => (await lockWaiters(url, '%buckets%')) > 0);

      // Committed (and acknowledged) while B's read is still in flight, with a snapshot from before it.
      await a.keys.delete(victim.accessKeyId);
      const second = b.beginRequest();
      expect(await within(second, 200)).toBe('timeout'); // it cannot settle on the read that started earlier

      await blocker.query('ROLLBACK');
      await first;
      await second;
      expect(b.keys.findForVerification(victim.accessKeyId)).toBeNull();
    } finally {
      await blocker.end().catch(() => undefined);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 3. Notifications are hints
// ---------------------------------------------------------------------------------------------

describe('LISTEN/NOTIFY only as a hint (PostgreSQL)', () => {
  it('without its LISTEN connection an instance still sees changes on its next beginRequest, and the listener comes back', async () => {
    const url = await freshDatabase();
    const b = await openPostgres(url);
    await eventually("B's listener", async () => (await listenerPids(url)).length === 1);
    const [bListener] = await listenerPids(url);
    const a = await openPostgres(url);
    await eventually('both listeners', async () => (await listenerPids(url)).length === 2);

    const k1 = await a.keys.create({ name: 'k1', preset: 'read-write' });
    const k2 = await a.keys.create({ name: 'k2', preset: 'read-write' });
    await b.beginRequest();
    expect(b.keys.findForVerification(k1.accessKeyId)).not.toBeNull();

    const [terminated] = await rawSql<{ ok: boolean }>(url, 'SELECT pg_terminate_backend($1) AS ok', [bListener]);
    expect(terminated!.ok).toBe(true);
    await eventually('B to notice its listener is gone', () => b.listening() === false);
    await a.keys.delete(k1.accessKeyId);
    await b.beginRequest();
    expect(b.keys.findForVerification(k1.accessKeyId)).toBeNull();

    // B reconnects its listener (with backoff); then a change reaches it without any request.
    await eventually('B to listen again', async () => {
      const pids = await listenerPids(url);
      return pids.length === 2 && !pids.includes(bListener!);
    });
    expect(b.listening()).toBe(true);
    await a.keys.setDisabled(k2.accessKeyId, true);
    await eventually('B to reload on the notification alone', () => b.keys.findForVerification(k2.accessKeyId)?.key.disabledAt != null);
  });

  it('reloads in the background on NOTIFY, before any request asks', async () => {
    const url = await freshDatabase();
    const a = await openPostgres(url);
    const b = await openPostgres(url);
    await eventually('both listeners', async () => (await listenerPids(url)).length === 2);
    const key = await a.keys.create({ name: 'k', preset: 'read-write' });
    await eventually('B to load the new key without beginRequest', () => b.keys.findForVerification(key.accessKeyId) !== null);
    await rawSql(url, 'DELETE FROM access_keys WHERE access_key_id = $1', [key.accessKeyId]);
    await eventually('B to drop the deleted key without beginRequest', () => b.keys.findForVerification(key.accessKeyId) === null);
    await rawSql(url, "INSERT INTO buckets (name, upstream_bucket, created_at) VALUES ('hinted', 'hinted', now())");
    await eventually('B to route the new bucket without beginRequest', () => b.buckets.findForRouting('hinted') !== null);
  });

  it('a change that sends no notification at all still counts on the next beginRequest', async () => {
    const url = await freshDatabase();
    const b = await openPostgres(url);
    const key = await b.keys.create({ name: 'k', preset: 'read-write' });
    await b.beginRequest();
    expect(b.keys.findForVerification(key.accessKeyId)).not.toBeNull();

    // A lost notification: the change and its signal, exactly as the trigger writes it, but no NOTIFY.
    const signal = await signalStatement(url);
    await withClient(url, async (client) => {
      await client.query('BEGIN');
      await client.query('ALTER TABLE access_keys DISABLE TRIGGER access_keys_changed');
      await client.query('DELETE FROM access_keys WHERE access_key_id = $1', [key.accessKeyId]);
      await client.query(signal);
      await client.query('ALTER TABLE access_keys ENABLE TRIGGER access_keys_changed');
      await client.query('COMMIT');
    });
    await b.beginRequest();
    expect(b.keys.findForVerification(key.accessKeyId)).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------
// 4. last_used_at
// ---------------------------------------------------------------------------------------------

describe('last_used_at writes (PostgreSQL)', () => {
  it('are no change: the change signal stays and the request path keeps what it holds', async () => {
    const url = await freshDatabase();
    const a = await openPostgres(url);
    const b = await openPostgres(url);
    const key = await a.keys.create({ name: 'k', preset: 'read-write' });
    await b.beginRequest();
    const held = b.keys.findForVerification(key.accessKeyId);
    const before = await changeSignal(url);

    const t = new Date('2030-03-04T05:06:07.089Z');
    a.keys.touchLastUsed(key.accessKeyId, t);
    await eventually('last_used_at to be written', async () => (await a.keys.get(key.accessKeyId))!.lastUsedAt?.getTime() === t.getTime());
    expect(await changeSignal(url)).toEqual(before);
    await b.beginRequest();
    expect(b.keys.findForVerification(key.accessKeyId)).toBe(held);

    // A real change still moves the signal.
    await a.keys.setDisabled(key.accessKeyId, true);
    expect(await changeSignal(url)).not.toEqual(before);
  });

  it('are at most one per key per minute per instance', async () => {
    const url = await freshDatabase();
    const a = await openPostgres(url);
    const b = await openPostgres(url);
    const key = await a.keys.create({ name: 'k', preset: 'read-write' });
    const marker = await a.keys.create({ name: 'marker', preset: 'read-write' });
    const lastUsed = async (id: string) =>
      (await rawSql<{ at: Date | null }>(url, 'SELECT last_used_at AS at FROM access_keys WHERE access_key_id = $1', [id]))[0]!.at?.getTime() ?? null;

    const t = new Date('2030-03-04T05:06:07.000Z').getTime();
    a.keys.touchLastUsed(key.accessKeyId, new Date(t));
    await eventually('the first use to be recorded', async () => (await lastUsed(key.accessKeyId)) === t);
    // Uses within the interval write nothing: after them, another key's first use (written at once,
    // the interval is per key) lands, and this key still shows its first use.
    for (let ms = 1_000; ms < LAST_USED_WRITE_INTERVAL_MS; ms += 1_000) a.keys.touchLastUsed(key.accessKeyId, new Date(t + ms));
    a.keys.touchLastUsed(key.accessKeyId, new Date(t + LAST_USED_WRITE_INTERVAL_MS - 1));
    a.keys.touchLastUsed(marker.accessKeyId, new Date(t + 5_000));
    await eventually("the other key's use to be recorded", async () => (await lastUsed(marker.accessKeyId)) === t + 5_000);
    expect(await lastUsed(key.accessKeyId)).toBe(t);
    // Per instance: B has not written this key yet, so it does at once.
    b.keys.touchLastUsed(key.accessKeyId, new Date(t + 30_000));
    await eventually("B's use to be recorded", async () => (await lastUsed(key.accessKeyId)) === t + 30_000);
    // A full interval after A's first write, A writes again.
    a.keys.touchLastUsed(key.accessKeyId, new Date(t + LAST_USED_WRITE_INTERVAL_MS));
    await eventually("A's next write", async () => (await lastUsed(key.accessKeyId)) === t + LAST_USED_WRITE_INTERVAL_MS);
  });
});

// ---------------------------------------------------------------------------------------------
// 5. The server stops and comes back
// ---------------------------------------------------------------------------------------------

describe('a PostgreSQL server that stops and comes back', () => {
  it('refuses requests while it is down, and is fresh and listening again once it is back', async () => {
    const url = await freshDatabase();
    const a = await openPostgres(url);
    const b = await openPostgres(url);
    const k1 = await a.keys.create({ name: 'k1', preset: 'read-write' });
    const k2 = await a.keys.create({ name: 'k2', preset: 'read-write' });
    const k3 = await a.keys.create({ name: 'k3', preset: 'read-write' });
    await b.beginRequest();
    expect(b.keys.findForVerification(k1.accessKeyId)).not.toBeNull();

    await server.stop();
    const started = Date.now();
    const error = await expectServiceUnavailable(b.beginRequest());
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(error.headers['retry-after']).toBe('1');
    // Requests arriving together while it is down all fail; none settles on what B holds.
    const together = await Promise.allSettled(Array.from({ length: 20 }, () => b.beginRequest()));
    expect(together.map((result) => result.status)).toEqual(Array(20).fill('rejected'));
    for (const result of together) expect(((result as PromiseRejectedResult).reason as S3Error).code).toBe('ServiceUnavailable');
    await expectServiceUnavailable(b.beginRequest());
    await eventually('B to report its listener down', () => b.listening() === false);
    // Management operations fail too, recognisably (the admin API answers 503, the CLI says to check the database).
    for (const failed of [
      await rejection(a.keys.get(k1.accessKeyId)),
      await rejection(a.keys.create({ name: 'while down', preset: 'read-only' })),
      await rejection(a.buckets.list()),
    ]) {
      expect(isStoreUnavailable(failed)).toBe(true);
    }
    expect(isStoreUnavailable(await rejection(a.keys.create({ name: '', preset: 'read-only' })))).toBe(false);

    await server.start();
    await rawSql(url, 'DELETE FROM access_keys WHERE access_key_id = $1', [k1.accessKeyId]);
    await b.beginRequest();
    expect(b.keys.findForVerification(k1.accessKeyId)).toBeNull();
    expect(b.keys.findForVerification(k2.accessKeyId)).not.toBeNull();
    expect(await a.keys.count()).toBe(2);

    // Both listeners reconnect (backoff up to 5 s); then a change reaches B with no request.
    await eventually('both listeners to reconnect', async () => (await listenerPids(url)).length === 2, 30_000);
    expect(b.listening()).toBe(true);
    await rawSql(url, 'DELETE FROM access_keys WHERE access_key_id = $1', [k2.accessKeyId]);
    await eventually('B to reload on the notification alone', () => b.keys.findForVerification(k2.accessKeyId) === null);
    await a.keys.delete(k3.accessKeyId);
    await eventually('B to reload on the notification alone (change via A)', () => b.keys.findForVerification(k3.accessKeyId) === null);
  });

  it('a server that stops answering (a network black hole) fails requests within the query timeout, never hangs them', async () => {
    const url = await freshDatabase();
    const proxy = await startFreezableProxy(server.port);
    try {
      const b = await openPostgres(url.replace(`:${server.port}/`, `:${proxy.port}/`));
      const key = await b.keys.create({ name: 'k', preset: 'read-write' });
      await b.beginRequest();
      expect(b.keys.findForVerification(key.accessKeyId)).not.toBeNull();

      proxy.freeze();
      const started = Date.now();
      const outcomes = await Promise.allSettled([b.beginRequest(), b.beginRequest(), b.beginRequest()]);
      const elapsed = Date.now() - started;
      expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected', 'rejected']);
      for (const outcome of outcomes) expect(((outcome as PromiseRejectedResult).reason as S3Error).code).toBe('ServiceUnavailable');
      // QUERY_TIMEOUT_MS (10 s) for the read in flight, then the next read's connection attempt or query.
      expect(elapsed).toBeLessThan(25_000);
    } finally {
      proxy.close();
    }
  }, 60_000);

  it('a restart between requests costs nothing stale: the next request reads the change signal again', async () => {
    const url = await freshDatabase();
    const b = await openPostgres(url);
    const key = await b.keys.create({ name: 'k', preset: 'read-write' });
    await b.beginRequest();
    await server.restart();
    await rawSql(url, 'DELETE FROM access_keys WHERE access_key_id = $1', [key.accessKeyId]);
    // The pool's connections died with the server: the first request may be refused, never accepted stale.
    await b.beginRequest()?.catch((error: unknown) => {
      expect((error as S3Error).code).toBe('ServiceUnavailable');
      return b.beginRequest();
    });
    expect(b.keys.findForVerification(key.accessKeyId)).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------
// 6. Start-up
// ---------------------------------------------------------------------------------------------

describe('opening the PostgreSQL store', () => {
  it('refuses a master key that does not match the one that sealed the store', async () => {
    const url = await freshDatabase();
    const first = await openPostgres(url);
    await first.keys.create({ name: 'k', preset: 'read-only' });
    const error = await rejection(openPostgres(url, { KEYGATE_MASTER_KEY: OTHER_MASTER_KEY_HEX }));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe('KEYGATE_MASTER_KEY');
    expect((error as Error).message).toMatch(/KEYGATE_MASTER_KEY/);
    expect((error as Error).message).not.toContain(OTHER_MASTER_KEY_HEX);
  });

  it('needs a master key (KEYGATE_MASTER_KEY or master.key) and generates none', async () => {
    const url = await freshDatabase();
    const dataDir = dirs.make();
    const error = await rejection(openPostgres(url, {}, dataDir));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe('KEYGATE_MASTER_KEY');
    expect((error as Error).message).toMatch(/must be set when KEYGATE_DATABASE_URL is set/);
    expect(existsSync(path.join(dataDir, 'master.key'))).toBe(false);

    // A master.key file in the data dir is the same key as the variable.
    writeFileSync(path.join(dataDir, 'master.key'), `${TEST_MASTER_KEY_HEX}\n`, { mode: 0o600 });
    const fromFile = await openPostgres(url, {}, dataDir);
    const key = await fromFile.keys.create({ name: 'k', preset: 'read-only' });
    const fromEnv = await openPostgres(url);
    expect((await fromEnv.keys.findWithSecret(key.accessKeyId))!.secretAccessKey).toBe(key.secretAccessKey);
  });

  it('three instances opening a fresh database at once all succeed and agree', async () => {
    const url = await freshDatabase();
    const stores = await Promise.all([openPostgres(url), openPostgres(url), openPostgres(url)]);
    const [migrations] = await rawSql<{ n: string }>(url, 'SELECT count(*) AS n FROM drizzle.__drizzle_migrations');
    const journal = JSON.parse(readFileSync(path.join(migrationsFolder('postgres'), 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] };
    expect(Number(migrations!.n)).toBe(journal.entries.length);
    expect(await rawSql(url, 'SELECT id, version FROM keygate_generation')).toEqual([{ id: 1, version: '0' }]);
    const key = await stores[0].keys.create({ name: 'k', preset: 'read-write' });
    for (const store of stores) {
      await store.beginRequest();
      expect(store.keys.findForVerification(key.accessKeyId)!.secretAccessKey).toBe(key.secretAccessKey);
      expect((await store.keys.list()).map((listed) => listed.accessKeyId)).toEqual([key.accessKeyId]);
    }
  });

  it('instances racing to open a fresh database with different master keys: one key wins, the others are refused', async () => {
    const url = await freshDatabase();
    const keys = [TEST_MASTER_KEY_HEX, OTHER_MASTER_KEY_HEX, TEST_MASTER_KEY_HEX, OTHER_MASTER_KEY_HEX];
    const results = await Promise.allSettled(keys.map((hex) => openPostgres(url, { KEYGATE_MASTER_KEY: hex })));
    const winners = keys.filter((_, index) => results[index]!.status === 'fulfilled');
    expect(winners.length).toBeGreaterThan(0);
    expect(new Set(winners).size).toBe(1);
    for (const result of results) {
      if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(ConfigError);
    }
  });

  it('an unreachable server fails with StoreUnavailableError, promptly, without the password', async () => {
    const port = await freePort();
    const started = Date.now();
    const error = await rejection(openPostgres(`postgres://keygate:s3cret@127.0.0.1:${port}/x`));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).not.toContain('s3cret');
    expect((error as Error).message).toContain(`127.0.0.1:${port}`);
    expect((error as Error).message).toMatch(/KEYGATE_DATABASE_URL/);
  });

  it('a database that does not exist fails with StoreUnavailableError, and the location never shows the password', async () => {
    const withPassword = server.url.replace('keygate@', 'keygate:s3cret@');
    const missing = withPassword.replace(/\/[^/]+$/, '/no_such_database');
    const error = await rejection(openPostgres(missing));
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toMatch(/no_such_database/);
    expect((error as Error).message).not.toContain('s3cret');

    // Trust authentication ignores the password, so this opens: its location is redacted.
    const url = await freshDatabase();
    const store = await openPostgres(url.replace('keygate@', 'keygate:s3cret@'));
    expect(store.kind).toBe('postgres');
    expect(store.location).not.toContain('s3cret');
    expect(store.location).toContain('***');
  });
});

// ---------------------------------------------------------------------------------------------
// 7. Coalescing
// ---------------------------------------------------------------------------------------------

describe('requests arriving together share counter reads (PostgreSQL)', () => {
  it('200 concurrent beginRequest calls make a handful of change-signal reads, and all see a change committed before them', async () => {
    const url = await freshDatabase();
    // Every statement of this database's sessions goes to the server log, where the signal reads are counted.
    await logStatementsOf(url);
    const a = await openPostgres(url);
    const b = await openPostgres(url);
    // Each listener syncs once when it is up: let those reads finish before counting.
    await eventually('both listeners', async () => (await listenerPids(url)).length === 2);
    await Promise.all([a.beginRequest(), b.beginRequest()]);
    const logStart = statSync(server.logFile).size;
    const counterReads = () => loggedStatements(logStart, /FROM\s+"?keygate_generation/i);

    // The counting works: requests one after another read the counter once each.
    for (let i = 0; i < 5; i++) await b.beginRequest();
    await eventually('5 counter reads to be logged', () => counterReads() >= 5);
    expect(counterReads()).toBe(5);

    const key = await a.keys.create({ name: 'k', preset: 'read-write' });
    await b.beginRequest();
    await a.keys.delete(key.accessKeyId);
    const before = counterReads();
    const seen = await Promise.all(
      Array.from({ length: 200 }, async () => {
        await b.beginRequest();
        return b.keys.findForVerification(key.accessKeyId);
      }),
    );
    expect(seen).toEqual(Array(200).fill(null));
    // One read in flight and one queued, plus a few for the change's notifications and reloads: not 200.
    const reads = counterReads() - before;
    expect(reads).toBeGreaterThanOrEqual(1);
    expect(reads).toBeLessThanOrEqual(8);
  });
});

// ---------------------------------------------------------------------------------------------
// Hazards found while testing. The restore and lastUsedAt tests failed against the first version of
// src/store/postgres/ (a monotonic counter as the change signal; lastUsedAt writes through the
// request pool). The timed-out management write fails against the current one: the client gives
// up after QUERY_TIMEOUT_MS but the server keeps the statement, which commits once the lock is free.
// ---------------------------------------------------------------------------------------------

/** The pg_dump / pg_restore of the server the tests run (Debian's /usr/lib/postgresql/<version>/bin). */
function postgresTool(name: 'pg_dump' | 'pg_restore'): string {
  const root = '/usr/lib/postgresql';
  const version = readdirSync(root)
    .filter((entry) => existsSync(path.join(root, entry, 'bin', name)))
    .sort((x, y) => Number(y) - Number(x))[0];
  if (version === undefined) throw new Error(`${name} not found in ${root}/<version>/bin`);
  return path.join(root, version, 'bin', name);
}

describe('operational hazards (PostgreSQL)', () => {
  it('an instance sees a database restored from a backup on its next beginRequest (its change signal goes back)', async () => {
    const url = await freshDatabase();
    const a = await openPostgres(url);
    const b = await openPostgres(url);
    const kept = await a.keys.create({ name: 'in the backup', preset: 'read-only' });
    const backup = path.join(dirs.make(), 'keygate.dump');
    await promisify(execFile)(postgresTool('pg_dump'), ['--format=custom', `--file=${backup}`, `--dbname=${url}`]);

    const ghost = await a.keys.create({ name: 'created after the backup', preset: 'read-write' });
    await b.beginRequest();
    expect(b.keys.findForVerification(ghost.accessKeyId)).not.toBeNull();

    // The operator restores last night's backup in place (instances keep running).
    await promisify(execFile)(postgresTool('pg_restore'), ['--clean', '--if-exists', '--single-transaction', `--dbname=${url}`, backup]);
    expect(await a.keys.get(ghost.accessKeyId)).toBeNull();
    expect(await a.keys.delete(ghost.accessKeyId)).toBe(false); // nothing left to revoke...
    expect((await a.keys.list()).map((key) => key.accessKeyId)).toEqual([kept.accessKeyId]);

    await b.beginRequest();
    // ...yet B, whose snapshot is newer than the restored counter, would keep accepting it.
    expect(b.keys.findForVerification(ghost.accessKeyId)).toBeNull();
  });

  it("a management write reported as failed (timed out behind a lock) is not applied later behind the admin's back", async () => {
    const url = await freshDatabase();
    const a = await openPostgres(url);
    const other = await a.keys.create({ name: 'other', preset: 'read-only' });
    const key = await a.keys.create({ name: 'compromised', preset: 'read-write' });
    await a.keys.setDisabled(key.accessKeyId, true);

    // Someone's psql transaction changed another key and is still open: it holds the change signal row.
    const operator = new pg.Client({ connectionString: url });
    await operator.connect();
    try {
      await operator.query('BEGIN');
      await operator.query("UPDATE access_keys SET name = 'renamed' WHERE access_key_id = $1", [other.accessKeyId]);
      // An admin re-enables the key; the write waits on that row lock until the client gives up.
      const failure = await rejection(a.keys.setDisabled(key.accessKeyId, false));
      expect(isStoreUnavailable(failure)).toBe(true);
      await operator.query('COMMIT');
    } finally {
      await operator.end().catch(() => undefined);
    }
    await eventually('no keygate statement left waiting', async () => (await lockWaiters(url, '%access_keys%')) === 0);
    // The admin was told it failed: the key must still be disabled.
    expect((await a.keys.get(key.accessKeyId))!.disabledAt).not.toBeNull();
  }, 60_000);

  it('lastUsedAt writes blocked by a lock do not starve the change-signal read (touchLastUsed never fails a request)', async () => {
    const url = await freshDatabase();
    const b = await openPostgres(url);
    const keys = [];
    for (let i = 0; i < 10; i++) keys.push(await b.keys.create({ name: `team key ${i}`, bucket: 'team', preset: 'read-write' }));
    await b.beginRequest();

    // An operator disables the team's keys in psql and has not committed yet.
    const operator = new pg.Client({ connectionString: url });
    await operator.connect();
    try {
      await operator.query('BEGIN');
      await operator.query("UPDATE access_keys SET disabled_at = now() WHERE bucket = 'team'");
      // Requests with those keys go on meanwhile (their change is not committed): each records its use.
      for (const key of keys) b.keys.touchLastUsed(key.accessKeyId);
      await eventually('a lastUsedAt write to wait on the row locks', async () => (await lockWaiters(url, '%last_used_at%')) >= 1);

      // Nothing B must read is locked (MVCC): the next request should begin at once.
      const started = Date.now();
      const outcome = await within(
        b.beginRequest().then(
          () => 'ok',
          (error: unknown) =>
            `rejected: ${(error as Error).message} (cause: ${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : String((error as Error).cause)})`,
        ),
        8_000,
      );
      expect({ outcome, fast: Date.now() - started < 1_000 }).toEqual({ outcome: 'ok', fast: true });
    } finally {
      await operator.query('ROLLBACK').catch(() => undefined);
      await operator.end().catch(() => undefined);
    }
  });
});
