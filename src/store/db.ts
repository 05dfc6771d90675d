/**
 * Opens the SQLite key store `<dataDir>/keygate.db` (the default) and applies pending migrations. The CLI and the
 * server open the same file concurrently: WAL lets readers proceed during writes, busy_timeout makes
 * writers wait for each other instead of failing, and every key lookup reads the database afresh so
 * a revocation by any process counts on the very next request.
 */
import { closeSync, existsSync, openSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { eq } from 'drizzle-orm';
import type { Config } from '../config.js';
import { deriveKey, loadMasterKey, masterKeyPath } from '../crypto/master-key.js';
import { ensureDataDir, explainAccessError } from '../data-dir.js';
import { BucketRepository } from './buckets.js';
import { ChangeDetector } from './change-detector.js';
import { KeyRepository } from './keys.js';
import { MASTER_KEY_CHECK, masterKeyCheckValue, verifyMasterKeyCheck } from './master-key-check.js';
import * as schema from './schema.js';
import type { Store } from './store.js';

export const DATABASE_FILE = 'keygate.db';
const BUSY_TIMEOUT_MS = 5000;

/** The drizzle handle; `$client` is the underlying connection (the repositories' change detectors read it). */
export type KeygateDatabase = BetterSQLite3Database<typeof schema> & { $client: Database.Database };

export function databasePath(dataDir: string): string {
  return path.join(dataDir, DATABASE_FILE);
}

export function openSqliteStore(config: Config): Store {
  const { db, masterKey, file } = openSqliteDatabase(config);
  const sqlite = db.$client;
  const changes = ChangeDetector.of(sqlite);
  return {
    kind: 'sqlite',
    location: file,
    keys: new KeyRepository(db, masterKey, config.keyTag),
    buckets: new BucketRepository(db),
    beginRequest: () => changes.beginRequest(),
    listening: () => null,
    deriveKey: (purpose) => deriveKey(masterKey, purpose),
    close: async () => {
      if (sqlite.open) sqlite.close();
    },
  };
}

/** The migrated database and its verified master key, for the store and for `keygate store migrate`. */
export interface SqliteDatabase {
  db: KeygateDatabase;
  masterKey: Buffer;
  file: string;
}

export function openSqliteDatabase(config: Config): SqliteDatabase {
  try {
    return openDatabaseIn(config);
  } catch (error) {
    throw explainAccessError(config.dataDir, error);
  }
}

function openDatabaseIn(config: Config): SqliteDatabase {
  ensureDataDir(config.dataDir);
  const file = databasePath(config.dataDir);
  warnIfDatabaseLost(config.dataDir, file);
  createPrivateFile(file);
  const sqlite = new Database(file);
  try {
    // busy_timeout first: switching to WAL itself needs the lock another process may hold.
    sqlite.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    sqlite.pragma('journal_mode = WAL');
    // NORMAL is durable across application crashes in WAL mode and avoids an fsync per commit.
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    const db = drizzle(sqlite, { schema });
    applyMigrations(db);
    return { db, masterKey: verifiedMasterKey(db, config, file), file };
  } catch (error) {
    sqlite.close();
    throw error;
  }
}

/**
 * An empty or missing database next to a master key that was already generated is no fresh
 * install: the database was probably lost or truncated (a failed copy, a full disk). keygate goes
 * on with an empty key store, but says so (every key would answer InvalidAccessKeyId).
 */
function warnIfDatabaseLost(dataDir: string, file: string): void {
  if (!existsSync(masterKeyPath(dataDir))) return;
  const size = existsSync(file) ? statSync(file).size : null;
  if (size !== null && size > 0) return;
  process.stderr.write(
    `keygate: warning: ${file} is ${size === null ? 'missing' : 'empty (0 bytes)'} but ${masterKeyPath(dataDir)} exists: ` +
      'this looks like a lost or truncated key store, not a new one. Restore keygate.db from a backup if keys existed; ' +
      'keygate continues with an empty key store.\n',
  );
}

/**
 * Creates the database file 0600 before SQLite does (SQLite would use 0644 minus umask). SQLite gives
 * the -wal and -shm files the database file's permissions, so they end up private too.
 */
function createPrivateFile(file: string): void {
  try {
    closeSync(openSync(file, 'wx', 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

/**
 * Finds migrations/<dialect> by walking up from this module, so it works from src/ (tsx) and dist/
 * alike.
 */
export function migrationsFolder(dialect: 'sqlite' | 'postgres' = 'sqlite'): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 5; depth++) {
    const candidate = path.join(dir, 'migrations', dialect);
    if (existsSync(path.join(candidate, 'meta', '_journal.json'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error(`keygate cannot find its migrations/${dialect}/ folder; reinstall the package (it ships migrations/ next to dist/).`);
}

function applyMigrations(db: KeygateDatabase): void {
  const migrationsFolderPath = migrationsFolder();
  try {
    migrate(db, { migrationsFolder: migrationsFolderPath });
  } catch {
    // Two processes opening a fresh database can both decide to migrate; the loser fails on
    // "table already exists" after waiting for the winner's commit. Re-running sees the
    // winner's bookkeeping and has nothing left to do. A genuine failure fails again.
    migrate(db, { migrationsFolder: migrationsFolderPath });
  }
}

function verifiedMasterKey(db: KeygateDatabase, config: Config, file: string): Buffer {
  const readCheck = () => db.select().from(schema.meta).where(eq(schema.meta.name, MASTER_KEY_CHECK)).get()?.value;
  let check = readCheck();
  const masterKey = loadMasterKey(config, { allowGenerate: check === undefined });
  if (check === undefined) {
    db.insert(schema.meta)
      .values({ name: MASTER_KEY_CHECK, value: masterKeyCheckValue(masterKey) })
      .onConflictDoNothing()
      .run();
    // Another process may have won the insert with a different key; verify whatever is stored now.
    check = readCheck()!;
  }
  verifyMasterKeyCheck(masterKey, check, {
    store: file,
    fix: `set KEYGATE_MASTER_KEY to the original key (or unset it and restore ${masterKeyPath(config.dataDir)})`,
  });
  return masterKey;
}
