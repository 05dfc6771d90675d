/**
 * Connection faults in the middle of the PostgreSQL store's work must neither stop the process nor
 * leave it stuck on an old snapshot: a reload whose connection is killed fails that batch of
 * requests (ServiceUnavailable) and the next one loads afresh. (An 'error' event from a connection
 * checked out of the pool, unheard, would end the process; a connection returned to the pool inside
 * a reload's transaction would freeze every later change-id read on it.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';

const MASTER_KEY = '5c'.repeat(32);
const MANY_KEYS = 20_000;

describe('PostgreSQL store under connection faults', () => {
  let postgres: PostgresServer;
  let store: Store;
  let admin: pg.Client;
  let dataDir: string;

  beforeAll(async () => {
    postgres = await startPostgres();
    dataDir = mkdtempSync(path.join(tmpdir(), 'keygate-pgfault-'));
    store = await openStore(loadConfig({ KEYGATE_DATA_DIR: dataDir, KEYGATE_DATABASE_URL: postgres.url, KEYGATE_MASTER_KEY: MASTER_KEY }));
    admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    // Enough rows that a reload takes a while (secrets are unsealed only on use, so placeholders do).
    await admin.query(
      `INSERT INTO access_keys (access_key_id, name, kind, bucket, permissions, sealed_secret, created_at)
       SELECT 'rs_ak_live_bulk' || i, 'bulk', 'workspace', NULL, 'read', 'v1:x:y:z', now() FROM generate_series(1, $1) AS i`,
      [MANY_KEYS],
    );
    await store.beginRequest();
  });

  afterAll(async () => {
    await admin?.end();
    await store?.close();
    await postgres?.remove();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const killKeygateConnections = () =>
    admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'keygate' AND pid <> pg_backend_pid()");

  it('a reload whose connections are killed fails that batch only; the next request loads afresh and sees every change', async () => {
    for (let round = 0; round < 5; round++) {
      await admin.query('INSERT INTO buckets (name, upstream_bucket, created_at) VALUES ($1, $1, now())', [`fault-${round}`]);
      // Its outcome is taken at once (a rejection left unheard until later would count as unhandled).
      const during = (store.beginRequest() ?? Promise.resolve()).then(
        () => 'loaded',
        (error: { code?: string }) => error.code,
      );
      // While the reload streams its rows (or as it starts): every keygate connection goes.
      await new Promise((resolve) => setTimeout(resolve, round * 15));
      await killKeygateConnections();
      expect(['loaded', 'ServiceUnavailable']).toContain(await during);
      // Recovered: a change made now is seen by the next request.
      await admin.query("DELETE FROM access_keys WHERE access_key_id = 'rs_ak_live_bulk' || $1", [round + 1]);
      let settled = false;
      for (let attempt = 0; attempt < 20 && !settled; attempt++) {
        settled = await (store.beginRequest() ?? Promise.resolve()).then(
          () => true,
          () => false,
        );
      }
      expect(settled).toBe(true);
      expect(store.keys.findForVerification(`rs_ak_live_bulk${round + 1}`)).toBeNull();
      expect(store.buckets.findForRouting(`fault-${round}`)).not.toBeNull();
    }
    // No connection was left inside a transaction.
    const stuck = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'keygate' AND state LIKE 'idle in transaction%'");
    expect(stuck.rows[0].n).toBe(0);
  });
});
