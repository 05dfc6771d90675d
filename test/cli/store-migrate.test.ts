/**
 * `keygate store migrate --to postgres://… [--dry-run]`, run as the CLI process against a real
 * PostgreSQL server: keys, buckets and CORS rules arrive intact (secrets still sealed, still the
 * same once unsealed with the shared master key), a dry run writes nothing, a second run changes
 * nothing, rows that differ are reported and left alone, and a wrong master key is refused.
 */
import { writeFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openStore } from '../../src/store/open.js';
import { TEST_MASTER_KEY_HEX, makeTempDirs, runCliProcess } from '../helpers/keygate-cli.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';

const dirs = makeTempDirs();
const CORS = [{ allowedOrigins: ['https://app.example.com'], allowedMethods: ['GET', 'PUT'], maxAgeSeconds: 600 }];

describe('keygate store migrate', () => {
  let postgres: PostgresServer;
  let dataDir: string;
  let sqliteEnv: Record<string, string>;
  const created: Array<{ accessKeyId: string; secretAccessKey: string }> = [];

  beforeAll(async () => {
    postgres = await startPostgres();
    dataDir = dirs.make();
    // The SQLite store generates its own master key file, as a real single-process install does.
    sqliteEnv = { KEYGATE_DATA_DIR: dataDir };
    for (const args of [
      ['keys', 'create', '--name', 'ci', '--perm', 'read,write', '--expires-in', '30d', '--rate-limit', '20', '--allow-ip', '10.0.0.0/8', '--json'],
      ['keys', 'create', '--name', 'viewer', '--bucket', 'photos', '--preset', 'read-only', '--prefix', 'public/', '--json'],
    ]) {
      const result = await runCliProcess(args, sqliteEnv);
      expect(result.code, result.stderr).toBe(0);
      created.push(JSON.parse(result.stdout) as { accessKeyId: string; secretAccessKey: string });
    }
    expect((await runCliProcess(['keys', 'disable', created[1]!.accessKeyId], sqliteEnv)).code).toBe(0);
    expect((await runCliProcess(['buckets', 'add', 'photos', '--endpoint', 'http://127.0.0.1:1', '--region', 'eu-west-1'], sqliteEnv)).code).toBe(0);
    expect((await runCliProcess(['buckets', 'add', 'volume', '--datacenter', 'EU-RO-1'], sqliteEnv)).code).toBe(0);
    writeFileSync(`${dataDir}/cors.json`, JSON.stringify(CORS));
    expect((await runCliProcess(['buckets', 'cors', 'photos', '--file', `${dataDir}/cors.json`], sqliteEnv)).code).toBe(0);
  });

  afterAll(async () => {
    await postgres?.remove();
    dirs.cleanup();
  });

  /** The target URL with a password in it (trust auth ignores it): it must never be printed. */
  const target = (database: string) => postgres.url.replace('keygate@', 'keygate:hunter2@').replace(/\/[^/]+$/, `/${database}`);

  async function tableExists(url: string, table: string): Promise<boolean> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table])).rows[0]!.t !== null;
    } finally {
      await client.end();
    }
  }

  it('a dry run reports what it would copy and writes nothing, not even the tables', async () => {
    const url = await postgres.createDatabase('dry');
    const result = await runCliProcess(['store', 'migrate', '--to', target('dry'), '--dry-run'], sqliteEnv);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('access keys: 2 to copy, 0 already there');
    expect(result.stdout).toContain('buckets: 2 to copy, 0 already there');
    expect(result.stdout).toContain('Nothing was written');
    expect(result.stdout + result.stderr).not.toContain('hunter2');
    expect(await tableExists(url, 'access_keys')).toBe(false);
  });

  it('copies keys, buckets and CORS rules; the copies are the same keys (secrets unseal with the shared master key)', async () => {
    const url = await postgres.createDatabase('full');
    const result = await runCliProcess(['store', 'migrate', '--to', target('full')], sqliteEnv);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('access keys: 2 copied, 0 already there');
    expect(result.stdout).toContain('buckets: 2 copied, 0 already there');
    expect(result.stdout + result.stderr).not.toContain('hunter2');

    // The PostgreSQL store opened as an instance would: with the master key of the data dir (its file here).
    const source = await openStore(loadConfig(sqliteEnv));
    const copy = await openStore(loadConfig({ KEYGATE_DATA_DIR: dataDir, KEYGATE_DATABASE_URL: url }));
    try {
      expect(copy.kind).toBe('postgres');
      expect(await copy.keys.list()).toEqual(await source.keys.list());
      expect(await copy.buckets.list()).toEqual(await source.buckets.list());
      expect((await copy.buckets.get('photos'))?.cors).toEqual(CORS);
      for (const key of created) expect((await copy.keys.findWithSecret(key.accessKeyId))?.secretAccessKey).toBe(key.secretAccessKey);
      await copy.beginRequest();
      expect(copy.keys.findForVerification(created[0]!.accessKeyId)?.secretAccessKey).toBe(created[0]!.secretAccessKey);
      expect(copy.keys.findForVerification(created[1]!.accessKeyId)?.key.disabledAt).not.toBeNull();

      // Again: nothing to do.
      const again = await runCliProcess(['store', 'migrate', '--to', target('full')], sqliteEnv);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toContain('access keys: 0 copied, 2 already there');
      expect(again.stdout).toContain('buckets: 0 copied, 2 already there');

      // A row changed on one side is reported, left as it is in PostgreSQL, and fails the run.
      await copy.keys.setDisabled(created[0]!.accessKeyId, true);
      const conflicting = await runCliProcess(['store', 'migrate', '--to', target('full')], sqliteEnv);
      expect(conflicting.code).toBe(1);
      expect(conflicting.stderr).toContain(`access key ${created[0]!.accessKeyId} is already in PostgreSQL with other contents`);
      expect((await copy.keys.get(created[0]!.accessKeyId))?.disabledAt).not.toBeNull();
      expect((await source.keys.get(created[0]!.accessKeyId))?.disabledAt).toBeNull();
    } finally {
      await copy.close();
      await source.close();
    }
  });

  it('never brings back a key deleted in PostgreSQL, says which keys were deleted only in SQLite, and copies thousands of keys', async () => {
    const bulkDir = dirs.make();
    const env = { KEYGATE_DATA_DIR: bulkDir, KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX };
    const source = await openStore(loadConfig(env));
    const ids: string[] = [];
    // More rows than one INSERT can carry parameters for (65535 / 14 columns).
    for (let i = 0; i < 5000; i++) ids.push((await source.keys.create({ name: `bulk-${i}`, permissions: ['read'] })).accessKeyId);
    const url = await postgres.createDatabase('bulk');
    const first = await runCliProcess(['store', 'migrate', '--to', url], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('access keys: 5000 copied, 0 already there');

    const copy = await openStore(loadConfig({ ...env, KEYGATE_DATABASE_URL: url }));
    try {
      // Revoked in PostgreSQL after the copy: a later run must not resurrect it.
      expect(await copy.keys.delete(ids[0]!)).toBe(true);
      // Deleted in SQLite after the copy: still live in PostgreSQL, which the run must say.
      expect(await source.keys.delete(ids[1]!)).toBe(true);
      const again = await runCliProcess(['store', 'migrate', '--to', url], env);
      expect(again.code).toBe(1);
      expect(again.stdout).toContain(
        'access keys: 0 copied, 4998 already there, 1 deleted in PostgreSQL since copied (not copied again), 1 deleted in SQLite since copied',
      );
      expect(again.stderr).toContain(`access key ${ids[1]} was deleted from SQLite after it was copied, but is still in PostgreSQL`);
      expect(await copy.keys.get(ids[0]!)).toBeNull();
      expect(await copy.keys.count()).toBe(4999);
    } finally {
      await copy.close();
      await source.close();
    }
  });

  it('refuses a PostgreSQL store sealed with another master key, dry run or not', async () => {
    const url = await postgres.createDatabase('other_key');
    const other = await openStore(loadConfig({ KEYGATE_DATA_DIR: dirs.make(), KEYGATE_DATABASE_URL: url, KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX }));
    await other.close();
    for (const extra of [[], ['--dry-run']]) {
      const result = await runCliProcess(['store', 'migrate', '--to', target('other_key'), ...extra], sqliteEnv);
      expect(result.code, result.stdout).toBe(78);
      expect(result.stderr).toContain('KEYGATE_MASTER_KEY');
    }
  });

  it('says what is wrong with the source or the target', async () => {
    const empty = await runCliProcess(['store', 'migrate', '--to', target('keygate')], { KEYGATE_DATA_DIR: dirs.make() });
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('There is no SQLite store at');

    const notPostgres = await runCliProcess(['store', 'migrate', '--to', 'mysql://db/keygate'], sqliteEnv);
    expect(notPostgres.code).toBe(2);
    expect(notPostgres.stderr).toContain('must start with postgres://');

    const missing = await runCliProcess(['store', 'migrate'], sqliteEnv);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('Missing --to');

    const unreachable = await runCliProcess(['store', 'migrate', '--to', 'postgres://keygate:hunter2@127.0.0.1:1/keygate'], sqliteEnv);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain('cannot reach');
    expect(unreachable.stderr).not.toContain('hunter2');
  });
});
