/**
 * Opens the shared PostgreSQL key store (KEYGATE_DATABASE_URL): applies pending migrations (one
 * instance at a time, under an advisory lock), checks the master key against the store's check
 * value, loads the request-path replica and starts listening for changes.
 */
import { existsSync } from 'node:fs';
import pg from 'pg';
import { eq } from 'drizzle-orm';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { ConfigError, redactDatabaseUrl, type Config } from '../../config.js';
import { deriveKey, loadMasterKey, masterKeyPath } from '../../crypto/master-key.js';
import { logToStderr } from '../../observability/log.js';
import { migrationsFolder } from '../db.js';
import { MASTER_KEY_CHECK, masterKeyCheckValue, verifyMasterKeyCheck } from '../master-key-check.js';
import { StoreUnavailableError, storeErrorMessage, type Store } from '../store.js';
import { PostgresBucketRepository } from './buckets.js';
import { PostgresKeyRepository } from './keys.js';
import { quietOnConnectionErrors } from './connection-errors.js';
import { LastUsedWriter } from './last-used.js';
import { StoreReplica } from './replica.js';
import { meta } from './schema.js';

/** Connections per instance: requests share one counter read at a time, so a few serve any load. */
const POOL_SIZE = 8;
/** A server that does not answer must fail requests (ServiceUnavailable) promptly, not hold them. */
const CONNECT_TIMEOUT_MS = 5_000;
/**
 * The server gives up on a statement (and rolls it back) before the client stops waiting for it:
 * a management write reported as failed must not be applied later, when a lock it waited on frees.
 */
const STATEMENT_TIMEOUT_MS = 8_000;
const QUERY_TIMEOUT_MS = 10_000;
/** Any constant shared by every keygate instance: migrations run one instance at a time. */
const MIGRATION_LOCK = 0x6b657967; // "keyg"

export async function openPostgresStore(config: Config, url: string, options: { servesRequests: boolean }): Promise<Store> {
  const database = await openPostgresDatabase(config, url);
  const { db, pool, masterKey, location, connection } = database;
  const close = () => database.close();
  try {
    const replica = new StoreReplica({ pool, masterKey, connectListener: () => new pg.Client(connection), log: logToStderr });
    // Without requests to serve (the CLI), nothing is loaded or listened to; a beginRequest() would load on demand.
    if (options.servesRequests) {
      await replica.start().catch((error: unknown) => {
        // The replica's ServiceUnavailable wraps what the driver said.
        throw unreachable(location, error instanceof Error && error.cause !== undefined ? error.cause : error);
      });
    }
    const lastUsed = new LastUsedWriter(connection);
    return {
      kind: 'postgres',
      location,
      keys: new PostgresKeyRepository(db, lastUsed, replica, masterKey, config.keyTag),
      buckets: new PostgresBucketRepository(db, replica),
      beginRequest: () => replica.sync(),
      listening: () => replica.listening,
      deriveKey: (purpose) => deriveKey(masterKey, purpose),
      close: async () => {
        await replica.close();
        await lastUsed.close();
        await close();
      },
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The migrated database and its verified master key, for the store and for `keygate store migrate`. */
export interface PostgresDatabase {
  db: NodePgDatabase<Record<string, unknown>>;
  pool: pg.Pool;
  masterKey: Buffer;
  /** The URL without its password. */
  location: string;
  connection: pg.PoolConfig;
  close(): Promise<void>;
}

export async function openPostgresDatabase(config: Config, url: string): Promise<PostgresDatabase> {
  const location = redactDatabaseUrl(url);
  const connection: pg.PoolConfig = {
    connectionString: url,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    application_name: 'keygate',
    // A connection that went silent (a dropped route) is noticed by the kernel, not only on the next query.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // A transaction a client abandoned (a timeout mid-reload) is ended by the server, locks and all.
    idle_in_transaction_session_timeout: 15_000,
  };
  const pool = new pg.Pool({
    ...connection,
    max: POOL_SIZE,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
  });
  quietOnConnectionErrors(pool);
  const close = () => pool.end().catch(() => undefined);
  try {
    await migrateUnderLock(pool, location);
    const db = drizzle(pool);
    const masterKey = await verifiedMasterKey(db, config, location);
    return { db, pool, masterKey, location, connection, close };
  } catch (error) {
    await close();
    throw error;
  }
}

async function migrateUnderLock(pool: pg.Pool, location: string): Promise<void> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw unreachable(location, error);
  }
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await migrate(drizzle(client), { migrationsFolder: migrationsFolder('postgres') });
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    }
  } catch (error) {
    if (error instanceof StoreUnavailableError) throw error;
    throw new StoreUnavailableError(
      `keygate could not prepare its tables in the PostgreSQL store at ${location}: ${storeErrorMessage(error)}. ` +
        'The user in KEYGATE_DATABASE_URL needs to create tables, functions and triggers in that database (e.g. its owner).',
      { cause: error },
    );
  } finally {
    client.release();
  }
}

/**
 * Every instance must seal and unseal with the same master key, so none is generated here: it comes
 * from KEYGATE_MASTER_KEY (or a master.key file already in the data dir, e.g. the one whose store was
 * migrated with `keygate store migrate`).
 */
async function verifiedMasterKey(db: NodePgDatabase<Record<string, unknown>>, config: Config, location: string): Promise<Buffer> {
  if (config.masterKey === null && !existsSync(masterKeyPath(config.dataDir))) {
    throw new ConfigError(
      'KEYGATE_MASTER_KEY',
      'must be set when KEYGATE_DATABASE_URL is set: every instance sharing the PostgreSQL store seals and unseals secrets with the same key. ' +
        'Generate one once (openssl rand -hex 32) and give the same value to every instance.',
    );
  }
  const masterKey = loadMasterKey(config, { allowGenerate: false });
  const readCheck = async () => (await db.select().from(meta).where(eq(meta.name, MASTER_KEY_CHECK)).limit(1))[0]?.value;
  let check = await readCheck();
  if (check === undefined) {
    await db
      .insert(meta)
      .values({ name: MASTER_KEY_CHECK, value: masterKeyCheckValue(masterKey) })
      .onConflictDoNothing();
    // Another instance may have won the insert with a different key; verify whatever is stored now.
    check = (await readCheck())!;
  }
  verifyMasterKeyCheck(masterKey, check, {
    store: `the PostgreSQL store at ${location}`,
    fix: 'every instance must use the same KEYGATE_MASTER_KEY as the one that first opened this store',
  });
  return masterKey;
}

function unreachable(location: string, error: unknown): StoreUnavailableError {
  return new StoreUnavailableError(
    `keygate cannot reach its PostgreSQL store at ${location}: ${storeErrorMessage(error)}. ` +
      'Check KEYGATE_DATABASE_URL (host, port, user, password, database) and that the server accepts connections from this host.',
    { cause: error },
  );
}
