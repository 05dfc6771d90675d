/**
 * Per-request cost of the database lookups on the S3 path: the key (with its unsealed secret) for
 * SigV4 verification and the bucket for routing. Both reuse rows while SQLite's data_version shows
 * no change; the "uncached" rows show what a query plus an AES-GCM open cost instead.
 *
 * Synchronous, like the request path it measures (bench/run.ts runs it between async phases): the
 * store's management API is async, so the rows to look up are written here the way the SQLite
 * store writes them (validated spec, sealed secret, same row shape), through a second connection.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { eq, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { validateAddBucketInput } from '../src/buckets/validate.js';
import { loadConfig } from '../src/config.js';
import { generateKeyPair } from '../src/crypto/keygen.js';
import { sealSecret, unsealSecret } from '../src/crypto/seal.js';
import { validateKeyInput, type CreateKeyInput } from '../src/keys/validate.js';
import { databasePath, openSqliteStore } from '../src/store/db.js';
import { newKeyRow } from '../src/store/rows.js';
import * as schema from '../src/store/schema.js';
import type { Store } from '../src/store/store.js';
import { timePerOp, type BenchRow } from './sigv4.js';

function row(name: string, us: number, detail: string): BenchRow {
  return { name, value: us, unit: 'µs/op', detail, markdown: `| ${name} | ${us.toFixed(2)} µs/op | ${detail} |` };
}

/** What the listener does as an S3 request starts; the SQLite store does it synchronously. */
function beginRequest(store: Store): void {
  if (store.beginRequest() !== null) throw new Error(`the ${store.kind} store does not begin requests synchronously`);
}

export function runStoreBench(): BenchRow[] {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'keygate-bench-store-'));
  const masterKey = Buffer.alloc(32, 0x42);
  const config = loadConfig({
    KEYGATE_DATA_DIR: dataDir,
    KEYGATE_MASTER_KEY: masterKey.toString('hex'),
    KEYGATE_ADMIN_TOKEN: 'bench-admin-token-0123456789abcdef',
  });
  const store = openSqliteStore(config);
  const sqlite = new Database(databasePath(dataDir));
  try {
    sqlite.pragma('busy_timeout = 5000');
    const db = drizzle(sqlite, { schema });
    const now = new Date();
    const createKey = (input: CreateKeyInput) => {
      const { accessKeyId, secretAccessKey } = generateKeyPair(config.keyTag);
      db.insert(schema.accessKeys)
        .values(newKeyRow(accessKeyId, sealSecret(masterKey, accessKeyId, secretAccessKey), validateKeyInput(input, now), now))
        .run();
      return { accessKeyId, secretAccessKey };
    };
    db.insert(schema.buckets)
      .values({ ...validateAddBucketInput({ name: 'photos' }), corsJson: null, createdAt: now })
      .run();
    const key = createKey({ name: 'bench', bucket: 'photos', preset: 'read-write' });
    for (let i = 0; i < 200; i++) createKey({ name: `other-${i}`, preset: 'read-only' });

    beginRequest(store);
    if (store.keys.findForVerification(key.accessKeyId)?.secretAccessKey !== key.secretAccessKey) throw new Error('the store does not find the bench key');
    if (store.buckets.findForRouting('photos') === null) throw new Error('the store does not find the bench bucket');

    const rows: BenchRow[] = [];
    const lookup = timePerOp(() => {
      beginRequest(store);
      store.keys.findForVerification(key.accessKeyId);
    });
    rows.push(row('key lookup for verification (row + secret reused while data_version is unchanged)', lookup, 'one PRAGMA data_version per request'));
    // The same row query the repository makes, plus opening a secret sealed the way it is stored.
    const findById = db
      .select()
      .from(schema.accessKeys)
      .where(eq(schema.accessKeys.accessKeyId, sql.placeholder('id')))
      .prepare();
    const uncached = timePerOp(() => {
      const found = findById.get({ id: key.accessKeyId })!;
      unsealSecret(masterKey, found.accessKeyId, found.sealedSecret);
    });
    rows.push(row('  for comparison: key query + AES-GCM unseal on every request', uncached, 'what the lookup cost before the cache'));
    rows.push(
      row(
        'bucket lookup for routing (row reused while data_version is unchanged)',
        timePerOp(() => {
          beginRequest(store);
          store.buckets.findForRouting('photos');
        }),
        'one PRAGMA data_version per request',
      ),
    );
    return rows;
  } finally {
    sqlite.close();
    // Synchronous for SQLite (the connection closes before the promise is returned); nothing to wait for.
    void store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
