/**
 * Opens the key store the configuration names: PostgreSQL when KEYGATE_DATABASE_URL is set (shared
 * by many instances), else SQLite in the data dir. The PostgreSQL driver is loaded only then, so a
 * single-process gateway does not carry it.
 */
import type { Config } from '../config.js';
import { openSqliteStore } from './db.js';
import type { Store } from './store.js';

export type { Store } from './store.js';

export async function openStore(config: Config): Promise<Store> {
  if (config.databaseUrl === null) return openSqliteStore(config);
  const { openPostgresStore } = await import('./postgres/store.js');
  return openPostgresStore(config, config.databaseUrl);
}
