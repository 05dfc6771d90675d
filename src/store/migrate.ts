/**
 * `keygate store migrate --to postgres://…`: copies the SQLite store's keys and buckets (CORS rules
 * included) into a PostgreSQL store, row for row. Secrets are copied sealed, as they are: both
 * stores must use the same master key, which the PostgreSQL store's check value then proves.
 *
 * Idempotent: a row already in PostgreSQL and identical is left alone; one that differs there (the
 * same access key id or bucket name, other contents) is reported and left alone too, since either
 * side may be the one an operator changed on purpose. Everything missing is inserted in one
 * transaction, so a failed run copies nothing. A dry run reads both sides and writes nothing (not
 * even PostgreSQL's tables).
 */
import { existsSync } from 'node:fs';
import pg from 'pg';
import { eq, sql } from 'drizzle-orm';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { redactDatabaseUrl, type Config } from '../config.js';
import { loadMasterKey } from '../crypto/master-key.js';
import { databasePath, openSqliteDatabase } from './db.js';
import { MASTER_KEY_CHECK, verifyMasterKeyCheck } from './master-key-check.js';
import { openPostgresDatabase } from './postgres/store.js';
import * as pgSchema from './postgres/schema.js';
import { sameBucketRow, sameKeyRow, type AccessKeyRowShape, type BucketRowShape } from './rows.js';
import * as sqliteSchema from './schema.js';
import { StoreUnavailableError } from './store.js';

export interface TablePlan {
  /** Rows to insert (access key ids or bucket names). */
  copy: string[];
  /** Already in PostgreSQL, identical. */
  same: string[];
  /** Already in PostgreSQL with other contents: left as they are there. */
  differ: string[];
}

export interface MigrationReport {
  from: string;
  to: string;
  dryRun: boolean;
  keys: TablePlan;
  buckets: TablePlan;
}

export class MigrationSourceMissing extends Error {}

export async function migrateToPostgres(config: Config, url: string, options: { dryRun: boolean }): Promise<MigrationReport> {
  const file = databasePath(config.dataDir);
  if (!existsSync(file)) {
    throw new MigrationSourceMissing(`There is no SQLite store at ${file}; set KEYGATE_DATA_DIR to the data dir of the gateway whose keys should move.`);
  }
  const source = openSqliteDatabase(config);
  try {
    const keyRows: AccessKeyRowShape[] = source.db.select().from(sqliteSchema.accessKeys).all();
    const bucketRows: BucketRowShape[] = source.db.select().from(sqliteSchema.buckets).all();
    // The PostgreSQL side must accept the key that sealed these secrets: KEYGATE_MASTER_KEY, or this data dir's file.
    const sourceConfig: Config = { ...config, masterKey: source.masterKey };
    return options.dryRun ? await planOnly(sourceConfig, url, file, keyRows, bucketRows) : await copy(sourceConfig, url, file, keyRows, bucketRows);
  } finally {
    source.db.$client.close();
  }
}

async function copy(config: Config, url: string, file: string, keyRows: AccessKeyRowShape[], bucketRows: BucketRowShape[]): Promise<MigrationReport> {
  const target = await openPostgresDatabase(config, url);
  try {
    return await target.db.transaction(async (tx) => {
      // One copier at a time: two runs at once must not both decide a row is missing.
      await tx.execute(sql`LOCK TABLE access_keys, buckets IN SHARE ROW EXCLUSIVE MODE`);
      const report = await plan(tx, { from: file, to: target.location, dryRun: false }, keyRows, bucketRows);
      const newKeys = keyRows.filter((row) => report.keys.copy.includes(row.accessKeyId));
      const newBuckets = bucketRows.filter((row) => report.buckets.copy.includes(row.name));
      if (newKeys.length > 0) await tx.insert(pgSchema.accessKeys).values(newKeys);
      if (newBuckets.length > 0) await tx.insert(pgSchema.buckets).values(newBuckets);
      return report;
    });
  } finally {
    await target.close();
  }
}

/** The dry run: reads what PostgreSQL holds, if its tables exist yet, and checks the master key without writing anything. */
async function planOnly(config: Config, url: string, file: string, keyRows: AccessKeyRowShape[], bucketRows: BucketRowShape[]): Promise<MigrationReport> {
  const location = redactDatabaseUrl(url);
  const pool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 5_000, application_name: 'keygate' });
  pool.on('error', () => undefined);
  try {
    const db = drizzle(pool);
    let exists: boolean;
    try {
      const found = await db.execute<{ table: string | null }>(sql`SELECT to_regclass('access_keys')::text AS table`);
      exists = found.rows[0]?.table != null;
    } catch (error) {
      throw new StoreUnavailableError(`keygate cannot reach the PostgreSQL store at ${location}: ${(error as Error).message}. Check the --to URL.`, {
        cause: error,
      });
    }
    const report = { from: file, to: location, dryRun: true };
    if (!exists) return { ...report, keys: allNew(keyRows.map((row) => row.accessKeyId)), buckets: allNew(bucketRows.map((row) => row.name)) };
    const [check] = await db.select().from(pgSchema.meta).where(eq(pgSchema.meta.name, MASTER_KEY_CHECK));
    if (check !== undefined) {
      verifyMasterKeyCheck(loadMasterKey(config, { allowGenerate: false }), check.value, {
        store: `the PostgreSQL store at ${location}`,
        fix: "both stores must use the same master key: migrate into an empty database, or into one opened with this data dir's key",
      });
    }
    return await plan(db, report, keyRows, bucketRows);
  } finally {
    await pool.end().catch(() => undefined);
  }
}

async function plan(
  db: Pick<NodePgDatabase<Record<string, unknown>>, 'select'>,
  report: Pick<MigrationReport, 'from' | 'to' | 'dryRun'>,
  keyRows: AccessKeyRowShape[],
  bucketRows: BucketRowShape[],
): Promise<MigrationReport> {
  const presentKeys = new Map((await db.select().from(pgSchema.accessKeys)).map((row) => [row.accessKeyId, row]));
  const presentBuckets = new Map((await db.select().from(pgSchema.buckets)).map((row) => [row.name, row]));
  return {
    ...report,
    keys: compare(keyRows, (row) => row.accessKeyId, presentKeys, sameKeyRow),
    buckets: compare(bucketRows, (row) => row.name, presentBuckets, sameBucketRow),
  };
}

function compare<Row>(rows: Row[], idOf: (row: Row) => string, present: Map<string, Row>, same: (a: Row, b: Row) => boolean): TablePlan {
  const result: TablePlan = { copy: [], same: [], differ: [] };
  for (const row of rows) {
    const there = present.get(idOf(row));
    if (there === undefined) result.copy.push(idOf(row));
    else if (same(row, there)) result.same.push(idOf(row));
    else result.differ.push(idOf(row));
  }
  return result;
}

function allNew(ids: string[]): TablePlan {
  return { copy: ids, same: [], differ: [] };
}
