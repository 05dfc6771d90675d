/**
 * Opens the key store the configuration names: PostgreSQL when KEYGATE_DATABASE_URL is set (shared
 * by many instances), else SQLite in the data dir. The PostgreSQL driver is loaded only then, so a
 * single-process gateway does not carry it.
 */
import type { Config } from '../config.js';
import { openSqliteStore } from './db.js';
import type { Store } from './store.js';

export type { Store } from './store.js';

export interface OpenStoreOptions {
  /**
   * Whether S3 requests will be served from this store (the server): PostgreSQL then loads keys
   * and buckets into memory and listens for changes at once. The CLI passes false; its one
   * command reads and writes the database directly.
   */
  servesRequests?: boolean;
}

export async function openStore(config: Config, options: OpenStoreOptions = {}): Promise<Store> {
  if (config.databaseUrl === null) return openSqliteStore(config);
  const { openPostgresStore } = await import('./postgres/store.js');
  return openPostgresStore(config, config.databaseUrl, { servesRequests: options.servesRequests ?? true });
}
