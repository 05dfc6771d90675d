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
import { ConfigError, redactDatabaseUrl, type Config } from '../config.js';
import { loadMasterKey } from '../crypto/master-key.js';
import { databasePath, openSqliteDatabase } from './db.js';
import { MASTER_KEY_CHECK, verifyMasterKeyCheck } from './master-key-check.js';
import { quietOnConnectionErrors } from './postgres/connection-errors.js';
import { openPostgresDatabase } from './postgres/store.js';
import * as pgSchema from './postgres/schema.js';
import { sameBucketRow, sameKeyRow, type AccessKeyRowShape, type BucketRowShape } from './rows.js';
import * as sqliteSchema from './schema.js';
import { StoreUnavailableError, storeErrorMessage } from './store.js';

export interface TablePlan {
  /** Rows to insert (access key ids or bucket names). */
  copy: string[];
  /** Already in PostgreSQL, identical. */
  same: string[];
  /** Already in PostgreSQL with other contents: left as they are there. */
  differ: string[];
  /** Copied by an earlier run and deleted in PostgreSQL since: not copied again (a revocation stays one). */
  deletedThere: string[];
  /** Copied by an earlier run and deleted in SQLite since: still in PostgreSQL (delete them there if they should stop working). */
  deletedHere: string[];
}

export interface MigrationReport {
  from: string;
  to: string;
  dryRun: boolean;
  keys: TablePlan;
  buckets: TablePlan;
}

export class MigrationSourceMissing extends Error {}
export class MigrationFailed extends Error {}

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
      const copyKeys = new Set(report.keys.copy);
      const copyBuckets = new Set(report.buckets.copy);
      // In slices: one INSERT may carry at most 65535 parameters.
      for (const rows of slices(keyRows.filter((row) => copyKeys.has(row.accessKeyId)))) await tx.insert(pgSchema.accessKeys).values(rows);
      for (const rows of slices(bucketRows.filter((row) => copyBuckets.has(row.name)))) await tx.insert(pgSchema.buckets).values(rows);
      const migrated = [
        ...[...report.keys.copy, ...report.keys.same].map((id) => ({ kind: 'key', id })),
        ...[...report.buckets.copy, ...report.buckets.same].map((id) => ({ kind: 'bucket', id })),
      ];
      for (const rows of slices(migrated)) {
        // One JSON parameter: drizzle would spread an array into a list of parameters.
        await tx.execute(
          sql`INSERT INTO migrated_rows (kind, id) SELECT kind, id FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS r(kind text, id text) ON CONFLICT DO NOTHING`,
        );
      }
      return report;
    });
  } catch (error) {
    if (error instanceof ConfigError || error instanceof StoreUnavailableError) throw error;
    // drizzle's own message carries every parameter of the failed statement, sealed secrets included.
    throw new MigrationFailed(`Copying into the PostgreSQL store at ${target.location} failed, nothing was copied: ${storeErrorMessage(error)}`, {
      cause: error,
    });
  } finally {
    await target.close();
  }
}

const SLICE_ROWS = 1000;

function slices<T>(rows: T[]): T[][] {
  const result: T[][] = [];
  for (let start = 0; start < rows.length; start += SLICE_ROWS) result.push(rows.slice(start, start + SLICE_ROWS));
  return result;
}

/** The dry run: reads what PostgreSQL holds, if its tables exist yet, and checks the master key without writing anything. */
async function planOnly(config: Config, url: string, file: string, keyRows: AccessKeyRowShape[], bucketRows: BucketRowShape[]): Promise<MigrationReport> {
  const location = redactDatabaseUrl(url);
  const pool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 5_000, application_name: 'keygate' });
  quietOnConnectionErrors(pool);
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
  db: Pick<NodePgDatabase<Record<string, unknown>>, 'select' | 'execute'>,
  report: Pick<MigrationReport, 'from' | 'to' | 'dryRun'>,
  keyRows: AccessKeyRowShape[],
  bucketRows: BucketRowShape[],
): Promise<MigrationReport> {
  const presentKeys = new Map((await db.select().from(pgSchema.accessKeys)).map((row) => [row.accessKeyId, row]));
  const presentBuckets = new Map((await db.select().from(pgSchema.buckets)).map((row) => [row.name, row]));
  const found = await db.execute<{ table: string | null }>(sql`SELECT to_regclass('migrated_rows')::text AS table`);
  const migrated = { key: new Set<string>(), bucket: new Set<string>() };
  if (found.rows[0]?.table != null) {
    const rows = await db.execute<{ kind: 'key' | 'bucket'; id: string }>(sql`SELECT kind, id FROM migrated_rows`);
    for (const row of rows.rows) migrated[row.kind]?.add(row.id);
  }
  return {
    ...report,
    keys: compare(keyRows, (row) => row.accessKeyId, presentKeys, migrated.key, sameKeyRow),
    buckets: compare(bucketRows, (row) => row.name, presentBuckets, migrated.bucket, sameBucketRow),
  };
}

function compare<Row>(rows: Row[], idOf: (row: Row) => string, present: Map<string, Row>, migrated: Set<string>, same: (a: Row, b: Row) => boolean): TablePlan {
  const result: TablePlan = { copy: [], same: [], differ: [], deletedThere: [], deletedHere: [] };
  const source = new Set<string>();
  for (const row of rows) {
    const id = idOf(row);
    source.add(id);
    const there = present.get(id);
    if (there === undefined) (migrated.has(id) ? result.deletedThere : result.copy).push(id);
    else if (same(row, there)) result.same.push(id);
    else result.differ.push(id);
  }
  for (const id of migrated) if (present.has(id) && !source.has(id)) result.deletedHere.push(id);
  return result;
}

function allNew(ids: string[]): TablePlan {
  return { copy: ids, same: [], differ: [], deletedThere: [], deletedHere: [] };
}
